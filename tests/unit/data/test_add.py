"""`data add` of a folder: each file read once (by the copy), on several threads, and
the same pin, objects and stat cache entries as hashing first would give."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from sluice.data.versioning import data_add
from sluice.store.local import LocalStore
from sluice.util import hashing
from sluice.util.hashing import hash_file_uncached
from sluice.workspace.project import load_project
from tests.unit._util import write_project


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = write_project(tmp_path / "p", "stages: {}\n")
    for i in range(40):
        path = root / f"data/part{i % 4}/f{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(i * 97))
    (root / "data/big.bin").write_bytes(os.urandom(5 * 1024 * 1024 + 3))
    (root / "single.bin").write_bytes(b"one file")
    for path in root.rglob("*.bin"):  # older than the racy window: the stat cache trusts them
        os.utime(path, ns=(path.stat().st_mtime_ns - 10**10,) * 2)
    return root


def test_each_file_is_read_once_by_the_copy(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    want = {p: hash_file_uncached(p) for p in root.rglob("*.bin")}
    tree = hashing.hash_manifest([
        hashing.TreeEntry(p.relative_to(root / "data").as_posix(), d, p.stat().st_size)
        for p, d in want.items() if p.is_relative_to(root / "data")])

    def no_second_read(path: Any) -> str:
        raise AssertionError(f"{path} was read to hash it before the copy read it again")

    monkeypatch.setattr(hashing, "hash_file_uncached", no_second_read)
    project = load_project(root)
    pins = data_add(project, [str(root / "data"), str(root / "single.bin")])
    assert [p.hash for p in pins] == [tree, want[root / "single.bin"]]
    assert isinstance(project.store, LocalStore)
    for path, digest in want.items():
        assert project.store.object_path(digest).read_bytes() == path.read_bytes()
    # The digests the copy found are in the stat cache: a later status reads nothing.
    project = load_project(root)
    for path, digest in want.items():
        assert project.stat_cache.get(str(path), path.stat()) == digest


def test_files_are_copied_on_several_threads(root: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_TRANSFER_JOBS", "4")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    both = threading.Barrier(2, timeout=60)  # a hang, not a speed: fails if never two at once
    lock = threading.Lock()
    threads: list[int] = []
    real = LocalStore.add_file

    def add_file(self: LocalStore, src: Path, digest: str | None = None) -> str:
        with lock:
            first_two = len(threads) < 2
            threads.append(threading.get_ident())
        if first_two:  # the first call blocks its thread: the second must come from another
            both.wait()
        return real(self, src, digest)

    monkeypatch.setattr(LocalStore, "add_file", add_file)
    data_add(load_project(root), [str(root / "data")])
    assert len(set(threads)) >= 2


def test_a_second_add_copies_nothing(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = load_project(root)
    first = data_add(project, [str(root / "data")])
    calls: list[str | None] = []
    real = LocalStore.add_file

    def add_file(self: LocalStore, src: Path, digest: str | None = None) -> str:
        calls.append(digest)
        return real(self, src, digest)

    monkeypatch.setattr(LocalStore, "add_file", add_file)
    assert data_add(load_project(root), [str(root / "data")]) == first
    assert calls == []  # every file known to the stat cache and stored: not even offered
