"""An executor's setup files are deps of its stages; the executor itself is not fingerprinted."""

from __future__ import annotations

from pathlib import Path

from sluice.pipeline.fingerprint import RunContext, fingerprint_of, stage_components
from sluice.workspace.project import load_project
from tests.unit._util import write_project

CONFIG = """\
executors:
  gpu:
    type: ray
    setup: pip install -r requirements.txt
  bare:
    type: ray
storage: {{cache: file:///shared/cache}}
stages:
  train: {{cmd: echo, kind: train, deps: [data.txt]{where}}}
"""
FILES = {"data.txt": "rows\n", "requirements.txt": "numpy\n"}


def _fingerprint(root: Path, where: str) -> tuple[str, dict[str, str]]:
    write_project(root, CONFIG.format(where=where), FILES if not root.exists() else None)
    project = load_project(root)
    components = stage_components(project, project.config.stages["train"], RunContext())
    return fingerprint_of(components), components["deps"]


def test_setup_files_are_deps_and_a_change_to_them_reruns_the_stage(tmp_path: Path) -> None:
    root = tmp_path / "p"
    before, deps = _fingerprint(root, ", executor: gpu")
    assert set(deps) == {"data.txt", "requirements.txt"}
    (root / "requirements.txt").write_text("numpy==2.1\n")
    after, _ = _fingerprint(root, ", executor: gpu")
    assert after != before


def test_where_a_stage_runs_is_not_fingerprinted(tmp_path: Path) -> None:
    root = tmp_path / "p"
    here, deps = _fingerprint(root, "")
    assert set(deps) == {"data.txt"}
    on_cluster, _ = _fingerprint(root, ", executor: bare")
    assert on_cluster == here  # a result from the cluster is reused locally, and back
