"""The content-addressed object store and the run cache.

Objects are immutable files named by their xxh3-128 digest; directory
manifests are objects too (digest ending in ``.dir``). The run cache maps a
stage fingerprint to the outputs and costs of the run that produced it, and
is written only after every object it names is in place, so a reader never
sees a record whose objects are missing. Every write is a temp file plus an
atomic rename in the same folder: two writers of one object both succeed and
a ``kill -9`` leaves at most an unreferenced temp file (removed by ``clean_tmp``).

In link mode (``link_in``/``link_out``) a workspace file and its object are one
inode, read-only: the object is named by a hash of that inode's bytes taken after
it was made read-only, and renamed into place only then, so a ``kill -9`` still
leaves no object whose content does not match its name.

``add_files`` copies many files at once: large ones on threads, many small ones
on forked worker processes (:mod:`sluice.store.local_bulk`), each object published
the same way.

Backends implement :class:`Store`; :data:`STORES` maps URL schemes to them.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sluice.errors import CorruptObject, StoreError
from sluice.store.local_bulk import add_many
from sluice.util.fs import (
    atomic_write_bytes,
    atomic_write_json,
    copy_hashing,
    read_json,
    write_verified,
)
from sluice.util.hashing import hash_bytes, hash_file_uncached
from sluice.util.safepath import check_digest

_TMP_MAX_AGE_S = 24 * 3600
_NEW = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
# link()'s errors that mean "no hard link from here to there": copy instead.
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP, errno.ENOSYS}


def _create(name: str) -> int:
    """Create ``name`` read-only (the object's final mode), open for reading and writing."""
    try:
        return os.open(name, _NEW, 0o444)
    except FileExistsError:
        # Left by a killed process that had our pid: no live writer owns it.
        os.unlink(name)
        return os.open(name, _NEW, 0o444)


def _same_file(a: Path | str, b: Path | str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


class LocalStore:
    """A store in a local directory (default ``.sluice/cache``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = root.as_uri() if root.is_absolute() else str(root)
        self.objects = root / "objects"
        self.runs = root / "runs"
        self.tmp = root / "tmp"
        # Plain strings and remembered folders: add_file runs once per data file.
        self._objects = str(self.objects)
        self._tmp = str(self.tmp)
        self._tmp_ready = False
        self._folders: set[str] = set()
        self._counter = itertools.count()

    def object_path(self, digest: str) -> Path:
        check_digest(digest)  # digests come from records: never let one name a path
        return self.objects / digest[:2] / digest[2:]

    def has(self, digest: str) -> bool:
        return self.object_path(digest).is_file()

    def missing(self, digests: Iterable[str]) -> list[str]:
        """Those of ``digests`` not stored here (a stat each: local disks need no batching)."""
        return [d for d in dict.fromkeys(digests) if not self.has(d)]

    def adopt(self, verified: Path, digest: str) -> None:
        """Move ``verified`` (a file on this disk whose content hashes to ``digest``) in."""
        try:
            target = self.object_path(digest)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(verified, 0o444)
            os.replace(verified, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(verified)
            raise StoreError(f"cannot write to the store {self.root}: {exc.strerror}",
                             hint="check free space and permissions") from None

    def add_file(self, src: Path | str, digest: str | None = None) -> str:
        """Copy ``src`` in, hashing as it copies; returns the digest of what was stored.

        ``digest`` (from the stat cache) lets an already stored file skip the copy;
        without it the file is read once, by the copy. If the file changed since it
        was hashed, the bytes copied win. Safe to call from several threads.
        """
        if digest is not None and self.has(digest):
            return digest
        tmp = self._temp_file()
        try:
            fd = _create(tmp)
            try:
                actual = copy_hashing(src, fd)
            finally:
                os.close(fd)
            self._publish(tmp, check_digest(actual))
            return actual
        except OSError as exc:
            raise self._failed(tmp, f"cannot store {src}", exc) from None

    def add_files(self, paths: Sequence[str], sizes: Sequence[int],
                  known: Sequence[str | None]) -> list[str]:
        """:meth:`add_file` of many files (``known``: digests from the stat cache, or
        None); their digests, in order. Large ones on threads, many small ones on
        forked worker processes: see :mod:`sluice.store.local_bulk`."""
        return add_many(self, paths, sizes, known)

    def _publish(self, tmp: str, digest: str, *, exclusive: bool = False) -> bool:
        """Move the complete ``tmp`` into place as object ``digest``; False (``tmp``
        unlinked) where that object is already there. Raises OSError; the caller unlinks
        ``tmp``. ``exclusive``: never replace an object that appears meanwhile (in link
        mode the object *is* a workspace file's inode, which must stay the object)."""
        folder = os.path.join(self._objects, digest[:2])
        target = os.path.join(folder, digest[2:])
        if os.path.isfile(target):
            os.unlink(tmp)
            return False
        if folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)
        move = self._link_exclusive if exclusive else os.replace
        try:
            placed = move(tmp, target)  # created read-only: no chmod, one syscall less
        except FileNotFoundError:  # the folder went meanwhile (a gc): make it again
            os.makedirs(folder, exist_ok=True)
            placed = move(tmp, target)
        return placed is not False

    @staticmethod
    def _link_exclusive(tmp: str, target: str) -> bool:
        """Link ``tmp`` in as ``target`` unless another writer got there first."""
        try:
            os.link(tmp, target)
        except FileExistsError:
            os.unlink(tmp)
            return False
        os.unlink(tmp)
        return True

    def _failed(self, tmp: str, what: str, exc: OSError) -> StoreError:
        """The error of a failed write: ``tmp`` (never published) is gone first."""
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return StoreError(f"{what}: {exc.strerror}",
                          hint=f"check free space and permissions of {self.root}")

    def link_in(self, src: Path, digest: str | None = None) -> str | None:
        """Make ``src`` itself a read-only object (hard link mode); its digest.

        Nothing is copied: ``src`` is linked into ``tmp/``, made read-only (the
        workspace file too: they are one inode), hashed, then renamed into place.
        When the object already exists, ``src`` is replaced by a link to it. None,
        with nothing changed, where hard links cannot join ``src`` and the store
        (another filesystem, a filesystem without them): the caller copies.
        """
        if digest is not None and self.has(digest) and _same_file(src, self.object_path(digest)):
            return digest  # already linked (a re-add): nothing to do
        tmp = self._temp_file()
        try:
            try:
                os.link(src, tmp)
            except OSError as exc:
                if exc.errno in _NO_LINK:
                    return None
                raise
            os.chmod(tmp, 0o444)  # before hashing: what is hashed is what can no longer be
            actual = check_digest(hash_file_uncached(tmp))  # written through a new open()
            target = self.object_path(actual)
            # Another file with the same bytes (a duplicate, maybe on another thread)
            # may have become the object first: then ``src`` becomes a link to it.
            if not self._publish(tmp, actual, exclusive=True) and not _same_file(src, target):
                self._replace_by_link(target, src)
            return actual
        except OSError as exc:
            raise self._failed(tmp, f"cannot link {src} into the store", exc) from None

    def link_out(self, digest: str, dest: Path) -> bool:
        """Restore ``dest`` as a hard link to the object (verified first); False where
        hard links cannot reach ``dest`` (the caller copies)."""
        path = self.object_path(digest)
        if not path.is_file():
            raise StoreError(f"object {digest} is missing from the store {self.root}",
                             hint="rerun with --force to rebuild it")
        # Verified as a copy is: whoever can write the store could swap the bytes.
        actual = hash_file_uncached(path)
        if actual != digest.removesuffix(".dir"):
            raise CorruptObject(f"object {digest} in {self.url} is corrupt (its content hashes "
                                f"to {actual}); it was not used",
                                hint=f"delete {path} and rerun with --force")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            self._replace_by_link(path, dest)
        except OSError as exc:
            if exc.errno in _NO_LINK:
                return False
            raise StoreError(f"cannot restore {dest}: {exc.strerror}",
                             hint="check free space and permissions") from None
        return True

    def _replace_by_link(self, target: Path | str, dest: Path | str) -> None:
        """Atomically make ``dest`` a hard link to ``target``: a link made in ``tmp/``
        (so a kill leaves nothing among the data; ``clean_tmp`` removes it), renamed
        over ``dest`` (EXDEV where ``dest`` is on another filesystem)."""
        tmp = self._temp_file()
        os.link(target, tmp)
        try:
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _temp_file(self) -> str:
        """A fresh temp name in ``tmp/``: pid, thread and a counter make it unique
        without ``mkstemp``'s random tries (one of them per file adds up over 20,000)."""
        if not self._tmp_ready:
            try:
                self.tmp.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot write to the store {self.root}: {exc.strerror}",
                                 hint="check free space and permissions") from None
            self._tmp_ready = True
        return os.path.join(self._tmp, f"{os.getpid()}-{threading.get_ident()}-"
                                       f"{next(self._counter)}.part")

    def add_bytes(self, data: bytes, digest: str) -> None:
        if not self.has(digest):
            try:
                atomic_write_bytes(self.object_path(digest), data, mode=0o444)
            except OSError as exc:
                raise StoreError(f"cannot write to the store {self.root}: {exc.strerror}",
                                 hint="check free space and permissions") from None

    def read_bytes(self, digest: str) -> bytes:
        path = self.object_path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"object {digest} is missing from the store {self.root}",
                             hint="rerun with --force to rebuild it") from None
        if hash_bytes(data) != digest.removesuffix(".dir"):
            raise CorruptObject(f"object {digest} in {self.root} is corrupt (hash mismatch)",
                             hint=f"delete {path} and rerun with --force") from None
        return data

    def checkout_file(self, digest: str, dest: Path) -> None:
        path = self.object_path(digest)
        if not path.is_file():
            raise StoreError(f"object {digest} is missing from the store {self.root}",
                             hint="rerun with --force to rebuild it")
        try:
            # A copy (reflink where possible), never a hard link: the workspace
            # file may be edited in place and must not change the stored object.
            # Hashed as it lands: whoever can write the store could swap the bytes.
            write_verified(dest, digest, lambda fd: copy_hashing(path, fd), source=self.url,
                           hint=f"delete {path} and rerun with --force")
        except OSError as exc:
            raise StoreError(f"cannot restore {dest}: {exc.strerror}",
                             hint="check free space and permissions") from None

    def _run_path(self, fingerprint: str) -> Path:
        return self.runs / fingerprint[:2] / f"{fingerprint[2:]}.json"

    def get_run(self, fingerprint: str) -> dict[str, Any] | None:
        record = read_json(self._run_path(fingerprint))
        return record if isinstance(record, dict) else None

    def put_run(self, fingerprint: str, record: dict[str, Any]) -> None:
        try:
            atomic_write_json(self._run_path(fingerprint), record)
        except OSError as exc:
            raise StoreError(f"cannot write the run cache in {self.root}: {exc.strerror}",
                             hint="check free space and permissions") from None

    def prepare_folders(self) -> None:
        """Make ``tmp/`` and every object folder at once (before a pool forks): one
        ``mkdir`` each here, instead of a check per file in every worker."""
        self._temp_file()
        for n in range(256):
            folder = os.path.join(self._objects, f"{n:02x}")
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)

    def clean_tmp(self, max_age_s: float = _TMP_MAX_AGE_S) -> int:
        """Remove temp files left by killed writers; returns how many went."""
        removed = 0
        cutoff = time.time() - max_age_s
        if self.tmp.is_dir():
            for entry in os.scandir(self.tmp):
                with contextlib.suppress(OSError):
                    if entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
                        removed += 1
        return removed
