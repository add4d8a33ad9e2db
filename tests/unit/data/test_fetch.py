"""Fetching the pinned data that selected stages read on an empty runner (sluice.data.fetch),
and the read-only shared layer pull-request jobs use."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sluice.cli.main import exit_code_for
from sluice.data.fetch import FetchProgress, fetch_missing, missing_pins
from sluice.data.versioning import data_add, read_pins, transfer
from sluice.errors import CorruptObject, PinnedDataMismatch
from sluice.store.layered import LayeredStore
from sluice.store.local import LocalStore
from sluice.workspace.project import Project, load_project
from tests.unit._util import write_project

CONFIG = """\
storage:
  cache: {shared}
stages:
  count:
    cmd: cat data/events/* > ${{outs.n}}
    deps: [data/events]
    outs: {{n: build/n.txt}}
  train:
    cmd: cat ${{stages.count.outs.n}} data/raw.csv > ${{outs.model}}
    deps: [data/raw.csv]
    outs: {{model: build/model.txt}}
  other:
    cmd: cat data/labels.csv > ${{outs.x}}
    deps: [data/labels.csv]
    outs: {{x: build/x.txt}}
"""
DATA = {"data/events/a.csv": b"1\n2\n", "data/events/b.csv": b"3\n", "data/events/c/d.csv": b"4\n",
        "data/raw.csv": b"raw\n", "data/labels.csv": b"y\n"}


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    return tmp_path / "shared"


@pytest.fixture
def pushed(tmp_path: Path, shared: Path) -> Path:
    """A project whose data is pinned and pushed to a shared folder; returns its root."""
    root = write_project(tmp_path / "origin", CONFIG.format(shared=shared),
                         {p: d.decode() for p, d in DATA.items()})
    project = load_project(root)
    data_add(project, [str(root / p) for p in ("data/events", "data/raw.csv", "data/labels.csv")])
    transfer(project.store, LocalStore(shared), list(read_pins(project).values()))
    return root


def _empty_runner(root: Path) -> Project:
    """The same checkout as a fresh clone has it: sluice.lock, no data, no .sluice."""
    shutil.rmtree(root / "data")
    shutil.rmtree(root / ".sluice")
    return load_project(root)


def test_only_absent_sluice_lock_pins_of_the_selected_stages_are_missing(pushed: Path) -> None:
    project = load_project(pushed)
    assert missing_pins(project, ["count", "train", "other"]) == {}
    (pushed / "data/raw.csv").unlink()
    (pushed / "data/events/a.csv").write_bytes(b"edited\n")  # modified: never overwritten
    assert missing_pins(project, ["count", "train"]) == {"data/raw.csv": ["train"]}
    assert missing_pins(project, ["count", "other"]) == {}


def test_fetches_in_parallel_verified_and_checks_out_only_what_the_stages_read(
        pushed: Path, shared: Path) -> None:
    project = _empty_runner(pushed)
    seen: list[FetchProgress] = []
    result = fetch_missing(project, ["count", "train"], seen.append)
    assert sorted(result.paths) == ["data/events", "data/raw.csv"]
    assert result.copied == 5  # three files, the folder's manifest, raw.csv
    assert result.store is not None and str(shared) in result.store
    for rel in ("data/events/a.csv", "data/events/c/d.csv", "data/raw.csv"):
        assert (pushed / rel).read_bytes() == DATA[rel]
    assert not (pushed / "data/labels.csv").exists()  # `other` was not selected
    assert seen[0].done == 0 and seen[0].message.startswith(
        "fetching `data/events`, `data/raw.csv` (4 file(s)) from ")
    assert (seen[-1].done, seen[-1].total) == (5, 5)
    assert seen[-1].message.endswith("fetched 5/5 object(s) from " + result.store)
    # Done: a second call has nothing to do and opens no store.
    assert fetch_missing(project, ["count", "train"], seen.append).paths == []


def test_a_local_store_that_has_the_objects_is_enough(pushed: Path, shared: Path) -> None:
    shutil.rmtree(shared)
    project = load_project(pushed)
    shutil.rmtree(pushed / "data/events")
    seen: list[FetchProgress] = []
    assert fetch_missing(project, ["count"], seen.append).paths == ["data/events"]
    assert seen[0].message == "checking out `data/events` (3 file(s)) from the local store"


def test_an_object_in_no_store_names_the_pin_the_store_and_the_push(
        pushed: Path, shared: Path) -> None:
    raw = read_pins(load_project(pushed))["data/raw.csv"].hash
    for path in shared.rglob("*"):
        if path.is_file() and path.name in raw.replace(":", ""):
            path.unlink()
    assert not LocalStore(shared).has(raw)
    project = _empty_runner(pushed)
    with pytest.raises(PinnedDataMismatch) as caught:
        fetch_missing(project, ["count", "train"])
    text = caught.value.render()
    assert exit_code_for(caught.value) == 2
    assert f"not in the shared store {shared.as_uri()}; nothing was run" in text
    assert "`data/raw.csv` (" in text and "read by `train`" in text
    assert "`sluice data push data/raw.csv`" in text and "data/events" not in text
    assert not (pushed / "data").exists()  # nothing checked out before the error


def test_no_shared_store_is_a_clear_error(pushed: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_CACHE_URL", "none")
    project = _empty_runner(pushed)
    with pytest.raises(PinnedDataMismatch, match=r"SLUICE_CACHE_URL=none turns the shared "
                                                 r"store off[\s\S]*`data/raw.csv`"):
        fetch_missing(project, ["train"])


def test_a_corrupt_shared_object_is_never_checked_out(pushed: Path, shared: Path) -> None:
    raw = read_pins(load_project(pushed))["data/raw.csv"].hash
    victim = LocalStore(shared).object_path(raw)
    victim.chmod(0o644)
    victim.write_bytes(b"tampered\n")
    project = _empty_runner(pushed)
    with pytest.raises(CorruptObject):
        fetch_missing(project, ["train"])
    assert not (pushed / "data/raw.csv").exists()


def test_a_read_only_shared_layer_is_never_written(tmp_path: Path, shared: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_project(tmp_path / "p", CONFIG.format(shared=shared))
    monkeypatch.setenv("SLUICE_CACHE_READ_ONLY", "1")
    store = load_project(root).store
    assert isinstance(store, LayeredStore) and store.read_only
    (root / "out.txt").write_text("result\n")
    digest = store.add_file(root / "out.txt")
    store.put_run("f" * 32, {"stage": "s", "outs": {"o": {"path": "out.txt", "hash": digest}}})
    assert store.flush() == 0
    assert store.get_run("f" * 32) is not None and store.local.has(digest)  # kept locally
    assert not LocalStore(shared).has(digest) and LocalStore(shared).get_run("f" * 32) is None
    monkeypatch.delenv("SLUICE_CACHE_READ_ONLY")
    assert not load_project(root).store.read_only  # type: ignore[attr-defined]
