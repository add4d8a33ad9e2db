"""Content hashes (xxh3-128, hex) of bytes, files and directory trees.

A directory hashes as a manifest of its files (relative path, size, hash),
serialised canonically and hashed again; its digest ends in ``.dir`` so the
store can tell manifests from plain files. File hashes go through the stat
cache (:mod:`sluice.util.statcache`) so an unchanged file is never read twice.
"""

from __future__ import annotations

import json
import os
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _json_str
from pathlib import Path
from typing import TYPE_CHECKING

import xxhash

from sluice.errors import CorruptObject, UsageError
from sluice.util.safepath import check_digest, relative_path

if TYPE_CHECKING:
    from sluice.util.statcache import StatCache

DIR_SUFFIX = ".dir"
_CHUNK = 4 * 1024 * 1024  # large reads keep the hash at memory speed
_SMALL = 1024 * 1024
# Below both, a thread pool costs more than it saves.
_PARALLEL_BYTES = 32 * 1024 * 1024
_PARALLEL_FILES = 256


def hash_bytes(data: bytes) -> str:
    return str(xxhash.xxh3_128_hexdigest(data))


def hash_file_uncached(path: Path | str) -> str:
    """Read ``path`` once and return its xxh3-128 digest."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        hasher = xxhash.xxh3_128()
        if size < _SMALL:
            # A small file in one read of its exact size: a larger request makes
            # the allocator map and unmap memory for every one of 20,000 files.
            head = os.read(fd, size + 1)  # one more byte: did it grow since the stat?
            if len(head) <= size:  # a short read of a regular file is its end
                return str(xxhash.xxh3_128_hexdigest(head))
            hasher.update(head)
        buffer = bytearray(_CHUNK)
        view = memoryview(buffer)
        while n := os.readv(fd, [buffer]):
            hasher.update(view[:n])
    finally:
        os.close(fd)
    return str(hasher.hexdigest())


@dataclass(frozen=True)
class TreeEntry:
    """One file of a directory manifest."""

    path: str  # relative to the directory, POSIX separators
    hash: str
    size: int


def manifest_bytes(entries: list[TreeEntry]) -> bytes:
    """The canonical manifest: ``json.dumps(rows, separators=(",", ":"), sort_keys=True)``.

    Written out by hand (the same bytes, tests/unit/util/test_hashing.py checks it):
    json.dumps builds a dict per file first, a third of a warm status on 20,000 files.
    """
    rows = [f'{{"hash":{_json_str(e.hash)},"path":{_json_str(e.path)},"size":{int(e.size)}}}'
            for e in sorted(entries, key=lambda e: e.path)]
    return ("[" + ",".join(rows) + "]").encode()


def manifest_from_bytes(data: bytes, digest: str = "") -> list[TreeEntry]:
    """The entries of a folder manifest, every path and hash validated.

    A manifest comes out of a store, which is trusted for availability, never for
    paths: an entry that is not a clean relative path, names no content hash, or
    clashes with another entry (twice the same path, a file where another entry
    needs a folder) is :class:`CorruptObject`, before anything is written.
    """
    what = f"the folder manifest {digest[:16]}".rstrip()
    try:
        rows = json.loads(data)
        entries = [TreeEntry(r["path"], r["hash"], int(r["size"])) for r in rows]
    except (ValueError, TypeError, KeyError) as exc:
        raise CorruptObject(f"{what} is not a valid folder manifest ({type(exc).__name__})",
                            hint="delete it from the store and rerun the stage with "
                                 "--force") from None
    files: set[str] = set()
    folders: set[str] = set()
    for entry in entries:
        path = relative_path(entry.path, what)
        check_digest(entry.hash, what)
        parents = {path.rsplit("/", i)[0] for i in range(1, path.count("/") + 1)}
        if path in files or path in folders or parents & files:
            raise CorruptObject(f"{what} lists `{path}` twice, or as both a file and a folder",
                                hint="delete it from the store and rerun the stage with "
                                     "--force")
        files.add(path)
        folders |= parents
    return entries


def hash_manifest(entries: list[TreeEntry]) -> str:
    return hash_bytes(manifest_bytes(entries)) + DIR_SUFFIX


def walk_files(root: Path, *, follow_links: bool = True) -> list[tuple[str, os.stat_result]]:
    """(relative path, stat) of every regular file under ``root``, symlinks followed.

    A symlink back to a folder above it (a loop) is not followed again. With
    ``follow_links=False`` (data going into the store) any symlink inside is
    refused: following it could copy host files (``/etc``) into a shared store.
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
                if not follow_links and entry.is_symlink():
                    raise _link_refused(root, rel)
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


def _link_refused(root: Path, rel: str) -> UsageError:
    try:
        target = f" (to `{os.readlink(root / rel)}`)"
    except OSError:
        target = ""
    return UsageError(f"`{root / rel}` is a symbolic link{target}; sluice does not store links "
                      "in tracked data, nor follow them",
                      hint="replace the link with a copy of what it points to, or delete it, "
                           "and run the command again")


