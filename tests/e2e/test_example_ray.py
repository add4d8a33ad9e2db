"""End-to-end: the churn example's README change that trains `train_churn` on Ray.

The example's `sluice.yaml` stays local-only (`make demo` runs it as is); its README
documents two edits that send `train_churn` to a Ray executor. This test copies the
example, applies exactly those edits as the README states them (only the store's
`file://` folder is moved into the test's tmp folder), and runs the `pr` tier on the
session's real Ray cluster: `train_churn` runs on Ray, `evaluate_churn` here, and the
gates are evaluated on the model restored from the store.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git, sluice

pytestmark = pytest.mark.slow

SECTION = "### Training on a Ray cluster"
README_STORE = "file:///tmp/churn-store"


def _documented_edits(readme: str) -> tuple[str, str]:
    """The README's two YAML blocks of the Ray section: the top-level addition, and the
    line that goes into the existing `train_churn` stage."""
    section = readme.split(SECTION, 1)[1].split("\n### ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, flags=re.S)
    assert len(blocks) >= 2, "the README's Ray section lost its YAML blocks"
    stage_lines = blocks[1].splitlines()
    assert stage_lines[:2] == ["stages:", "  train_churn:"], blocks[1]
    [line] = [ln for ln in stage_lines[2:] if ln.strip()]
    return blocks[0], line


def apply_ray_edits(project: Path, store: Path) -> None:
    """Edit `project`'s sluice.yaml as its README's Ray section says."""
    top, stage_line = _documented_edits((project / "README.md").read_text(encoding="utf-8"))
    assert README_STORE in top
    config = project / "sluice.yaml"
    text = config.read_text(encoding="utf-8")
    assert "executors:" not in text and "storage:" not in text  # the example is local-only
    text = text.replace("\n  train_churn:\n", f"\n  train_churn:\n{stage_line}\n", 1)
    config.write_text(text + "\n" + top.replace(README_STORE, store.as_uri()),
                      encoding="utf-8")


def _stages(project: Path) -> dict[str, Any]:
    runs = sorted((project / ".sluice" / "runs").glob("*.json"), key=lambda p: p.stat().st_mtime)
    return {s["stage"]: s for s in json.loads(runs[-1].read_text())["stages"]}


def test_churn_trains_on_ray_as_its_readme_says(tmp_path: Path, ray_cluster: Any) -> None:
    churn = tmp_path / "churn"
    sluice(tmp_path, "init", "--example", "churn", str(churn))
    apply_ray_edits(churn, tmp_path / "store")
    git(churn, "init", "-q", "-b", "main")
    git(churn, "add", "-A")
    git(churn, "-c", "user.email=a@b", "-c", "user.name=n", "commit", "-q", "-m", "churn")

    env = {"SLUICE_RAY_ADDRESS": ray_cluster.address}
    sluice(churn, "run", "--tier", "pr", env=env, timeout=900)
    stages = _stages(churn)
    assert {s["status"] for s in stages.values()} == {"ran"}
    assert stages["train_churn"]["executor"] == "ray"
    assert stages["evaluate_churn"]["executor"] == "local"
    assert stages["train_baseline"]["executor"] == "local"
    with sqlite3.connect(churn / ".sluice" / "sluice.db") as conn:
        jobs = [row[0] for row in conn.execute("SELECT stage FROM remote_jobs")]
    assert jobs == ["train_churn"]  # one Ray job, for the one stage the README moved
    assert "submitted Ray job" in (churn / ".sluice/logs/train_churn.log").read_text()
    assert (churn / "models/churn.pkl").is_file()  # restored here for evaluate_churn

    # The gates ran on evaluate_churn's local output of the model trained on Ray.
    report = json.loads(sluice(churn, "report", "--json").stdout)
    model = next(m for m in report["models"] if m["model"] == "churn")
    assert sorted(g["rule"] for g in model["gates"]) == ["max_regression 0.01", "min 0.75"]
    assert model["gates_evaluated"] == 2 and model["verdict"] == "PASS"
