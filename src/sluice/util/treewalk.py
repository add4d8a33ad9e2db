"""Digests of pinned files and folders from one quick walk: a warm `sluice data status`.

:meth:`sluice.util.hashing.Hasher.paths` gives the same digests; this is its
cheaper twin for the status path, where the cost of a warm answer is all Python
overhead on top of one ``stat`` per file (measured on 20,000 files: the generic
walk, listing signature and per-file lookups cost as much again as the stats).

- The walk keeps each folder's files as they come (names and stats, in directory
  order) and hashes the listing folder by folder on the way: no relative path
  string, no tuple per file and no sort unless the folder's digest is needed.
- A folder whose listing signature is the one recorded has the recorded digest
  (stored under ``walk:PATH`` among the stat index's trees, beside Hasher's own).
- Otherwise each sub-folder is compared with its record in the index (names and
  packed stats, two comparisons); only a sub-folder that changed is looked at
  file by file, and only files no record knows are looked up in the index's
  file entries, whose decoding costs more than a warm status.

The racy rule is :mod:`sluice.util.statcache`'s: a folder's files are recorded
only when all of them are older than the racy window at the moment their walk
began, so a file rewritten within its mtime's tick (same size, even same inode)
is never vouched for; an inode, size or mtime that differs, a name added,
removed or renamed, each makes the folder's record mismatch.
"""

from __future__ import annotations

import os
import stat
import time
from array import array
from itertools import chain
from operator import attrgetter
from pathlib import Path

import xxhash

from sluice.util import hashing
from sluice.util.statcache import _RACY_NS, FolderRow, StatCache

TREE_KEY = "walk:"  # before the folder's path, among the stat index's trees


class Folder:
    """One folder's regular files (symlinks followed), in directory order."""

    __slots__ = ("ids", "names", "path", "prefix", "stats")

    def __init__(self, path: str, prefix: str) -> None:
        self.path = path  # as walked: the pinned root joined with the relative folder
        self.prefix = prefix  # relative to the pinned root, "" or ending in "/"
        self.names: list[str] = []
        self.stats: list[os.stat_result] = []
        self.ids = b""  # every file's (inode, size, mtime_ns), packed

    def pack(self) -> None:
        try:
            self.ids = array("q", chain.from_iterable(map(_IDS, self.stats))).tobytes()
        except OverflowError:  # an inode above 2**63, an mtime after 2262: rare, spelt out
            self.ids = repr(list(map(_IDS, self.stats))).encode()


_IDS = attrgetter("st_ino", "st_size", "st_mtime_ns")
_MTIME = attrgetter("st_mtime_ns")


def _scan(path: str) -> tuple[list[str], list[os.stat_result], list[tuple[os.DirEntry[str],
                                                                          os.stat_result]]]:
    """A folder's regular files (names, stats) and sub-folders, symlinks followed.

    Comprehensions, not a loop with a branch per entry: on 20,000 files the
    difference is a fifth of the whole walk. An entry that vanishes meanwhile
    or cannot be stat'ed (a broken link) is skipped, as walk_files skips it.
    """
    with os.scandir(path) as entries:
        listed = list(entries)
    try:
        files = [entry for entry in listed if not entry.is_dir() and entry.is_file()]
        stats = [entry.stat() for entry in files]
        folders = [(entry, entry.stat()) for entry in listed if entry.is_dir()]
        return [entry.name for entry in files], stats, folders
    except OSError:
        pass
    names, stats, folders = [], [], []
    for entry in listed:
        try:
            if entry.is_dir():
                folders.append((entry, entry.stat()))
            elif entry.is_file():
                stats.append(entry.stat())
                names.append(entry.name)
        except OSError:
            continue
    return names, stats, folders


