"""The stat cache: (path, size, mtime_ns, inode) → content hash, in SQLite.

It is what lets a no-op ``sluice run`` finish without reading data files. An
entry is trusted only when the file's mtime lies well before the moment it was
recorded: a file rewritten within the same timestamp tick as its hashing (the
"racy" case git also guards against) is otherwise indistinguishable from the
hashed one.

Digests of other algorithms (DVC's md5 for ``.dvc`` pins, :mod:`sluice.util.dvc_md5`)
live in the same table under a key prefixed with the algorithm's name, so a file
checked against a DVC pin is read once too.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path

_RACY_NS = 1_000_000_000  # timestamps on some filesystems are this coarse
DEFAULT_ALGORITHM = "xxh3"  # sluice's own content hash (sluice.util.hashing)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS stat_cache (
    path TEXT PRIMARY KEY,
    inode INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    recorded_ns INTEGER NOT NULL,
    hash TEXT NOT NULL
)
"""


class StatCache:
    """Lookups are read from one snapshot; new entries are written in one batch by flush()."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._rows: dict[str, tuple[int, int, int, int, str]] | None = None
        self._pending: dict[str, tuple[int, int, int, int, str]] = {}

    def _connect(self) -> sqlite3.Connection:
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.db_path, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(_SCHEMA)
        return conn

    def _load(self) -> dict[str, tuple[int, int, int, int, str]]:
        if self._rows is None:
            self._rows = {}
            if self.db_path.exists():
                try:
                    conn = self._connect()
                    try:
                        for path, inode, size, mtime, recorded, digest in conn.execute(
                                "SELECT path, inode, size, mtime_ns, recorded_ns, hash "
                                "FROM stat_cache"):
                            self._rows[path] = (inode, size, mtime, recorded, digest)
                    finally:
                        conn.close()
                except sqlite3.DatabaseError:
                    # A damaged cache only costs rehashing: start a fresh one.
                    self._rows = {}
                    for suffix in ("", "-wal", "-shm"):
                        with contextlib.suppress(OSError):
                            os.unlink(f"{self.db_path}{suffix}")
        return self._rows

    @staticmethod
    def _key(path: str, algorithm: str) -> str:
        # Paths are absolute, so "md5:/…" never collides with a plain path.
        return path if algorithm == DEFAULT_ALGORITHM else f"{algorithm}:{path}"

    def get(self, path: str, st: os.stat_result,
            algorithm: str = DEFAULT_ALGORITHM) -> str | None:
        key = self._key(path, algorithm)
        row = self._pending.get(key) or self._load().get(key)
        if row is None:
            return None
        inode, size, mtime, recorded, digest = row
        if (inode, size, mtime) != (st.st_ino, st.st_size, st.st_mtime_ns):
            return None
        if recorded - mtime < _RACY_NS:
            return None
        return digest

    def put(self, path: str, st: os.stat_result, digest: str,
            algorithm: str = DEFAULT_ALGORITHM) -> None:
        self._pending[self._key(path, algorithm)] = (st.st_ino, st.st_size, st.st_mtime_ns,
                                                      time.time_ns(), digest)

    def flush(self) -> None:
        """Write new entries; losing them (a crash before flush) only costs a rehash."""
        if not self._pending:
            return
        rows = [(p, *v) for p, v in self._pending.items()]
        try:
            conn = self._connect()
            try:
                with conn:
                    conn.executemany(
                        "INSERT OR REPLACE INTO stat_cache "
                        "(path, inode, size, mtime_ns, recorded_ns, hash) "
                        "VALUES (?, ?, ?, ?, ?, ?)", rows)
            finally:
                conn.close()
        except sqlite3.DatabaseError:
            return  # locked for too long by another run, or damaged: it is only a cache
        self._load().update(self._pending)
        self._pending.clear()
