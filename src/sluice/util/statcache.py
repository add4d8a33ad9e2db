"""The stat cache: (path, size, mtime_ns, inode) → content hash, in one index file.

It is what lets a no-op ``sluice run`` or ``sluice data status`` finish without
reading data files. An entry is trusted only when the file's mtime lies well
before the moment it was recorded: a file rewritten within the same timestamp
tick as its hashing (the "racy" case git also guards against) is otherwise
indistinguishable from the hashed one. Such an entry is never trusted, so it is
not even kept.

The index (``.sluice/stat-index``) is one file read in one go: a magic line, an
xxh3-64 checksum and a :mod:`marshal`-ed dict ``path → (inode, size, mtime_ns,
recorded_ns, hash)``. Reading 20,000 entries this way costs a few milliseconds
and imports nothing beyond the standard library and xxhash (SQLite cost ten
times as much). A file that is damaged, truncated, of another version, or whose
checksum does not match is ignored — it only costs rehashing — and replaced at
the next flush. Writers merge: :meth:`StatCache.flush` takes a lock beside the
index, re-reads it if another process replaced it meanwhile, adds its own
entries and replaces the file atomically, so parallel stages that hash at the
same time keep each other's entries.

Digests of other algorithms (DVC's md5 for ``.dvc`` pins, :mod:`sluice.util.dvc_md5`)
live in the same index under a key prefixed with the algorithm's name, so a file
checked against a DVC pin is read once too.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import time
from pathlib import Path

import xxhash

_RACY_NS = 1_000_000_000  # timestamps on some filesystems are this coarse
DEFAULT_ALGORITHM = "xxh3"  # sluice's own content hash (sluice.util.hashing)
INDEX_FILE = "stat-index"  # under .sluice/
_MAGIC = b"sluice stat-index 1\n"
_HEAD = len(_MAGIC) + 8  # magic, then the payload's xxh3-64 (big-endian)
_MARSHAL_VERSION = 4

Row = tuple[int, int, int, int, str]  # inode, size, mtime_ns, recorded_ns, hash


def decode_index(data: bytes) -> dict[str, Row] | None:
    """The entries of an index file's bytes; None when they are not a sound index."""
    if len(data) < _HEAD or not data.startswith(_MAGIC):
        return None
    payload = memoryview(data)[_HEAD:]
    if xxhash.xxh3_64_intdigest(payload) != int.from_bytes(data[len(_MAGIC):_HEAD], "big"):
        return None  # truncated or damaged: never trust a single entry of it
    try:
        rows = marshal.loads(payload)
    except (ValueError, EOFError, TypeError):
        return None
    if not isinstance(rows, dict):
        return None
    return rows


def encode_index(rows: dict[str, Row]) -> bytes:
    payload = marshal.dumps(rows, _MARSHAL_VERSION)
    return _MAGIC + xxhash.xxh3_64_intdigest(payload).to_bytes(8, "big") + payload


def _identity(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_ino, st.st_size, st.st_mtime_ns


class StatCache:
    """Lookups are read from one snapshot; new entries are written in one batch by flush()."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._rows: dict[str, Row] | None = None
        self._seen: tuple[int, int, int] | None = None  # the index file as it was read
        self._pending: dict[str, Row] = {}

    def _read(self) -> tuple[dict[str, Row], tuple[int, int, int] | None]:
        try:
            with open(self.path, "rb") as handle:
                st = os.fstat(handle.fileno())
                data = handle.read()
        except OSError:
            return {}, None
        rows = decode_index(data)
        return (rows if rows is not None else {}), _identity(st)

    def _load(self) -> dict[str, Row]:
        if self._rows is None:
            self._rows, self._seen = self._read()
        return self._rows

    @staticmethod
    def _key(path: str, algorithm: str) -> str:
        # Paths are absolute, so "md5:/…" never collides with a plain path.
        return path if algorithm == DEFAULT_ALGORITHM else f"{algorithm}:{path}"

    @staticmethod
    def trusted(row: Row | None, st: os.stat_result) -> str | None:
        """The digest of ``row`` if it describes the file ``st`` describes, else None."""
        if row is None:
            return None
        inode, size, mtime, recorded, digest = row
        if inode != st.st_ino or size != st.st_size or mtime != st.st_mtime_ns:
            return None
        if recorded - mtime < _RACY_NS:
            return None
        return digest

    def get(self, path: str, st: os.stat_result,
            algorithm: str = DEFAULT_ALGORITHM) -> str | None:
        key = self._key(path, algorithm)
        return self.trusted(self._pending.get(key) or self._load().get(key), st)

    def get_many(self, files: list[tuple[str, os.stat_result]]) -> list[str | None]:
        """:meth:`get` of sluice's own digest for many files (one loop, no method calls)."""
        rows, pending, trusted = self._load(), self._pending, self.trusted
        return [trusted(pending.get(path) or rows.get(path), st) for path, st in files]

    def put(self, path: str, st: os.stat_result, digest: str,
            algorithm: str = DEFAULT_ALGORITHM, now_ns: int | None = None) -> None:
        now_ns = time.time_ns() if now_ns is None else now_ns
        if now_ns - st.st_mtime_ns < _RACY_NS:
            # Written within a timestamp tick of now: never trusted (see get), so
            # not worth keeping; an older entry for the path is dropped with it.
            self._pending.pop(self._key(path, algorithm), None)
            return
        self._pending[self._key(path, algorithm)] = (st.st_ino, st.st_size, st.st_mtime_ns,
                                                     now_ns, digest)

    def flush(self) -> None:
        """Merge new entries into the index file; losing them (a crash) only costs a rehash."""
        if not self._pending:
            return
        from sluice.util.fs import FileLock, atomic_write_bytes

        lock = FileLock(self.path.with_name(self.path.name + ".lock"))
        try:
            lock.acquire(blocking=True)
            try:
                rows = self._load()
                try:
                    now = _identity(os.stat(self.path))
                except OSError:
                    now = None
                if now != self._seen:  # another process wrote it since: keep its entries
                    rows, self._seen = self._read()
                rows.update(self._pending)
                atomic_write_bytes(self.path, encode_index(rows))
                with contextlib.suppress(OSError):
                    self._seen = _identity(os.stat(self.path))
            finally:
                lock.release()
        except OSError:
            return  # a read-only checkout, a full disk: it is only a cache
        self._rows = rows
        self._pending.clear()
