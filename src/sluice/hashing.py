"""Content hashes (xxh3-128, hex) of bytes, files and directory trees.

A directory hashes as a manifest of its files (relative path, size, hash),
serialised canonically and hashed again; its digest ends in ``.dir`` so the
store can tell manifests from plain files. File hashes go through the stat
cache (:mod:`sluice.state`) so an unchanged file is never read twice.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import xxhash

if TYPE_CHECKING:
    from sluice.state import StatCache

DIR_SUFFIX = ".dir"
_CHUNK = 4 * 1024 * 1024  # large reads keep the hash at memory speed
_SMALL = 1024 * 1024


def hash_bytes(data: bytes) -> str:
    return str(xxhash.xxh3_128_hexdigest(data))


def hash_file_uncached(path: Path | str) -> str:
    """Read ``path`` once and return its xxh3-128 digest."""
    with open(path, "rb", buffering=0) as handle:
        # Small files in one read: allocating the large buffer would cost more
        # than hashing them (20,000 small files spend most time there otherwise).
        head = handle.read(_SMALL)
        if len(head) < _SMALL:
            return str(xxhash.xxh3_128_hexdigest(head))
        hasher = xxhash.xxh3_128(head)
        buffer = bytearray(_CHUNK)
        view = memoryview(buffer)
        while True:
            n = handle.readinto(buffer)
            if not n:
                break
            hasher.update(view[:n])
    return str(hasher.hexdigest())


@dataclass(frozen=True)
class TreeEntry:
    """One file of a directory manifest."""

    path: str  # relative to the directory, POSIX separators
    hash: str
    size: int


def manifest_bytes(entries: list[TreeEntry]) -> bytes:
    rows = [{"path": e.path, "hash": e.hash, "size": e.size}
            for e in sorted(entries, key=lambda e: e.path)]
    return json.dumps(rows, separators=(",", ":"), sort_keys=True).encode()


def manifest_from_bytes(data: bytes) -> list[TreeEntry]:
    return [TreeEntry(r["path"], r["hash"], int(r["size"])) for r in json.loads(data)]


def hash_manifest(entries: list[TreeEntry]) -> str:
    return hash_bytes(manifest_bytes(entries)) + DIR_SUFFIX


def walk_files(root: Path) -> list[tuple[str, os.stat_result]]:
    """(relative path, stat) of every regular file under ``root``, symlinks followed.

    A symlink back to a folder above it (a loop) is not followed again.
    """
    found: list[tuple[str, os.stat_result]] = []
    top = os.stat(root)
    stack: list[tuple[str, str, frozenset[tuple[int, int]]]] = [
        ("", str(root), frozenset({(top.st_dev, top.st_ino)}))]
    while stack:
        prefix, folder, above = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                rel = prefix + entry.name
                try:
                    if entry.is_dir():
                        st = entry.stat()
                        ident = (st.st_dev, st.st_ino)
                        if ident not in above:
                            stack.append((rel + "/", entry.path, above | {ident}))
                    elif entry.is_file():
                        found.append((rel, entry.stat()))
                except OSError:
                    continue  # vanished or a broken link: not part of the tree
    found.sort()
    return found


class Hasher:
    """Hashes files and trees through a stat cache."""

    def __init__(self, cache: StatCache) -> None:
        self.cache = cache

    def file(self, path: Path, st: os.stat_result | None = None) -> str:
        st = st or os.stat(path)
        digest = self.cache.get(str(path), st)
        if digest is None:
            digest = hash_file_uncached(path)
            self.cache.put(str(path), st, digest)
        return digest

    def tree_entries(self, root: Path) -> list[TreeEntry]:
        return [TreeEntry(rel, self.file(root / rel, st), st.st_size)
                for rel, st in walk_files(root)]

    def tree(self, root: Path) -> str:
        return hash_manifest(self.tree_entries(root))

    def path(self, path: Path) -> str:
        """The digest of a file, or of a directory's manifest."""
        if path.is_dir():
            return self.tree(path)
        return self.file(path)
