"""The stat cache: (path, size, mtime_ns, inode) → content hash, in one index file.

It is what lets a no-op ``sluice run`` or ``sluice data status`` finish without
reading data files. An entry is trusted only when the file's mtime lies well
before the moment it was recorded: a file rewritten within the same timestamp
tick as its hashing (the "racy" case git also guards against) is otherwise
indistinguishable from the hashed one. Such an entry is never trusted, so it is
not even kept.

The index (``.sluice/stat-index``) is one file: a magic line, each part's length
and xxh3-64 checksum, then the :mod:`marshal`-ed parts, each read when first
needed (a warm status reads only the first): trees, ``path → (listing
signature, newest mtime_ns, recorded_ns, hash)``; folders, ``path → (names,
stats, hashes, prefix, manifest rows)``, one folder's files as a few blobs
(:mod:`sluice.util.treewalk` compares a whole folder with two comparisons and
decodes one only when it changed); and files, ``path → (inode, size, mtime_ns, recorded_ns, hash)``.
The files part is decoded only when a file is looked up by path; an index
written without new file entries copies that part over undecoded. Reading it
imports nothing beyond the standard library and xxhash (SQLite cost ten times
as much). A part that is damaged, truncated, of another version, or whose
checksum does not match is ignored — it only costs rehashing — and replaced at
the next flush. Writers merge:
:meth:`StatCache.flush` takes a lock beside the index, re-reads it if another
process replaced it meanwhile, adds its own entries and replaces the file
atomically, so parallel stages that hash at the same time keep each other's
entries.

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
from typing import cast

import xxhash

_RACY_NS = 1_000_000_000  # timestamps on some filesystems are this coarse
DEFAULT_ALGORITHM = "xxh3"  # sluice's own content hash (sluice.util.hashing)
INDEX_FILE = "stat-index"  # under .sluice/
_MAGIC = b"sluice stat-index 5\n"
# After the magic, for each part (trees, folders, files): its length and its xxh3-64
# (big-endian), then the parts. Each part is read and checked only when first needed:
# a warm status reads the trees alone.
_PARTS = 3
_HEAD = len(_MAGIC) + 16 * _PARTS
_MARSHAL_VERSION = 4

Row = tuple[int, int, int, int, str]  # inode, size, mtime_ns, recorded_ns, hash
# A folder's digest: the signature of its listing (every file's relative path, inode,
# size and mtime_ns), the newest of those mtimes, when it was recorded, the digest.
TreeRow = tuple[str, int, int, str]
# A folder's files, all recorded well after their mtimes (see sluice.util.treewalk):
# their names "\0"-joined, their (inode, size, mtime_ns) packed, their hashes "\0"-joined,
# the folder's path relative to the pinned folder, and its files' rows of that folder's manifest.
FolderRow = tuple[str, bytes, str, str, bytes]


def _extents(head: bytes) -> list[tuple[int, int, int]] | None:
    """(offset, length, checksum) of each part, from the head of an index file."""
    if len(head) < _HEAD or not head.startswith(_MAGIC):
        return None
    extents, offset = [], _HEAD
    for at in range(len(_MAGIC), _HEAD, 16):
        length = int.from_bytes(head[at:at + 8], "big")
        extents.append((offset, length, int.from_bytes(head[at + 8:at + 16], "big")))
        offset += length
    return extents


def _checked(blob: bytes | memoryview, extent: tuple[int, int, int]) -> bool:
    """Whether a part is whole and undamaged: never trust a single entry of one that is not."""
    return len(blob) == extent[1] and xxhash.xxh3_64_intdigest(blob) == extent[2]


def _loads(blob: bytes | memoryview | None) -> dict[str, object] | None:
    if blob is None:
        return None
    try:
        value = marshal.loads(blob)
    except (ValueError, EOFError, TypeError):
        return None
    return value if isinstance(value, dict) else None


def _parts(data: bytes) -> list[memoryview | None]:
    """Each part of an index file's bytes (still marshalled), None where it is not sound."""
    extents = _extents(data[:_HEAD])
    if extents is None:
        return [None] * _PARTS
    view = memoryview(data)
    return [view[o:o + n] if _checked(view[o:o + n], (o, n, c)) else None
            for o, n, c in extents]


def decode_index(data: bytes) -> tuple[dict[str, Row], dict[str, TreeRow]] | None:
    """(file entries, tree entries) of an index file's bytes; None if it is not sound."""
    trees, _, files = (_loads(part) for part in _parts(data))
    if trees is None or files is None:
        return None
    return cast(dict[str, Row], files), cast(dict[str, TreeRow], trees)


def encode_index(rows: dict[str, Row] | bytes | memoryview, trees: dict[str, TreeRow],
                 folders: dict[str, FolderRow] | None = None) -> bytes:
    """The index file's bytes; ``rows`` may be the files part as read (still marshalled)."""
    files = rows if isinstance(rows, bytes | memoryview) else marshal.dumps(rows, _MARSHAL_VERSION)
    parts = [marshal.dumps(trees, _MARSHAL_VERSION),
             marshal.dumps(folders or {}, _MARSHAL_VERSION), files]
    head = b"".join([len(part).to_bytes(8, "big") + xxhash.xxh3_64_intdigest(part)
                     .to_bytes(8, "big") for part in parts])
    return b"".join([_MAGIC, head, *parts])