def hash_files(paths: Sequence[str], sizes: Sequence[int],
               read: Callable[[str], str] | None = None) -> list[str]:
    """The digests of ``paths`` (in order), on one thread per core when there is work to share.

    xxh3 and the reads release the GIL (large buffers, the syscalls of small
    files), so threads keep both cores busy without the start-up and pickling
    of processes (measured in benchmarks/hashing.py). The first error (a file
    that vanished, an unreadable one) is raised as the serial loop would.
    """
    hash_one = read or (lambda path: hash_file_uncached(path))  # looked up per call (tests)
    workers = min(os.cpu_count() or 1, len(paths))
    if workers < 2 or (sum(sizes) < _PARALLEL_BYTES and len(paths) < _PARALLEL_FILES):
        return [hash_one(p) for p in paths]
    # Large files first, so one 1 GiB file is not left for the end on one core.
    order = sorted(range(len(paths)), key=lambda i: -sizes[i])
    from concurrent.futures import ThreadPoolExecutor  # not on a warm status's path

    digests: list[str] = [""] * len(paths)
    with ThreadPoolExecutor(workers, thread_name_prefix="sluice-hash") as pool:
        for i, digest in zip(order, pool.map(hash_one, [paths[i] for i in order]),
                             strict=True):
            digests[i] = digest
    return digests


def listing_signature(files: list[tuple[str, os.stat_result]]) -> tuple[str, int]:
    """A digest of every file's relative path, inode, size and mtime, and the newest mtime.

    Equal signatures mean the same files with the same stat (what the stat cache
    trusts file by file), at a fraction of the cost of a lookup per file.
    """
    names = "\0".join([rel for rel, _ in files]).encode("utf-8", "surrogateescape")
    hasher = xxhash.xxh3_128(names)
    mtimes = [st.st_mtime_ns for _, st in files]
    try:  # packed: a tenth of the cost of formatting numbers
        hasher.update(array("Q", [n for _, st in files for n in (st.st_ino, st.st_size)]))
        hasher.update(array("q", mtimes))
    except OverflowError:  # an mtime after 2262, or before 1678
        hasher.update(repr([(st.st_ino, st.st_size, st.st_mtime_ns) for _, st in files])
                      .encode())
    return f"{len(files)}:{hasher.hexdigest()}", max(mtimes, default=0)


class Hasher:
    """Hashes files and trees through a stat cache."""

    def __init__(self, cache: StatCache) -> None:
        self.cache = cache

    def cached(self, path: Path, st: os.stat_result) -> str | None:
        """The digest the stat cache trusts for ``path`` as ``st`` describes it, else None."""
        return self.cache.get(str(path), st)

    def record(self, path: Path, st: os.stat_result, digest: str) -> None:
        """Remember ``digest`` for ``path`` as it was when ``st`` was taken (before reading)."""
        self.cache.put(str(path), st, digest)

    def file(self, path: Path, st: os.stat_result | None = None) -> str:
        st = st or os.stat(path)
        digest = self.cache.get(str(path), st)
        if digest is None:
            digest = hash_file_uncached(path)
            self.cache.put(str(path), st, digest)
        return digest

    def tree_entries(self, root: Path, *, follow_links: bool = True) -> list[TreeEntry]:
        """Every file under ``root`` with its digest; unknown files hashed in parallel."""
        return self._entries(root, walk_files(root, follow_links=follow_links))

    def _entries(self, root: Path, files: list[tuple[str, os.stat_result]]) -> list[TreeEntry]:
        top = str(root) + os.sep
        digests = self.cache.get_many([(top + rel, st) for rel, st in files])
        missing = [i for i, d in enumerate(digests) if d is None]
        if missing:
            found = hash_files([top + files[i][0] for i in missing],
                               [files[i][1].st_size for i in missing])
            for i, digest in zip(missing, found, strict=True):
                digests[i] = digest
                self.cache.put(top + files[i][0], files[i][1], digest)
        return [TreeEntry(rel, str(digest), st.st_size)
                for (rel, st), digest in zip(files, digests, strict=True)]

    def tree(self, root: Path) -> str:
        """A folder's digest; one whose listing is as recorded is not looked into further."""
        files = walk_files(root)
        signature, newest = listing_signature(files)
        digest = self.cache.get_tree(str(root), signature)
        if digest is None:
            now = time.time_ns()  # before reading: a file written meanwhile is newer
            digest = hash_manifest(self._entries(root, files))
            self.cache.put_tree(str(root), signature, newest, digest, now)
        return digest

    def path(self, path: Path) -> str:
        """The digest of a file, or of a directory's manifest."""
        if path.is_dir():
            return self.tree(path)
        return self.file(path)
