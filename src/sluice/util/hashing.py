"""Content hashes (xxh3-128, hex) of bytes, files and directory trees.

A directory hashes as a manifest of its files (relative path, size, hash),
serialised canonically and hashed again; its digest ends in ``.dir`` so the
store can tell manifests from plain files. File hashes go through the stat
cache (:mod:`sluice.util.statcache`) so an unchanged file is never read twice.
"""

from __future__ import annotations

import collections
import json
import os
import stat
import time
from array import array
from collections.abc import Sequence
from json.encoder import encode_basestring_ascii as _json_str
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import xxhash

from sluice.errors import CorruptObject, UsageError
from sluice.util.safepath import check_digest, relative_path

if TYPE_CHECKING:
    from sluice.util.statcache import StatCache

DIR_SUFFIX = ".dir"
_CHUNK = 4 * 1024 * 1024  # large reads keep the hash at memory speed
_SMALL = 1024 * 1024
_LARGE = 4 * 1024 * 1024  # hashed on other threads (see hash_files)


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


class TreeEntry(NamedTuple):
    """One file of a directory manifest (a NamedTuple: see :class:`sluice.errors.Location`)."""

    path: str  # relative to the directory, POSIX separators
    hash: str
    size: int


def manifest_bytes(entries: list[TreeEntry]) -> bytes:
    """The canonical manifest: ``json.dumps(rows, separators=(",", ":"), sort_keys=True)``.

    Written out by hand (the same bytes, tests/unit/util/test_hashing.py checks it):
    json.dumps builds a dict per file first, a third of a warm status on 20,000 files.
    """
    return _manifest([(e.path, e.hash, e.size) for e in entries])


def _manifest(rows: list[tuple[str, str, int]]) -> bytes:
    """:func:`manifest_bytes` of (path, hash, size) rows."""
    rows = sorted(rows, key=itemgetter(0))  # stable, as sorting the entries by path is
    return ("[" + ",".join([f'{{"hash":{_json_str(digest)},"path":{_json_str(path)},'
                            f'"size":{int(size)}}}' for path, digest, size in rows])
            + "]").encode()


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


def hash_files(paths: Sequence[str], sizes: Sequence[int]) -> list[str]:
    """The digests of ``paths`` (in order), large files on other threads meanwhile.

    Reading and hashing a large file release the GIL for each 4 MiB chunk, so
    threads put every core to work on large files. Small files are the opposite:
    a handful of short syscalls each, and two threads passing the GIL back and
    forth over 20,000 of them are slower than one (measured: benchmarks/hashing.py).
    So this thread hashes the small files while one thread per other core takes
    the large ones, largest first, and joins them when done. The first error (a
    file that vanished, an unreadable one) is raised once all threads stopped.
    """
    def hash_one(path: str) -> str:
        return hash_file_uncached(path)  # looked up per call: tests count the reads

    large = sorted((i for i in range(len(paths)) if sizes[i] >= _LARGE), key=lambda i: -sizes[i])
    threads = min((os.cpu_count() or 1) - 1, len(large))
    if threads < 1:
        return [hash_one(p) for p in paths]
    import threading  # not on a warm status's path

    digests: list[str] = [""] * len(paths)
    queue = collections.deque(large)
    errors: list[BaseException] = []

    def take_large() -> None:
        while not errors:
            try:
                i = queue.popleft()  # atomic: threads never take the same file
            except IndexError:
                return
            try:
                digests[i] = hash_one(paths[i])
            except BaseException as exc:  # re-raised by the caller's thread
                errors.append(exc)

    workers = [threading.Thread(target=take_large, name=f"sluice-hash-{n}", daemon=True)
               for n in range(threads)]
    for worker in workers:
        worker.start()
    try:
        for i in range(len(paths)):
            if sizes[i] < _LARGE and not errors:
                digests[i] = hash_one(paths[i])
        take_large()  # then help with what is left
    finally:
        queue.clear()  # on an error here: the threads stop after their current file
        for worker in workers:
            worker.join()
    if errors:
        raise errors[0]
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
        tree = _Tree(self, root, walk_files(root, follow_links=follow_links))
        return tree.entries(self._hash(tree.missing()))

    def _hash(self, todo: list[tuple[str, os.stat_result]]) -> dict[str, str]:
        stats = dict(todo)  # a file under two pinned folders is read once
        digests = hash_files(list(stats), [st.st_size for st in stats.values()])
        hashed = dict(zip(stats, digests, strict=True))
        for path, st in stats.items():
            self.cache.put(path, st, hashed[path])
        return hashed

    def tree(self, root: Path) -> str:
        """A folder's digest; one whose listing is as recorded is not looked into further."""
        return self.paths([root])[0]

    def path(self, path: Path) -> str:
        """The digest of a file, or of a directory's manifest."""
        return self.paths([path])[0]

    def paths(self, paths: list[Path]) -> list[str]:
        """The digests of files and folders, their unknown files hashed all together.

        Together, the large files of one folder and the small ones of another share
        the cores (see :func:`hash_files`). Raises the first OSError, as hashing
        them one after the other would.
        """
        found: list[str | _Tree] = []
        for path in paths:
            st = os.stat(path)
            if not stat.S_ISDIR(st.st_mode):
                found.append(self.cache.get(str(path), st) or _Tree(self, path, None, st))
                continue
            tree = _Tree(self, path, walk_files(path))
            tree.signature, tree.newest = listing_signature(tree.files or [])
            found.append(self.cache.get_tree(str(path), tree.signature) or tree)
        trees = [item for item in found if isinstance(item, _Tree)]
        hashed = self._hash([todo for tree in trees for todo in tree.missing()])
        return [item if isinstance(item, str) else item.digest(hashed) for item in found]


class _Tree:
    """A folder (or one file: ``files`` None) being hashed: its listing, what it lacks."""

    def __init__(self, hasher: Hasher, root: Path, files: list[tuple[str, os.stat_result]] | None,
                 st: os.stat_result | None = None) -> None:
        self.hasher, self.root, self.files, self.st = hasher, root, files, st
        self.top = str(root) + os.sep
        self.now = time.time_ns()  # before reading: a file written meanwhile is newer
        self.signature, self.newest = "", 0  # set where the folder digest is looked up
        self._known: list[str | None] = []
        self._keys: list[str] = []

    def missing(self) -> list[tuple[str, os.stat_result]]:
        """(full path, stat) of the files the stat cache does not vouch for."""
        if self.files is None:
            assert self.st is not None
            return [(str(self.root), self.st)]
        top, stats = self.top, [st for _, st in self.files]
        self._keys = [top + rel for rel, _ in self.files]
        self._known = self.hasher.cache.get_many(self._keys, stats)
        return [(key, st) for key, st, known in zip(self._keys, stats, self._known, strict=True)
                if known is None]

    def _rows(self, hashed: dict[str, str]) -> list[tuple[str, str, int]]:
        assert self.files is not None
        return [(rel, known or hashed[key], st.st_size)
                for (rel, st), key, known in zip(self.files, self._keys, self._known, strict=True)]

    def entries(self, hashed: dict[str, str]) -> list[TreeEntry]:
        return [TreeEntry(*row) for row in self._rows(hashed)]

    def digest(self, hashed: dict[str, str]) -> str:
        if self.files is None:
            return hashed[str(self.root)]
        # Rows straight into the manifest: a TreeEntry per file costs as much as the rest.
        digest = hash_bytes(_manifest(self._rows(hashed))) + DIR_SUFFIX
        self.hasher.cache.put_tree(str(self.root), self.signature, self.newest, digest, self.now)
        return digest