def _identity(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_ino, st.st_size, st.st_mtime_ns


class _Snapshot:
    """One version of the index file: its trees at once, its other parts when first needed.

    A part read later comes from the same version (same inode, size and mtime;
    writers replace the file, never rewrite it) or not at all: a miss, never a
    mix of two versions.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.trees: dict[str, TreeRow] = {}
        self._folders: dict[str, FolderRow] | None = None
        self._files: bytes | None = None
        self._rows: dict[str, Row] | None = None
        self._extents: list[tuple[int, int, int]] | None = None
        self.identity: tuple[int, int, int] | None = None
        try:
            with open(path, "rb") as handle:
                st = os.fstat(handle.fileno())
                self._extents = _extents(handle.read(_HEAD))
                blob = handle.read(self._extents[0][1]) if self._extents else b""
        except OSError:
            return
        self.identity = _identity(st)
        if self._extents is not None and _checked(blob, self._extents[0]):
            self.trees = cast(dict[str, TreeRow], _loads(blob) or {})

    def _read(self, part: int) -> bytes | None:
        if self._extents is None:
            return None
        offset, length, _ = extent = self._extents[part]
        try:
            with open(self.path, "rb") as handle:
                if _identity(os.fstat(handle.fileno())) != self.identity:
                    return None  # replaced since: only a cache miss
                handle.seek(offset)
                blob = handle.read(length)
        except OSError:
            return None
        return blob if _checked(blob, extent) else None

    @property
    def folders(self) -> dict[str, FolderRow]:
        if self._folders is None:
            self._folders = cast(dict[str, FolderRow], _loads(self._read(1)) or {})
        return self._folders

    def files_part(self) -> dict[str, Row] | bytes:
        """The file entries, or their part of the file as read if nothing decoded them."""
        if self._rows is None:
            self._files = self._files or self._read(2)
            if self._files is not None:
                return self._files
        return self.rows

    @property
    def rows(self) -> dict[str, Row]:
        if self._rows is None:
            files = _loads(self._files or self._read(2))
            self._rows = cast(dict[str, Row], files) if files is not None else {}
            self._files = None
        return self._rows


class StatCache:
    """Lookups are read from one snapshot; new entries are written in one batch by flush().

    Besides files, whole folders: a folder whose listing (paths, inodes, sizes,
    mtimes) is the one recorded, all older than the racy window then, has the
    recorded digest, without a lookup per file or building its manifest.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._snapshot: _Snapshot | None = None
        self._pending: dict[str, Row] = {}
        self._pending_trees: dict[str, TreeRow] = {}
        self._pending_folders: dict[str, FolderRow] = {}

    def _load(self) -> _Snapshot:
        if self._snapshot is None:
            self._snapshot = _Snapshot(self.path)
        return self._snapshot

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
        return self.trusted(self._pending.get(key) or self._load().rows.get(key), st)

    def get_many(self, paths: list[str], stats: list[os.stat_result]) -> list[str | None]:
        """:meth:`get` of sluice's own digest for many files (one loop, no method calls)."""
        rows, pending, trusted = self._load().rows, self._pending, self.trusted
        if pending:
            return [trusted(pending.get(path) or rows.get(path), st)
                    for path, st in zip(paths, stats, strict=True)]
        get = rows.get
        return [trusted(get(path), st) for path, st in zip(paths, stats, strict=True)]

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

    def get_tree(self, path: str, signature: str) -> str | None:
        """The digest recorded for the folder ``path`` with this listing signature, else None."""
        row = self._pending_trees.get(path) or self._load().trees.get(path)
        if row is None or row[0] != signature or row[2] - row[1] < _RACY_NS:
            return None
        return row[3]

    def put_tree(self, path: str, signature: str, newest_mtime_ns: int, digest: str,
                 now_ns: int | None = None) -> None:
        """Remember a folder's digest; not if one of its files is within the racy window."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        if now_ns - newest_mtime_ns < _RACY_NS:
            self._pending_trees.pop(path, None)
            return
        self._pending_trees[path] = (signature, newest_mtime_ns, now_ns, digest)

    def get_folder(self, path: str) -> FolderRow | None:
        """The files recorded for the folder ``path`` (see :mod:`sluice.util.treewalk`)."""
        return self._pending_folders.get(path) or self._load().folders.get(path)

    def put_folder(self, path: str, row: FolderRow) -> None:
        """Record a folder's files; the caller checked that all lie outside the racy window."""
        self._pending_folders[path] = row

    def flush(self) -> None:
        """Merge new entries into the index file; losing them (a crash) only costs a rehash.

        Nothing new (a warm status, a racy edit not worth keeping): nothing is written.
        """
        if not self._pending and not self._pending_trees and not self._pending_folders:
            return
        from sluice.util.fs import FileLock, atomic_write_bytes

        lock = FileLock(self.path.with_name(self.path.name + ".lock"))
        try:
            lock.acquire(blocking=True)
            try:
                snapshot = self._load()
                try:
                    now = _identity(os.stat(self.path))
                except OSError:
                    now = None
                if now != snapshot.identity:  # another process wrote it: keep its entries
                    snapshot = _Snapshot(self.path)
                if self._pending:
                    snapshot.rows.update(self._pending)
                snapshot.trees.update(self._pending_trees)
                snapshot.folders.update(self._pending_folders)
                atomic_write_bytes(self.path, encode_index(snapshot.files_part(), snapshot.trees,
                                                           snapshot.folders))
                with contextlib.suppress(OSError):
                    snapshot.identity = _identity(os.stat(self.path))
            finally:
                lock.release()
        except OSError:
            return  # a read-only checkout, a full disk: it is only a cache
        self._snapshot = snapshot
        self._pending.clear()
        self._pending_trees.clear()
        self._pending_folders.clear()
