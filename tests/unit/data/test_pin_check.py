"""Pinned data against its pins for the selected stages: states, refusal, cost, lineage."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest

from sluice.cli.main import exit_code_for
from sluice.config.lockfile import DataPin, render_lock
from sluice.data.pins import check_pins, data_lineage, readable
from sluice.errors import PinnedDataMismatch
from sluice.util import dvc_md5, hashing
from sluice.util.hashing import TreeEntry, hash_bytes, hash_manifest
from sluice.workspace.project import Project, load_project
from tests.unit._util import write_project

CONFIG = """\
datasets:
  events: data/events
stages:
  count:
    cmd: cat ${datasets.events}/* > ${outs.n}
    inputs: [datasets.events]
    outs: {n: build/n.txt}
  train:
    kind: train
    cmd: cat ${stages.count.outs.n} data/raw.csv > ${outs.model}
    inputs: [stages.count.outs.n]
    deps: [data/raw.csv]
    outs: {model: build/model.txt}
  other:
    cmd: cat data/labels/*.csv > ${outs.x}
    deps: [data/labels/*.csv]
    outs: {x: build/x.txt}
"""
EVENTS = {"a.csv": b"1\n2\n", "b.csv": b"3\n"}
OLD = time.time_ns() - 60 * 10**9  # clear of the stat cache's racy window


def _events_pin() -> DataPin:
    entries = [TreeEntry(name, hash_bytes(data), len(data)) for name, data in EVENTS.items()]
    return DataPin("data/events", hash_manifest(entries), 4, 2)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = write_project(tmp_path / "p", CONFIG)
    for name, data in EVENTS.items():
        (root / "data/events").mkdir(parents=True, exist_ok=True)
        (root / "data/events" / name).write_bytes(data)
    (root / "data/labels").mkdir()
    (root / "data/labels/l.csv").write_bytes(b"y\n")
    (root / "data/raw.csv").write_bytes(b"raw\r\n")
    for path in (root / "data").rglob("*"):
        os.utime(path, ns=(OLD, OLD))
    labels = DataPin("data/labels", hash_manifest([TreeEntry("l.csv", hash_bytes(b"y\n"), 2)]))
    (root / "sluice.lock").write_text(render_lock({"data/events": _events_pin(),
                                                   "data/labels": labels}))
    # data/raw.csv is pinned by DVC (3: raw md5), as `dvc add` writes it next to the file,
    # in a DVC repository (`dvc init` made its `.dvc/` folder).
    (root / ".dvc").mkdir()
    md5 = hashlib.md5(b"raw\r\n").hexdigest()
    (root / "data/raw.csv.dvc").write_text(f"outs:\n- md5: {md5}\n  size: 5\n  hash: md5\n"
                                           "  path: raw.csv\n")
    return load_project(root)


def test_matching_data_has_no_problem(project: Project) -> None:
    assert check_pins(project, ["count", "train", "other"], refuse=True) == []


def test_modified_and_missing_data_are_named_with_their_fix(project: Project) -> None:
    (project.root / "data/events/b.csv").write_bytes(b"other branch\n")
    (project.root / "data/raw.csv").unlink()
    problems = check_pins(project, ["count", "train"])
    assert [(p.path, p.source, p.state, p.stages) for p in problems] == [
        ("data/events", "sluice.lock", "modified", ("count",)),
        ("data/raw.csv", "data/raw.csv.dvc", "missing", ("train",))]
    assert "sluice data checkout data/events" in problems[0].fix()
    assert problems[1].fix() == "`dvc pull data/raw.csv.dvc`"
    assert readable(["count", "train"], problems) == ["count"]
    with pytest.raises(PinnedDataMismatch) as caught:
        check_pins(project, ["count", "train"], refuse=True)
    assert exit_code_for(caught.value) == 2
    text = caught.value.render()
    assert "`data/events` differs from its pin in sluice.lock" in text
    assert "`data/raw.csv` (pinned in data/raw.csv.dvc) is missing" in text


def test_missing_sluice_lock_data_says_pull(project: Project) -> None:
    (project.root / "data/events/a.csv").unlink()
    (project.root / "data/events/b.csv").unlink()
    (project.root / "data/events").rmdir()
    [problem] = check_pins(project, ["count"])
    assert problem.state == "missing"
    assert "sluice data pull data/events" in problem.fix()


def test_only_the_selected_stages_data_is_checked(project: Project) -> None:
    (project.root / "data/labels/l.csv").write_bytes(b"n\n")  # read by `other` (a glob)
    assert check_pins(project, ["count"], refuse=True) == []
    [problem] = check_pins(project, ["other"])
    assert (problem.path, problem.stages) == ("data/labels", ("other",))


def test_unchanged_data_is_not_hashed_again(project: Project,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []
    real_xxh3, real_md5 = hashing.hash_file_uncached, dvc_md5.file_md5

    def xxh3(path: Path | str) -> str:
        reads.append(os.path.basename(path))
        return real_xxh3(path)

    def md5(path: Path | str, algorithm: str = dvc_md5.MD5) -> str:
        reads.append(os.path.basename(path))
        return real_md5(path, algorithm)

    monkeypatch.setattr(hashing, "hash_file_uncached", xxh3)
    monkeypatch.setattr(dvc_md5, "file_md5", md5)
    assert check_pins(project, ["count", "train", "other"]) == []
    assert sorted(reads) == ["a.csv", "b.csv", "l.csv", "raw.csv"]
    # The next run (a new process: a fresh project and stat cache) reads nothing.
    again = load_project(project.root)
    assert check_pins(again, ["count", "train", "other"], refuse=True) == []
    assert len(reads) == 4


def test_lineage_records_the_raw_data_upstream_of_training(project: Project) -> None:
    lineage = data_lineage(project, ["train"])
    events, raw = lineage["data/events"], lineage["data/raw.csv"]
    assert events == {"dataset": "events", "pin": _events_pin().hash,
                      "pinned_by": "sluice.lock", "hash": _events_pin().hash}
    assert raw["pinned_by"] == "data/raw.csv.dvc"
    assert raw["pin"] == "dvc-md5:" + hashlib.md5(b"raw\r\n").hexdigest()
    assert raw["hash"] == hash_bytes(b"raw\r\n")
    assert "data/labels" not in lineage  # read by a stage outside the chain


def test_dvc_pointer_files_count_only_in_a_dvc_repository(tmp_path: Path) -> None:
    """As for DVC itself: a `.dvc/` folder here or above; elsewhere no git call is made."""
    from sluice.data.status import pointer_files

    project = tmp_path / "repo" / "ml"
    project.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    (project / "raw.csv.dvc").write_text("outs:\n- md5: 0\n  path: raw.csv\n")
    assert pointer_files(project) == []
    (tmp_path / "repo" / ".dvc").mkdir()  # `dvc init` at the repository's top
    assert pointer_files(project) == ["raw.csv.dvc"]
