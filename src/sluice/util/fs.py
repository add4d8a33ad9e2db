"""Atomic file writes and copies: a crash at any moment leaves old or new, never half.

Every write goes to a temporary file in the destination's folder (same
filesystem, so the final ``os.replace`` is atomic) and is renamed into place.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import xxhash

from sluice.errors import CorruptObject

_FICLONE = 0x40049409  # Linux ioctl: share blocks copy-on-write (btrfs, xfs)
_CHUNK = 4 * 1024 * 1024  # large reads keep the hash at memory speed
_SMALL = 1024 * 1024  # below this a file is copied from one exact-size read
# copy_file_range's errors that mean "not here": fall back to read/write.
_NO_COPY_RANGE = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP}


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    with atomic_path(path, mode) as tmp:
        tmp.write_bytes(data)


def _new_file(folder: Path, prefix: str, suffix: str) -> str:
    """A new empty file in ``folder``, private to this user; its name. As
    tempfile.mkstemp, whose import (shutil, random, bz2, lzma with it) would cost a
    no-op `sluice run` more than its one atomic write."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(100):
        name = os.path.join(folder, f"{prefix}{os.urandom(6).hex()}{suffix}")
        try:
            os.close(os.open(name, flags, 0o600))
        except FileExistsError:
            continue  # (48 random bits: another writer's name only by a fluke)
        return name
    raise FileExistsError(f"no free temporary name in {folder}")


@contextlib.contextmanager
def atomic_path(path: Path, mode: int = 0o644) -> Iterator[Path]:
    """A temporary file beside ``path``, for writers that want a name; it replaces
    ``path`` when the block succeeds and is deleted when it fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    name = _new_file(path.parent, f".{path.name}.", ".tmp")
    try:
        yield Path(name)
        os.chmod(name, mode)
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """A temporary folder beside ``path`` that takes its place when the block succeeds.

    An existing folder is first moved aside (a rename cannot replace a non-empty
    folder), then deleted; on failure the temporary folder goes and ``path`` stays.
    """
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        old = None
        if path.is_dir() and not path.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old)  # an empty folder may be replaced by a folder
        os.replace(tmp, path)
        if old is not None:
            remove_path(old)
    except BaseException:
        with contextlib.suppress(OSError):
            remove_path(tmp)
        raise


def atomic_write_json(path: Path, value: Any) -> None:
    atomic_write_bytes(path, json.dumps(value, indent=1, sort_keys=True).encode() + b"\n")


def read_json(path: Path) -> Any | None:
    """The JSON in ``path``, or None if it is missing or unreadable (caches only)."""
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def _try_reflink(src_fd: int, dst_fd: int) -> bool:
    try:
        fcntl.ioctl(dst_fd, _FICLONE, src_fd)
        return True
    except OSError:  # ext4, tmpfs, another filesystem: no shared blocks, copy instead
        return False


def copy_hashing(src: Path | str, dst_fd: int) -> str:
    """Copy ``src`` into the open, empty ``dst_fd``; return the xxh3-128 of what was copied.

    Every byte is read once. A small file (the common case in a folder of data)
    is one ``read`` of exactly its size, hashed and written from that one buffer:
    no large buffer is allocated for it. A large file is a reflink where the
    filesystem shares blocks, else ``os.copy_file_range`` (the kernel copies; the
    just-written pages are hashed back from the page cache), else read/write.
    ``dst_fd`` must be open for reading too (``O_RDWR``) so that what is hashed
    is what landed, even if ``src`` changes meanwhile.
    """
    src_fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)  # no file object: one per data file
    try:
        size = os.fstat(src_fd).st_size
        if size < _SMALL:
            data = os.read(src_fd, size + 1)  # one more byte: did it grow since the stat?
            if len(data) <= size:  # a short read of a regular file is its end
                write_all(dst_fd, data)
                return str(xxhash.xxh3_128_hexdigest(data))
            hasher = xxhash.xxh3_128(data)
            write_all(dst_fd, data)
        else:
            hasher = xxhash.xxh3_128()
            if _try_reflink(src_fd, dst_fd):
                _hash_back(dst_fd, 0, hasher, bytearray(_CHUNK))
                return str(hasher.hexdigest())
        _copy_rest(src_fd, dst_fd, hasher)
    finally:
        os.close(src_fd)
    return str(hasher.hexdigest())


def _copy_rest(src_fd: int, dst_fd: int, hasher: xxhash.xxh3_128) -> None:
    """Copy from both files' current offsets to the end of ``src_fd``, hashing."""
    buffer = bytearray(_CHUNK)
    copy_range = getattr(os, "copy_file_range", None)  # Linux only
    if copy_range is not None:
        offset = os.lseek(dst_fd, 0, os.SEEK_CUR)
        try:
            while n := copy_range(src_fd, dst_fd, _CHUNK):
                _hash_back(dst_fd, offset, hasher, buffer, n)
                offset += n
            return
        except OSError as exc:
            # Unsupported here (an old kernel, another filesystem, EXDEV): read/write
            # from where it stopped; nothing copied so far is lost or hashed twice.
            if exc.errno not in _NO_COPY_RANGE:
                raise
    view = memoryview(buffer)
    while n := os.readv(src_fd, [buffer]):
        hasher.update(view[:n])
        write_all(dst_fd, view[:n])


def _hash_back(fd: int, offset: int, hasher: xxhash.xxh3_128, buffer: bytearray,
               count: int | None = None) -> None:
    """Hash ``count`` bytes of ``fd`` from ``offset`` (to its end when None)."""
    view = memoryview(buffer)
    while count is None or count > 0:
        want = len(buffer) if count is None else min(count, len(buffer))
        n = os.preadv(fd, [view[:want]], offset)
        if not n:
            return
        hasher.update(view[:n])
        offset += n
        if count is not None:
            count -= n


def write_all(fd: int, data: memoryview | bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_verified(dest: Path, digest: str, fill: Callable[[int], str], *, source: str,
                   hint: str, mode: int = 0o644) -> None:
    """Write ``dest`` atomically from ``fill``, only if the bytes hash to ``digest``.

    ``fill`` writes into the open temp file beside ``dest`` and returns the xxh3-128
    of what it wrote (hashed on the way: nothing is read twice). On a mismatch the
    temp file goes and :class:`CorruptObject` names ``source``: ``dest`` is untouched.
    Every store restores through here, so there is one verification path.
    """
    with atomic_path(dest, mode) as tmp:
        fd = os.open(tmp, os.O_RDWR | os.O_TRUNC)  # readable: a reflink is hashed back
        try:
            actual = fill(fd)
        finally:
            os.close(fd)
        if actual != digest.removesuffix(".dir"):
            raise CorruptObject(f"object {digest} in {source} is corrupt (its content hashes "
                                f"to {actual}); it was not used", hint=hint)


def remove_path(path: Path) -> None:
    """Delete a file, link or directory tree if it exists."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        import shutil

        shutil.rmtree(path)


class FileLock:
    """An exclusive ``flock`` on a file; the kernel frees it when the process dies (kill -9)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, blocking: bool = False) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def fileno(self) -> int | None:
        return self._fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
