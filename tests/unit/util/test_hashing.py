"""Content hashes: xxh3-128 of bytes and files, manifests of directory trees."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import xxhash

from sluice.util import hashing
from sluice.util.hashing import (
    DIR_SUFFIX,
    Hasher,
    TreeEntry,
    hash_bytes,
    hash_file_uncached,
    hash_manifest,
    manifest_bytes,
    manifest_from_bytes,
    walk_files,
)
from sluice.util.statcache import StatCache


def _write(root: Path, files: dict[str, bytes | str]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            data = data.encode()
        path.write_bytes(data)
    return root


@pytest.fixture
def hasher(tmp_path: Path) -> Hasher:
    return Hasher(StatCache(tmp_path / "state" / "stat-index"))


def test_known_digests() -> None:
    assert hash_bytes(b"") == "99aa06d3014798d86001c324468d497f"
    assert hash_bytes(b"hello sluice\n") == "415c27bf17e76a3f7a099a40d3d03c86"


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 128, 240, 241, 4096, 1 << 20])
def test_hash_bytes_is_xxh3_128(size: int) -> None:
    data = random.Random(size).randbytes(size)
    assert hash_bytes(data) == xxhash.xxh3_128_hexdigest(data)
    assert len(hash_bytes(data)) == 32


@pytest.mark.parametrize("size", [0, 10, hashing._SMALL - 1, hashing._SMALL, hashing._SMALL + 1,
                                  hashing._CHUNK - 1, hashing._CHUNK, 2 * hashing._CHUNK + 7])
def test_file_hash_equals_bytes_hash(tmp_path: Path, size: int) -> None:
    data = random.Random(size).randbytes(size)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert hash_file_uncached(path) == xxhash.xxh3_128_hexdigest(data)
    assert hash_file_uncached(str(path)) == hash_bytes(data)


def test_a_small_file_is_one_read_of_its_size(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 100)
    asked: list[int] = []
    real = os.read

    def read(fd: int, n: int) -> bytes:
        asked.append(n)
        return real(fd, n)

    monkeypatch.setattr(os, "read", read)
    assert hash_file_uncached(path) == hash_bytes(b"x" * 100)
    assert asked == [101]  # not a megabyte asked for (and allocated) per small file


def test_a_file_that_grew_after_its_stat_is_hashed_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.fstat
    monkeypatch.setattr(os, "fstat", lambda fd: os.stat_result((*real(fd)[:6], 10,
                                                                *real(fd)[7:])))
    path = tmp_path / "f.bin"
    path.write_bytes(b"y" * 5000)
    assert hash_file_uncached(path) == hash_bytes(b"y" * 5000)


def test_manifest_is_canonical() -> None:
    h1, h2, h3 = (hash_bytes(str(i).encode()) for i in (1, 2, 3))
    entries = [TreeEntry("b/x.txt", h1, 3), TreeEntry("a.txt", h2, 5),
               TreeEntry("b/a.txt", h3, 0)]
    shuffled = list(reversed(entries))
    assert manifest_bytes(entries) == manifest_bytes(shuffled)
    assert manifest_bytes(entries) == (
        f'[{{"hash":"{h2}","path":"a.txt","size":5}},{{"hash":"{h3}","path":"b/a.txt",'
        f'"size":0}},{{"hash":"{h1}","path":"b/x.txt","size":3}}]').encode()
    assert hash_manifest(entries) == hash_bytes(manifest_bytes(entries)) + DIR_SUFFIX
    assert manifest_from_bytes(manifest_bytes(entries)) == sorted(entries, key=lambda e: e.path)


def test_empty_directory(tmp_path: Path, hasher: Hasher) -> None:
    (tmp_path / "empty").mkdir()
    assert hasher.tree(tmp_path / "empty") == hash_bytes(b"[]") + DIR_SUFFIX


TREE = {"a.txt": "alpha", "sub/b.txt": "beta", "sub/deeper/c.bin": b"\x00\x01", "z": ""}


def test_tree_digest_ignores_creation_order(tmp_path: Path, hasher: Hasher) -> None:
    one = _write(tmp_path / "one", TREE)
    two = _write(tmp_path / "two", dict(reversed(TREE.items())))
    assert hasher.tree(one) == hasher.tree(two)
    assert hasher.tree(one).endswith(DIR_SUFFIX)


def test_tree_entries(tmp_path: Path, hasher: Hasher) -> None:
    root = _write(tmp_path / "t", TREE)
    assert hasher.tree_entries(root) == [
        TreeEntry("a.txt", hash_bytes(b"alpha"), 5),
        TreeEntry("sub/b.txt", hash_bytes(b"beta"), 4),
        TreeEntry("sub/deeper/c.bin", hash_bytes(b"\x00\x01"), 2),
        TreeEntry("z", hash_bytes(b""), 0),
    ]


@pytest.mark.parametrize("change", ["content", "rename", "move", "add", "remove", "empty-dir"])
def test_tree_digest_changes(tmp_path: Path, change: str) -> None:
    root = _write(tmp_path / "t", TREE)
    before = Hasher(StatCache(tmp_path / "a.db")).tree(root)
    if change == "content":
        (root / "sub" / "b.txt").write_text("betA")
    elif change == "rename":
        (root / "a.txt").rename(root / "A.txt")
    elif change == "move":
        (root / "a.txt").rename(root / "sub" / "a.txt")
    elif change == "add":
        (root / "new").write_text("")
    elif change == "remove":
        (root / "z").unlink()
    else:
        (root / "nothing-inside").mkdir()  # a manifest lists files only
    after = Hasher(StatCache(tmp_path / "b.db")).tree(root)
    assert (after == before) is (change == "empty-dir")


def test_path_hashes_files_and_directories(tmp_path: Path, hasher: Hasher) -> None:
    root = _write(tmp_path / "t", TREE)
    assert hasher.path(root / "a.txt") == hash_bytes(b"alpha")
    assert hasher.path(root / "sub") == hasher.tree(root / "sub")
    with pytest.raises(FileNotFoundError):
        hasher.path(root / "missing")


def test_walk_files_follows_links_but_not_loops(tmp_path: Path) -> None:
    root = _write(tmp_path / "t", {"real/f.txt": "x", "other/g.txt": "y"})
    os.symlink("../other", root / "real" / "link")
    os.symlink("..", root / "real" / "loop")
    os.symlink("missing", root / "real" / "broken")
    os.symlink(root / "other" / "g.txt", root / "real" / "g-link.txt")
    # `loop` leads back to `t`; from there `real` (the folder being walked) is cut off
    assert [rel for rel, _ in walk_files(root / "real")] == [
        "f.txt", "g-link.txt", "link/g.txt", "loop/other/g.txt"]


def test_walk_files_reports_stat(tmp_path: Path) -> None:
    root = _write(tmp_path / "t", {"a": "12345"})
    [(rel, st)] = walk_files(root)
    assert rel == "a" and st.st_size == 5 and st.st_ino == os.stat(root / "a").st_ino


@pytest.mark.parametrize("path", ["a", "é/ü", 'x"y\\z', "\x00\n\u2028", "😀/f", "a\udcff"])
def test_manifest_bytes_are_canonical_json(path: str) -> None:
    import json

    entries = [TreeEntry(path, "0" * 32, 7), TreeEntry("b", "f" * 32 + DIR_SUFFIX, 0)]
    rows = [{"path": e.path, "hash": e.hash, "size": e.size}
            for e in sorted(entries, key=lambda e: e.path)]
    assert manifest_bytes(entries) == \
        json.dumps(rows, separators=(",", ":"), sort_keys=True).encode()


@pytest.fixture
def always_parallel(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Files of 1 KiB and more count as large, on two cores; file name → its thread."""
    import threading
    import time

    monkeypatch.setattr(hashing, "_LARGE", 1024)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    names: dict[str, str] = {}
    real = hashing.hash_file_uncached

    def noting(path: Path | str) -> str:
        names[os.path.basename(path)] = threading.current_thread().name
        time.sleep(0.002)  # long enough for both threads to take files
        return real(path)

    monkeypatch.setattr(hashing, "hash_file_uncached", noting)
    return names


