"""`data add` / `data checkout` in link mode (`storage: link`, `--link`): hard links to
read-only objects, status still right, and a copy (with a notice) where links cannot go."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from sluice.data.status import data_status
from sluice.data.versioning import data_add, data_checkout
from sluice.store.local import LocalStore
from sluice.util.hashing import hash_file_uncached
from sluice.workspace.project import load_project
from tests.unit._util import write_project


def _make(tmp_path: Path, config: str = "stages: {}\n") -> Path:
    root = write_project(tmp_path / "p", config)
    for i in range(12):
        path = root / f"data/part{i % 3}/f{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(50 + i * 300))
    (root / "data/same.bin").write_bytes((root / "data/part0/f0.bin").read_bytes())  # a dup
    (root / "one.bin").write_bytes(b"a single file")
    return root


def _linked(root: Path, store: LocalStore, rel: str) -> bool:
    path = root / rel
    return os.path.samefile(path, store.object_path(hash_file_uncached(path)))


def test_add_with_link_makes_every_file_a_link_and_status_stays_right(tmp_path: Path) -> None:
    root = _make(tmp_path)
    content = {p: p.read_bytes() for p in root.rglob("*.bin")}
    project = load_project(root)
    data_add(project, [str(root / "data"), str(root / "one.bin")], link=True)
    store = project.store
    assert isinstance(store, LocalStore)
    for path, data in content.items():
        assert path.read_bytes() == data  # nothing lost
        assert _linked(root, store, str(path.relative_to(root)))
    assert {s.state for s in data_status(load_project(root))} == {"unchanged"}
    # A fresh stat cache rehashes the links and finds them unchanged too.
    for extra in root.glob(".sluice/*.db*"):
        extra.unlink()
    assert {s.state for s in data_status(load_project(root))} == {"unchanged"}


def test_replacing_a_linked_file_leaves_its_object_alone(tmp_path: Path) -> None:
    root = _make(tmp_path)
    project = load_project(root)
    data_add(project, [str(root / "one.bin")], link=True)
    path = root / "one.bin"
    obj = project.store.object_path(hash_file_uncached(path))  # type: ignore[attr-defined]
    # The documented way to change linked data: write a new file and rename it over.
    new = root / "one.bin.new"
    new.write_bytes(b"new content")
    os.replace(new, path)
    assert obj.read_bytes() == b"a single file"
    assert [s.state for s in data_status(load_project(root))] == ["modified"]
    data_checkout(load_project(root), link=True)
    assert path.read_bytes() == b"a single file" and os.path.samefile(path, obj)


def test_config_storage_link_makes_add_and_checkout_link(tmp_path: Path) -> None:
    root = _make(tmp_path, "storage:\n  link: true\n")
    project = load_project(root)
    data_add(project, [str(root / "data")])
    store = project.store
    assert isinstance(store, LocalStore)
    assert _linked(root, store, "data/part1/f4.bin")
    import shutil

    shutil.rmtree(root / "data")
    assert data_checkout(load_project(root)) == ["data"]
    assert _linked(root, store, "data/part1/f4.bin") and _linked(root, store, "data/same.bin")
    assert {s.state for s in data_status(load_project(root))} == {"unchanged"}
    # --copy overrides the config: a checkout of copies, the store untouched.
    shutil.rmtree(root / "data")
    data_checkout(load_project(root), link=False)
    assert (root / "data/part1/f4.bin").stat().st_nlink == 1


def test_where_links_cannot_go_add_copies_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _make(tmp_path)
    real = os.link

    def cross_device(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if "cache" in str(dst) or "cache" in str(src):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "link", cross_device)
    notes: list[str] = []
    project = load_project(root)
    data_add(project, [str(root / "data")], link=True, on_notice=notes.append)
    assert len(notes) == 1 and "13 file(s) were copied, not linked" in notes[0]
    assert (root / "data/part1/f4.bin").stat().st_nlink == 1
    assert {s.state for s in data_status(load_project(root))} == {"unchanged"}
