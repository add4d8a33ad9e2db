"""The stat cache: unchanged files are never read twice; anything doubtful is rehashed."""

from __future__ import annotations

import marshal
import os
import sqlite3
import textwrap
import time
from pathlib import Path

import pytest
import xxhash

from sluice.util import hashing
from sluice.util.hashing import Hasher, hash_bytes
from sluice.util.statcache import StatCache, decode_index

OLD = time.time_ns() - 60 * 1_000_000_000  # a minute ago: well clear of the racy window


class Reads:
    """Counts calls to hash_file_uncached, i.e. actual reads of file content."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[str] = []
        real = hashing.hash_file_uncached

        def counting(path: Path | str) -> str:
            self.paths.append(os.path.basename(path))
            return real(path)

        monkeypatch.setattr(hashing, "hash_file_uncached", counting)

    @property
    def count(self) -> int:
        return len(self.paths)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Reads:
    return Reads(monkeypatch)


def _file(path: Path, data: str = "content", mtime_ns: int = OLD) -> Path:
    path.write_text(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def test_hit_avoids_reading(tmp_path: Path, reads: Reads) -> None:
    f = _file(tmp_path / "data.csv")
    hasher = Hasher(StatCache(tmp_path / "stat-index"))
    assert hasher.file(f) == hash_bytes(b"content")
    assert hasher.file(f) == hash_bytes(b"content")
    assert reads.count == 1


def test_hit_survives_flush_and_reopen(tmp_path: Path, reads: Reads) -> None:
    f = _file(tmp_path / "data.csv")
    first = StatCache(tmp_path / ".sluice" / "stat-index")
    Hasher(first).file(f)
    first.flush()
    assert (tmp_path / ".sluice" / "stat-index").is_file()
    again = Hasher(StatCache(tmp_path / ".sluice" / "stat-index"))
    assert again.file(f) == hash_bytes(b"content")
    assert reads.count == 1


def test_tree_of_unchanged_files_is_not_read_again(tmp_path: Path, reads: Reads) -> None:
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    for name in ("a", "b", "sub/c"):
        _file(root / name, name)
    cache = StatCache(tmp_path / "stat-index")
    first = Hasher(cache).tree(root)
    cache.flush()
    assert Hasher(StatCache(tmp_path / "stat-index")).tree(root) == first
    assert reads.count == 3


@pytest.mark.parametrize("change", ["mtime", "size", "inode"])
def test_changed_stat_misses(tmp_path: Path, reads: Reads, change: str) -> None:
    f = _file(tmp_path / "data.csv", "content")
    cache = StatCache(tmp_path / "stat-index")
    Hasher(cache).file(f)
    cache.flush()
    if change == "mtime":
        _file(f, "CONTENT", OLD + 1)  # same size, mtime differs by one nanosecond
    elif change == "size":
        _file(f, "content!", OLD)  # same mtime, different size
    else:
        _file(tmp_path / "new", "CONTENT", OLD)  # same size and mtime, new inode
        os.replace(tmp_path / "new", f)
    after = os.stat(f)
    assert (after.st_size == 7) is (change != "size")
    assert Hasher(StatCache(tmp_path / "stat-index")).file(f) == \
        hash_bytes(f.read_bytes())
    assert reads.count == 2


def test_same_stat_at_another_path_misses(tmp_path: Path, reads: Reads) -> None:
    a = _file(tmp_path / "a")
    cache = StatCache(tmp_path / "stat-index")
    Hasher(cache).file(a)
    os.rename(a, tmp_path / "b")  # same inode, size and mtime, but a different path
    Hasher(cache).file(tmp_path / "b")
    assert reads.count == 2


def test_racy_entry_is_not_trusted(tmp_path: Path, reads: Reads) -> None:
    # Written "now": a rewrite within the same timestamp tick would be invisible.
    f = _file(tmp_path / "data.csv", mtime_ns=time.time_ns())
    cache = StatCache(tmp_path / "stat-index")
    hasher = Hasher(cache)
    hasher.file(f)
    hasher.file(f)
    cache.flush()
    Hasher(StatCache(tmp_path / "stat-index")).file(f)
    assert reads.count == 3


def test_racy_window_is_one_second(tmp_path: Path) -> None:
    cache = StatCache(tmp_path / "stat-index")
    f = _file(tmp_path / "f")
    st = os.stat(f)
    now = st.st_mtime_ns
    row = (st.st_ino, st.st_size, st.st_mtime_ns)
    cache._pending[str(f)] = (*row, now + 999_999_999, "recorded-too-soon")
    assert cache.get(str(f), st) is None
    cache._pending[str(f)] = (*row, now + 1_000_000_000, "recorded-later")
    assert cache.get(str(f), st) == "recorded-later"


def test_entry_recorded_well_after_mtime_is_trusted_after_rehash(tmp_path: Path,
                                                                 reads: Reads) -> None:
    f = _file(tmp_path / "data.csv", mtime_ns=time.time_ns())
    cache = StatCache(tmp_path / "stat-index")
    Hasher(cache).file(f)
    cache.flush()
    os.utime(f, ns=(OLD, OLD))  # as if the file had been written long before it was hashed
    later = StatCache(tmp_path / "stat-index")
    Hasher(later).file(f)
    later.flush()
    Hasher(StatCache(tmp_path / "stat-index")).file(f)
    assert reads.count == 2


def test_flush_without_entries_writes_nothing(tmp_path: Path) -> None:
    StatCache(tmp_path / "none" / "stat-index").flush()
    assert not (tmp_path / "none").exists()


def _entries(path: Path) -> dict[str, str]:
    decoded = decode_index(path.read_bytes())
    assert decoded is not None
    return {p: row[4] for p, row in decoded[0].items()}


def test_flush_replaces_entries(tmp_path: Path) -> None:
    f = _file(tmp_path / "f", "one")
    cache = StatCache(tmp_path / "stat-index")
    Hasher(cache).file(f)
    cache.flush()
    _file(f, "two", OLD + 5)
    cache2 = StatCache(tmp_path / "stat-index")
    Hasher(cache2).file(f)
    cache2.flush()
    assert _entries(tmp_path / "stat-index") == {str(f): hash_bytes(b"two")}


def _flushed(tmp_path: Path, names: str = "abc") -> tuple[Path, list[Path]]:
    index = tmp_path / "stat-index"
    files = [_file(tmp_path / name, name) for name in names]
    cache = StatCache(index)
    for f in files:
        Hasher(cache).file(f)
    cache.flush()
    return index, files


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped", "empty", "old-sqlite",
                                    "not-a-dict"])
def test_damaged_index_is_rebuilt_never_trusted(tmp_path: Path, reads: Reads,
                                                damage: str) -> None:
    index, files = _flushed(tmp_path)
    data = index.read_bytes()
    if damage == "garbage":
        index.write_bytes(b"this is not an index" * 100)
    elif damage == "truncated":
        index.write_bytes(data[: len(data) - 7])
    elif damage == "flipped":  # one byte of a digest changed: the checksum no longer matches
        at = data.rindex(hash_bytes(b"b").encode())
        index.write_bytes(data[:at] + b"0" + data[at + 1:])
    elif damage == "empty":
        index.write_bytes(b"")
    elif damage == "old-sqlite":
        index.unlink()
        with sqlite3.connect(index) as conn:
            conn.execute("CREATE TABLE stat_cache (path TEXT)")
    else:
        trees = marshal.dumps({})  # a sound checksum over the wrong shape
        payload = trees + marshal.dumps([1, 2, 3])
        magic = data[:data.index(b"\n") + 1]
        index.write_bytes(magic + xxhash.xxh3_64_intdigest(payload).to_bytes(8, "big")
                          + len(trees).to_bytes(8, "big") + payload)
    reads.paths.clear()
    cache = StatCache(index)
    assert [Hasher(cache).file(f) for f in files] == [hash_bytes(n.encode()) for n in "abc"]
    assert reads.count == 3  # nothing trusted from the damaged file
    cache.flush()  # replaced by a sound index
    assert _entries(index) == {str(f): hash_bytes(f.name.encode()) for f in files}


def test_two_writers_keep_each_others_entries(tmp_path: Path) -> None:
    index = tmp_path / "stat-index"
    a, b = _file(tmp_path / "a", "a"), _file(tmp_path / "b", "b")
    first, second = StatCache(index), StatCache(index)
    Hasher(first).file(a)
    Hasher(second).file(b)  # both loaded the (absent) index before either wrote it
    first.flush()
    second.flush()
    assert _entries(index) == {str(a): hash_bytes(b"a"), str(b): hash_bytes(b"b")}
    Hasher(first).file(_file(tmp_path / "c", "c"))
    first.flush()  # first's snapshot is stale: it merges with what second wrote
    assert set(_entries(index)) == {str(a), str(b), str(tmp_path / "c")}


def test_concurrent_processes_all_land(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = textwrap.dedent("""
        import os, sys
        from pathlib import Path
        from sluice.util.hashing import Hasher
        from sluice.util.statcache import StatCache, decode_index
        folder, index, me = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
        for i in range(20):
            cache = StatCache(index)
            Hasher(cache).file(folder / f"{me}-{i}")
            cache.flush()
        """)
    for me in "pq":
        for i in range(20):
            _file(tmp_path / f"{me}-{i}", f"{me}{i}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path),
                               str(tmp_path / "stat-index"), me], env=env) for me in "pq"]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert len(_entries(tmp_path / "stat-index")) == 40


def test_an_entry_written_within_the_racy_window_is_not_kept(tmp_path: Path) -> None:
    f = _file(tmp_path / "f", mtime_ns=time.time_ns())
    cache = StatCache(tmp_path / "stat-index")
    cache.put(str(f), os.stat(f), "x")
    cache.flush()
    assert not (tmp_path / "stat-index").exists()  # nothing worth writing


def test_an_unwritable_index_is_only_a_missed_cache(tmp_path: Path) -> None:
    (tmp_path / "ro").mkdir()
    f = _file(tmp_path / "f")
    cache = StatCache(tmp_path / "ro" / "sub" / "stat-index")
    (tmp_path / "ro").chmod(0o500)
    try:
        assert Hasher(cache).file(f) == hash_bytes(b"content")
        cache.flush()  # must not fail
    finally:
        (tmp_path / "ro").chmod(0o700)


def test_digests_of_other_algorithms_are_kept_apart(tmp_path: Path, reads: Reads) -> None:
    f = _file(tmp_path / "data.csv")
    first = StatCache(tmp_path / "stat-index")
    Hasher(first).file(f)
    first.put(str(f), os.stat(f), "an-md5", "md5")
    first.flush()
    again = StatCache(tmp_path / "stat-index")
    assert again.get(str(f), os.stat(f), "md5") == "an-md5"
    assert again.get(str(f), os.stat(f), "md5-dos2unix") is None
    assert Hasher(again).file(f) == hash_bytes(b"content") and reads.count == 1


def _tree(root: Path, n: int = 4, mtime_ns: int = OLD) -> Path:
    (root / "sub").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        _file(root / ("sub" if i % 2 else "") / f"f{i}", f"data {i}", mtime_ns)
    return root


def _fresh_tree_hash(index: Path, root: Path) -> str:
    cache = StatCache(index)
    digest = Hasher(cache).tree(root)
    cache.flush()
    return digest


def _expected(root: Path) -> str:
    from sluice.util.hashing import TreeEntry, hash_manifest, walk_files

    return hash_manifest([TreeEntry(rel, hash_bytes((root / rel).read_bytes()), st.st_size)
                          for rel, st in walk_files(root)])


def test_an_unchanged_folder_needs_no_lookup_per_file(tmp_path: Path, reads: Reads,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    root, index = _tree(tmp_path / "t"), tmp_path / "stat-index"
    first = _fresh_tree_hash(index, root)
    assert first == _expected(root) and reads.count == 4

    def no(*args: object) -> None:
        raise AssertionError("looked up file by file")

    monkeypatch.setattr(StatCache, "get_many", no)
    assert _fresh_tree_hash(index, root) == first and reads.count == 4


@pytest.mark.parametrize("change", ["content-and-mtime", "same-size-new-inode", "added",
                                    "removed", "renamed"])
def test_a_changed_folder_listing_is_rehashed(tmp_path: Path, reads: Reads,
                                              change: str) -> None:
    root, index = _tree(tmp_path / "t"), tmp_path / "stat-index"
    _fresh_tree_hash(index, root)
    if change == "content-and-mtime":
        _file(root / "f0", "DATA 0", OLD + 1)
    elif change == "same-size-new-inode":  # same size and mtime: only the inode tells
        _file(tmp_path / "new", "DATA 0", OLD)
        os.replace(tmp_path / "new", root / "f0")
    elif change == "added":
        _file(root / "sub" / "extra", "x")
    elif change == "removed":
        (root / "f0").unlink()
    else:
        os.rename(root / "f0", root / "g0")  # same inode, size and mtime; another name
    assert _fresh_tree_hash(index, root) == _expected(root)


def test_a_folder_with_a_file_in_the_racy_window_is_not_recorded(tmp_path: Path,
                                                                 reads: Reads) -> None:
    root, index = _tree(tmp_path / "t"), tmp_path / "stat-index"
    now = time.time_ns()
    _file(root / "f0", "data 0", now)  # just written
    assert _fresh_tree_hash(index, root) == _expected(root)
    # Rewritten within the same timestamp tick: same size, same mtime, same inode.
    with open(root / "f0", "r+") as handle:
        handle.write("DATA 0")
    os.utime(root / "f0", ns=(now, now))
    assert _fresh_tree_hash(index, root) == _expected(root)


def test_signatures_tell_same_stats_under_other_names(tmp_path: Path) -> None:
    from sluice.util.hashing import listing_signature

    st = os.stat(_file(tmp_path / "f"))
    assert listing_signature([("a", st), ("b/c", st)])[0] != \
        listing_signature([("a/b", st), ("c", st)])[0]
    assert listing_signature([])[1] == 0