def test_parallel_tree_hash_equals_serial(tmp_path: Path,
                                          always_parallel: dict[str, str]) -> None:
    rng = random.Random(7)
    root = _write(tmp_path / "t", {f"d{i % 5}/f{i}": rng.randbytes(rng.randint(0, 9000))
                                   for i in range(60)} | {"big": rng.randbytes(3 << 20)})
    parallel = Hasher(StatCache(tmp_path / "p")).tree_entries(root)
    small = {e.path.rsplit("/")[-1] for e in parallel if e.size < 1024}
    assert small and {always_parallel[n] for n in small} == {"MainThread"}
    assert always_parallel["big"] in ("MainThread", "sluice-hash-0")
    assert "sluice-hash-0" in always_parallel.values()  # large files on the other core
    serial = [TreeEntry(rel, hash_file_uncached(root / rel), st.st_size)
              for rel, st in walk_files(root)]
    assert parallel == serial


@pytest.mark.parametrize("size", [10, 2000])
def test_parallel_hashing_raises_the_first_error(tmp_path: Path, size: int,
                                                 always_parallel: dict[str, str]) -> None:
    import threading

    files = [_write(tmp_path, {f"f{i}": "x" * size}) / f"f{i}" for i in range(8)]
    files[3].unlink()
    with pytest.raises(FileNotFoundError):
        hashing.hash_files([str(f) for f in files], [size] * 8)
    assert [t for t in threading.enumerate() if t.name.startswith("sluice-hash")] == []


def test_a_file_vanishing_during_a_tree_hash_is_an_os_error(tmp_path: Path,
                                                            always_parallel: dict[str, str],
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    root = _write(tmp_path / "t", {f"f{i}": str(i) for i in range(8)})
    real = hashing.walk_files

    def then_remove(top: Path, **kwargs: bool) -> list[tuple[str, os.stat_result]]:
        found = real(top, **kwargs)
        (top / "f5").unlink()
        return found

    monkeypatch.setattr(hashing, "walk_files", then_remove)
    with pytest.raises(FileNotFoundError):
        Hasher(StatCache(tmp_path / "idx")).tree(root)
