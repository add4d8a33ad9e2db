"""End-to-end: pinned data is checked against its pins before a run (sluice.lock and DVC).

Two branches pin different bytes of the same dataset; `git checkout` leaves the
git-ignored data as the other branch had it. A run refuses it, plan and status
report it, a registered version's lineage names the raw data it was trained on,
and `sluice data status` reports DVC pointer files like sluice.lock pins.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from sluice.config.lockfile import parse_lock
from tests.conftest import git, sluice
from tests.e2e.pipelines import MODEL_PIPELINE, PREDICT, write_project

# The registry tests' model, trained on a pinned dataset: its "model" is a file of the data.
CONFIG = "datasets:\n  events: data/events\n" + MODEL_PIPELINE.replace(
    'cmd: echo "model ${params.quality}" > ${outs.model}',
    "cmd: cat ${datasets.events}/quality.txt > ${outs.model}\n"
    "    inputs: [datasets.events]") + """\
    gates:
      - {metric: roc_auc, min: 0.6}
tiers:
  merge: {select: all, register: true, promote: staging}
"""
assert "datasets.events}/quality.txt" in CONFIG


def _pin(repo: Path, quality: str, message: str) -> None:
    (repo / "data/events").mkdir(parents=True, exist_ok=True)
    (repo / "data/events/quality.txt").write_text(f"model {quality}\n")
    sluice(repo, "data", "add", "data/events")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def branches(repo: Path) -> Path:
    """main pins quality 0.3; branch `feature` pins 0.35; the workspace is on feature."""
    write_project(repo, CONFIG, files={"predict.py": PREDICT,
                                       "params.yaml": "rows: 600\n"})
    _pin(repo, "0.3", "data v1")
    git(repo, "checkout", "-q", "-b", "feature")
    _pin(repo, "0.35", "data v2")
    return repo


def _pinned_hash(repo: Path) -> str:
    return parse_lock((repo / "sluice.lock").read_text())["data/events"].hash


def test_checkout_without_data_checkout_refuses_the_run(branches: Path) -> None:
    repo = branches
    git(repo, "checkout", "-q", "main")  # the ignored data stays as feature left it
    refused = sluice(repo, "run", "--tier", "merge", check=2)
    assert "data/events" in refused.stderr and "differs from its pin in sluice.lock" \
        in refused.stderr
    assert "sluice data checkout data/events" in refused.stderr
    assert not (repo / "build/model.txt").exists()  # nothing ran
    assert sluice(repo, "run", check=2).returncode == 2  # without a tier too

    plan = sluice(repo, "plan", "--tier", "merge")
    assert "DATA NOT AS PINNED" in plan.stdout and "data/events" in plan.stdout
    [problem] = json.loads(sluice(repo, "plan", "--tier", "merge", "--json").stdout)["data"]
    assert (problem["path"], problem["state"], problem["stages"]) == \
        ("data/events", "modified", ["train"])
    assert problem["pinned"] == _pinned_hash(repo)
    assert "DATA NOT AS PINNED" in sluice(repo, "status").stdout
    status = json.loads(sluice(repo, "status", "--json").stdout)
    assert [d["path"] for d in status["data"]] == ["data/events"]
    dry = sluice(repo, "run", "--tier", "merge", "--dry-run")  # a dry run only reports
    assert "DATA NOT AS PINNED" in dry.stdout

    sluice(repo, "data", "checkout")
    assert json.loads(sluice(repo, "status", "--json").stdout)["data"] == []
    result = sluice(repo, "run", "--tier", "merge")
    assert "registered churn version 1" in result.stdout
    shown = json.loads(sluice(repo, "models", "show", "churn@staging", "--json").stdout)
    lineage = shown["lineage"]
    assert lineage["branch"] == "main"
    assert lineage["data"]["data/events"] == {
        "dataset": "events", "pin": _pinned_hash(repo), "pinned_by": "sluice.lock",
        "hash": _pinned_hash(repo)}


def test_missing_pinned_data_is_checked_out_or_named_with_its_push(branches: Path) -> None:
    shutil.rmtree(branches / "data/events")
    [problem] = json.loads(sluice(branches, "status", "--json").stdout)["data"]
    assert problem["state"] == "missing" and "sluice data pull data/events" in problem["fix"]
    assert "sluice data pull data/events" in sluice(branches, "plan", "--tier", "merge").stdout
    # The local store has it: the run checks it out (verified) and goes on.
    run = sluice(branches, "run", "--tier", "merge")
    assert "checking out `data/events` (1 file(s)) from the local store" in run.stderr
    assert (branches / "data/events/quality.txt").read_text() == "model 0.35\n"
    # In no store at all (no shared store here): nothing runs, the pin and its push are named.
    shutil.rmtree(branches / "data/events")
    shutil.rmtree(branches / ".sluice/cache")
    missing = sluice(branches, "run", "--tier", "merge", "--force", check=2)
    assert "`data/events` (" in missing.stderr and "pinned in sluice.lock) read by" in \
        missing.stderr
    assert "no shared store is configured" in missing.stderr
    assert "sluice data push" in missing.stderr and "running" not in missing.stderr


def _dvc_file(md5: str, size: int, path: str, legacy: bool = False) -> str:
    return f"outs:\n- md5: {md5}\n  size: {size}\n" + ("" if legacy else "  hash: md5\n") \
        + f"  path: {path}\n"


def test_dvc_pointer_files_are_reported_and_checked(repo: Path) -> None:
    config = ("stages:\n  count:\n    cmd: wc -l data/raw.csv > ${outs.n}\n"
              "    deps: [data/raw.csv]\n    outs: {n: build/n.txt}\n")
    write_project(repo, config, files={}, commit=False)
    raw = b"a,b\r\n1,2\r\n"
    (repo / "data").mkdir()
    (repo / "data/raw.csv").write_bytes(raw)
    (repo / "data/.gitignore").write_text("/raw.csv\n")
    # As `dvc add` writes them: DVC 3 (`hash: md5`, raw bytes) and DVC 2 (dos2unix md5),
    # in a DVC repository (`dvc init` made its `.dvc/` folder; git keeps its config).
    (repo / ".dvc").mkdir()
    (repo / ".dvc/config").write_text("")
    (repo / "data/raw.csv.dvc").write_text(
        _dvc_file(hashlib.md5(raw).hexdigest(), len(raw), "raw.csv"))
    (repo / "legacy.txt").write_bytes(raw)
    (repo / "legacy.txt.dvc").write_text(
        _dvc_file(hashlib.md5(raw.replace(b"\r\n", b"\n")).hexdigest(), len(raw),
                  "legacy.txt", legacy=True))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "dvc pins")

    text = sluice(repo, "data", "status").stdout
    assert "no data pinned" not in text and "data/raw.csv  (data/raw.csv.dvc)" in text
    states = json.loads(sluice(repo, "data", "status", "--json").stdout)
    assert [(s["path"], s["state"], s["source"]) for s in states] == [
        ("data/raw.csv", "unchanged", "data/raw.csv.dvc"),
        ("legacy.txt", "unchanged", "legacy.txt.dvc")]
    sluice(repo, "run")

    (repo / "data/raw.csv").write_bytes(b"a,b\n9,9\n")
    states = json.loads(sluice(repo, "data", "status", "--json", check=1).stdout)
    assert states[0]["state"] == "modified"
    refused = sluice(repo, "run", check=2)
    assert "dvc checkout data/raw.csv.dvc" in refused.stderr