class Walk:
    """Every folder under ``root`` (the files :func:`hashing.walk_files` lists) and a signature."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.now = time.time_ns()  # before any stat: a file written meanwhile is newer
        self.folders: list[Folder] = []
        top = os.stat(root)
        signature = xxhash.xxh3_128()
        count = 0
        # As walk_files: links followed, a link back to a folder above not again,
        # entries that vanish or are broken links skipped, only regular files kept.
        stack = [("", str(root), frozenset({(top.st_dev, top.st_ino)}))]
        while stack:
            prefix, path, above = stack.pop()
            folder = Folder(path, prefix)
            names, stats, folders = _scan(path)
            folder.names, folder.stats = names, stats
            for entry, st in folders:
                ident = (st.st_dev, st.st_ino)
                if ident not in above:
                    stack.append((prefix + entry.name + "/", entry.path, above | {ident}))
            if not names:
                continue
            folder.pack()
            # Unambiguous: the folder, the count, the names ("\0" is in no name), the stats.
            listing = _joined(names)
            signature.update(f"{prefix}\0{len(names)}\0{len(folder.ids)}\0{listing}\0"
                             .encode("utf-8", "surrogateescape"))
            signature.update(folder.ids)
            count += len(names)
            self.folders.append(folder)
        self.signature = f"{count}:{signature.hexdigest()}"

    @property
    def newest(self) -> int:
        """The newest mtime of all (only needed when the folder's digest is recorded)."""
        return max([max(map(_MTIME, folder.stats)) for folder in self.folders], default=0)


def _joined(names: list[str]) -> str:
    return "\0".join(names)


class _Pending:
    """A folder pin whose digest needs its files' digests: which are known, which are not."""

    def __init__(self, cache: StatCache, walk: Walk) -> None:
        self.cache, self.walk = cache, walk
        self.todo: list[tuple[str, os.stat_result]] = []  # (full path, stat) to look up
        self.changed: list[tuple[str, os.stat_result]] = []  # the record knows them otherwise
        # Per folder: its record when it matches as a whole, else its digests known so far.
        self._parts: list[FolderRow | list[str | None]] = []
        for folder in walk.folders:
            self._resolve(folder)

    def _resolve(self, folder: Folder) -> None:
        record = self.cache.get_folder(folder.path)
        if record is not None and record[1] == folder.ids and record[0] == _joined(folder.names):
            self._parts.append(record)
            return
        known: list[str | None] = [None] * len(folder.names)
        old: dict[str, int] = {}
        if record is not None and len(record[1]) == 24 * (record[0].count("\0") + 1):
            ids, digests = array("q", record[1]), record[2].split("\0")
            old = {name: i for i, name in enumerate(record[0].split("\0"))}
            for i, (name, st) in enumerate(zip(folder.names, folder.stats, strict=True)):
                j = old.get(name)
                if j is not None and ids[3 * j] == st.st_ino and \
                        ids[3 * j + 1] == st.st_size and ids[3 * j + 2] == st.st_mtime_ns:
                    known[i] = digests[j]
        top = folder.path + os.sep
        for name, st, digest in zip(folder.names, folder.stats, known, strict=True):
            if digest is None:
                # Recorded with other stats: changed since, read it again without
                # decoding the index's file entries (a warm status's largest cost).
                (self.changed if name in old else self.todo).append((top + name, st))
        self._parts.append(known)

    def digest(self, found: dict[str, str]) -> str:
        """The folder's digest: its manifest from each sub-folder's part of it.

        A sub-folder's part (its files' manifest rows, sorted) is kept in its
        record; joined in order of their first paths they are the manifest
        whenever no two sub-folders' paths interleave (``a/x`` between ``a.csv``
        and ``a0``), else the rows are sorted as a whole.
        """
        parts: list[tuple[str, str, bytes]] = []  # first path, last path, manifest rows
        rows: list[tuple[str, str, int]] = []
        for folder, part in zip(self.walk.folders, self._parts, strict=True):
            prefix = folder.prefix
            if isinstance(part, tuple) and part[3] == prefix:
                fragment = part[4]
                folder_rows = None
            else:
                top = folder.path + os.sep
                digests = part[2].split("\0") if isinstance(part, tuple) else \
                    [d or found[top + n] for n, d in zip(folder.names, part, strict=True)]
                folder_rows = list(zip([prefix + n for n in folder.names], digests,
                                       [st.st_size for st in folder.stats], strict=True))
                fragment = hashing._manifest(folder_rows)[1:-1]  # without its brackets
                newest = max(map(_MTIME, folder.stats))
                if self.walk.now - newest >= _RACY_NS:
                    self.cache.put_folder(folder.path, (_joined(folder.names), folder.ids,
                                                        _joined(digests), prefix, fragment))
            parts.append((prefix + min(folder.names), prefix + max(folder.names), fragment))
            rows += folder_rows or []
        parts.sort()
        if all(parts[i][1] < parts[i + 1][0] for i in range(len(parts) - 1)):
            manifest = b"[" + b",".join([fragment for _, _, fragment in parts]) + b"]"
        else:  # interleaved: every row, sorted
            manifest = hashing._manifest(rows + self._recorded_rows())
        digest = hashing.hash_bytes(manifest) + hashing.DIR_SUFFIX
        self.cache.put_tree(TREE_KEY + str(self.walk.root), self.walk.signature, self.walk.newest,
                            digest, self.walk.now)
        return digest

    def _recorded_rows(self) -> list[tuple[str, str, int]]:
        """The manifest rows of the sub-folders whose record gave their part whole."""
        rows: list[tuple[str, str, int]] = []
        for folder, part in zip(self.walk.folders, self._parts, strict=True):
            if isinstance(part, tuple) and part[3] == folder.prefix:
                rows += zip([folder.prefix + n for n in folder.names], part[2].split("\0"),
                            [st.st_size for st in folder.stats], strict=True)
        return rows


def digests(cache: StatCache, paths: list[Path]) -> list[str]:
    """The digests :meth:`Hasher.paths` gives ``paths`` (files or folders), unknown files
    hashed all together (see :func:`hashing.hash_files`). Raises the first OSError."""
    found: list[str | _Pending | tuple[str, os.stat_result]] = []
    for path in paths:
        st = os.stat(path)
        if not stat.S_ISDIR(st.st_mode):
            found.append(cache.get(str(path), st) or (str(path), st))
            continue
        walk = Walk(path)
        found.append(cache.get_tree(TREE_KEY + str(path), walk.signature) or _Pending(cache, walk))
    todo = dict(item for item in found if isinstance(item, tuple))
    changed: dict[str, os.stat_result] = {}
    for item in found:
        if isinstance(item, _Pending):
            todo.update(item.todo)
            changed.update(item.changed)
    hashed = _hash(cache, todo, changed)
    return [item if isinstance(item, str) else hashed[item[0]] if isinstance(item, tuple)
            else item.digest(hashed) for item in found]


def _hash(cache: StatCache, todo: dict[str, os.stat_result],
          changed: dict[str, os.stat_result]) -> dict[str, str]:
    """Digests of ``todo`` (the index's file entries first) and ``changed``, files read."""
    paths = list(todo)
    stats = list(todo.values())
    known = cache.get_many(paths, stats) if paths else []
    for path, st in changed.items():
        if path not in todo:  # a file under two pins: looked up once
            paths.append(path)
            stats.append(st)
            known.append(None)
    missing = [i for i, digest in enumerate(known) if digest is None]
    read = hashing.hash_files([paths[i] for i in missing], [stats[i].st_size for i in missing])
    for i, digest in zip(missing, read, strict=True):
        if paths[i] in todo:  # a changed file's digest goes only into its folder's record:
            cache.put(paths[i], stats[i], digest)  # merging a file entry decodes them all
        known[i] = digest
    return {path: digest or "" for path, digest in zip(paths, known, strict=True)}
