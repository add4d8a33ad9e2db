"""Atomic file writes and copies: a crash at any moment leaves old or new, never half.

Every write goes to a temporary file in the destination's folder (same
filesystem, so the final ``os.replace`` is atomic) and is renamed into place.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import xxhash

from sluice.errors import CorruptObject

_FICLONE = 0x40049409  # Linux ioctl: share blocks copy-on-write (btrfs, xfs)
_CHUNK = 4 * 1024 * 1024


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    with atomic_path(path, mode) as tmp:
        tmp.write_bytes(data)


@contextlib.contextmanager
def atomic_path(path: Path, mode: int = 0o644) -> Iterator[Path]:
    """A temporary file beside ``path``, for writers that want a name; it replaces
    ``path`` when the block succeeds and is deleted when it fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
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
    except OSError:
        return False


def copy_hashing(src: Path, dst_fd: int) -> str:
    """Copy ``src`` into the open ``dst_fd`` and return the xxh3-128 of what was copied.

    Where the filesystem can, the copy is a reflink and the hash is read back from
    ``dst_fd`` (it must be open for reading too, as :func:`tempfile.mkstemp`'s is):
    still one read, and what is hashed is what landed.
    """
    hasher = xxhash.xxh3_128()
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    with open(src, "rb", buffering=0) as handle:
        if _try_reflink(handle.fileno(), dst_fd):
            offset = 0
            while n := os.preadv(dst_fd, [buffer], offset):
                hasher.update(view[:n])
                offset += n
            return str(hasher.hexdigest())
        while True:
            n = handle.readinto(buffer)
            if not n:
                break
            hasher.update(view[:n])
            write_all(dst_fd, view[:n])
    return str(hasher.hexdigest())


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
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC)
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
