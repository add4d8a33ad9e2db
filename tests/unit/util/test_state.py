"""The stat cache: unchanged files are never read twice; anything doubtful is rehashed."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from sluice.util import hashing
from sluice.util.hashing import Hasher, hash_bytes
from sluice.util.statcache import StatCache

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
    hasher = Hasher(StatCache(tmp_path / "state.db"))
    assert hasher.file(f) == hash_bytes(b"content")
    assert hasher.file(f) == hash_bytes(b"content")
    assert reads.count == 1


def test_hit_survives_flush_and_reopen(tmp_path: Path, reads: Reads) -> None:
    f = _file(tmp_path / "data.csv")
    first = StatCache(tmp_path / ".sluice" / "state.db")
    Hasher(first).file(f)
    first.flush()
    assert (tmp_path / ".sluice" / "state.db").is_file()
    again = Hasher(StatCache(tmp_path / ".sluice" / "state.db"))
    assert again.file(f) == hash_bytes(b"content")
    assert reads.count == 1


def test_tree_of_unchanged_files_is_not_read_again(tmp_path: Path, reads: Reads) -> None:
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    for name in ("a", "b", "sub/c"):
        _file(root / name, name)
    cache = StatCache(tmp_path / "state.db")
    first = Hasher(cache).tree(root)
    cache.flush()
    assert Hasher(StatCache(tmp_path / "state.db")).tree(root) == first
    assert reads.count == 3


@pytest.mark.parametrize("change", ["mtime", "size", "inode"])
def test_changed_stat_misses(tmp_path: Path, reads: Reads, change: str) -> None:
    f = _file(tmp_path / "data.csv", "content")
    cache = StatCache(tmp_path / "state.db")
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
    assert Hasher(StatCache(tmp_path / "state.db")).file(f) == \
        hash_bytes(f.read_bytes())
    assert reads.count == 2


def test_same_stat_at_another_path_misses(tmp_path: Path, reads: Reads) -> None:
    a = _file(tmp_path / "a")
    cache = StatCache(tmp_path / "state.db")
    Hasher(cache).file(a)
    os.rename(a, tmp_path / "b")  # same inode, size and mtime, but a different path
    Hasher(cache).file(tmp_path / "b")
    assert reads.count == 2


def test_racy_entry_is_not_trusted(tmp_path: Path, reads: Reads) -> None:
    # Written "now": a rewrite within the same timestamp tick would be invisible.
    f = _file(tmp_path / "data.csv", mtime_ns=time.time_ns())
    cache = StatCache(tmp_path / "state.db")
    hasher = Hasher(cache)
    hasher.file(f)
    hasher.file(f)
    cache.flush()
    Hasher(StatCache(tmp_path / "state.db")).file(f)
    assert reads.count == 3


def test_racy_window_is_one_second(tmp_path: Path) -> None:
    cache = StatCache(tmp_path / "state.db")
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
    cache = StatCache(tmp_path / "state.db")
    Hasher(cache).file(f)
    cache.flush()
    os.utime(f, ns=(OLD, OLD))  # as if the file had been written long before it was hashed
    later = StatCache(tmp_path / "state.db")
    Hasher(later).file(f)
    later.flush()
    Hasher(StatCache(tmp_path / "state.db")).file(f)
    assert reads.count == 2


def test_flush_without_entries_writes_nothing(tmp_path: Path) -> None:
    StatCache(tmp_path / "none" / "state.db").flush()
    assert not (tmp_path / "none").exists()


def test_flush_replaces_entries(tmp_path: Path) -> None:
    f = _file(tmp_path / "f", "one")
    cache = StatCache(tmp_path / "state.db")
    Hasher(cache).file(f)
    cache.flush()
    _file(f, "two", OLD + 5)
    cache2 = StatCache(tmp_path / "state.db")
    Hasher(cache2).file(f)
    cache2.flush()
    with sqlite3.connect(tmp_path / "state.db") as conn:
        rows = conn.execute("SELECT path, hash FROM stat_cache").fetchall()
    assert rows == [(str(f), hash_bytes(b"two"))]


def test_damaged_database_is_tolerated(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    db.write_bytes(b"this is not a sqlite database" * 100)
    f = _file(tmp_path / "f")
    cache = StatCache(db)
    assert Hasher(cache).file(f) == hash_bytes(b"content")
    cache.flush()  # may skip writing, but must not fail


def test_damaged_table_is_tolerated(tmp_path: Path, reads: Reads) -> None:
    db = tmp_path / "state.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE stat_cache (path TEXT)")  # the wrong shape
    f = _file(tmp_path / "f")
    assert Hasher(StatCache(db)).file(f) == hash_bytes(b"content")
    assert reads.count == 1


def test_digests_of_other_algorithms_are_kept_apart(tmp_path: Path, reads: Reads) -> None:
    f = _file(tmp_path / "data.csv")
    first = StatCache(tmp_path / "state.db")
    Hasher(first).file(f)
    first.put(str(f), os.stat(f), "an-md5", "md5")
    first.flush()
    again = StatCache(tmp_path / "state.db")
    assert again.get(str(f), os.stat(f), "md5") == "an-md5"
    assert again.get(str(f), os.stat(f), "md5-dos2unix") is None
    assert Hasher(again).file(f) == hash_bytes(b"content") and reads.count == 1
