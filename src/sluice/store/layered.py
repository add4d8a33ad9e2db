"""A shared store (S3, GCS, Azure, a team folder) behind this checkout's local one.

With ``storage: cache:`` set, every CI runner reads and writes one shared run
cache, so a stage that ran anywhere is restored everywhere. :class:`LayeredStore`
puts the local ``.sluice/cache`` in front of the shared store:

- lookups (``has``, ``get_run``) look local first, then shared;
- reads fetch objects into the local store first, verified by hash, so every
  later read is local; restoring a folder fetches all its missing files at once,
  in parallel, on the first file asked for;
- writes go to the local store, and reach the shared one when the run record
  that names them is written (``put_run``): every object first, in parallel,
  the record last, so a reader never finds a record whose objects are missing;
- a *read-only* layered store (``read_only=True``: pull-request jobs, whose
  credentials may only read) never writes the shared store: objects and records
  stay local.

:func:`copy_objects` moves objects between any two stores, only those the target
lacks (one batched existence check), in parallel, verifying every byte; ``sluice
data push/pull`` use it too.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sluice.errors import CorruptObject
from sluice.store.base import Store
from sluice.store.local import LocalStore
from sluice.util.hashing import DIR_SUFFIX, manifest_from_bytes

Progress = Callable[[int, int], None]
T = TypeVar("T")
R = TypeVar("R")
WORKERS_ENV = "SLUICE_TRANSFER_JOBS"
DEFAULT_WORKERS = 16


def transfer_workers() -> int:
    """How many objects move at once ($SLUICE_TRANSFER_JOBS, default 16)."""
    try:
        return max(1, int(os.environ.get(WORKERS_ENV, DEFAULT_WORKERS)))
    except ValueError:
        return DEFAULT_WORKERS


def parallel(fn: Callable[[T], R], items: Sequence[T], *, workers: int | None = None,
             on_done: Callable[[int, int], None] = lambda done, total: None) -> list[R]:
    """``fn`` over ``items`` on a thread pool; results in order; the first error is raised."""
    total = len(items)
    jobs = min(workers or transfer_workers(), total)
    if jobs <= 1:
        results = []
        for done, item in enumerate(items, 1):
            results.append(fn(item))
            on_done(done, total)
        return results
    from concurrent.futures import ThreadPoolExecutor  # only when objects move

    with ThreadPoolExecutor(jobs, thread_name_prefix="sluice-transfer") as pool:
        futures = [pool.submit(fn, item) for item in items]
        try:
            for done, future in enumerate(futures, 1):
                future.result()
                on_done(done, total)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        return [f.result() for f in futures]


def _no_progress(done: int, total: int) -> None:
    pass


def copy_object(source: Store, target: Store, digest: str) -> None:
    """Copy one object, verifying its content against its name on the way."""
    if isinstance(source, LocalStore) and not digest.endswith(DIR_SUFFIX):
        actual = target.add_file(source.object_path(digest), digest)  # hashes what it sends
        if actual != digest:
            raise CorruptObject(f"object {digest} in {source.url} is corrupt (its content "
                                f"hashes to {actual})",
                                hint=f"delete {source.object_path(digest)} and recreate it "
                                     "(`sluice data add`, or rerun the stage with --force)")
        return
    if isinstance(target, LocalStore) and not digest.endswith(DIR_SUFFIX):
        target.tmp.mkdir(parents=True, exist_ok=True)
        import tempfile

        fd, temp = tempfile.mkstemp(dir=target.tmp, suffix=".part")
        os.close(fd)
        try:
            source.checkout_file(digest, Path(temp))  # verified before it lands on temp
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        target.adopt(Path(temp), digest)
        return
    target.add_bytes(source.read_bytes(digest), digest)  # read_bytes verifies


def copy_objects(source: Store, target: Store, digests: Iterable[str],
                 on_progress: Progress = _no_progress) -> int:
    """Copy the objects ``target`` lacks, in parallel; returns how many were copied."""
    missing = target.missing(digests)
    # Folder manifests last: a manifest in a store promises its files are there too,
    # even if this copy is killed half-way.
    files = [d for d in missing if not d.endswith(DIR_SUFFIX)]
    manifests = [d for d in missing if d.endswith(DIR_SUFFIX)]
    total = len(missing)
    parallel(lambda d: copy_object(source, target, d), files,
             on_done=lambda done, _: on_progress(done, total))
    parallel(lambda d: copy_object(source, target, d), manifests,
             on_done=lambda done, _: on_progress(len(files) + done, total))
    return total


def record_objects(store: Store, record: dict[str, Any]) -> list[str]:
    """Every object a run record names: its outputs and the files of folder outputs."""
    found: list[str] = []
    for item in record.get("outs", {}).values():
        digest = item["hash"]
        found.append(digest)
        if digest.endswith(DIR_SUFFIX):
            found += [e.hash for e in manifest_from_bytes(store.read_bytes(digest))]
    return found


class LayeredStore:
    """The local store in front of a shared one (see the module docstring)."""

    def __init__(self, local: LocalStore, shared: Store, *, read_only: bool = False) -> None:
        self.local = local
        self.shared = shared
        self.read_only = read_only
        self.url = shared.url
        self._lock = threading.Lock()
        self._pending: set[str] = set()  # written locally, not yet sent to the shared store
        self._folder_of: dict[str, str] = {}  # file digest -> manifest that lists it
        self._prefetched: set[str] = set()

    def has(self, digest: str) -> bool:
        return self.local.has(digest) or self.shared.has(digest)

    def missing(self, digests: Iterable[str]) -> list[str]:
        return self.shared.missing(self.local.missing(digests))

    # ------------------------------------------------------------------ writing

    def add_file(self, src: Path, digest: str | None = None) -> str:
        actual = self.local.add_file(src, digest)
        with self._lock:
            self._pending.add(actual)
        return actual

    def add_bytes(self, data: bytes, digest: str) -> None:
        self.local.add_bytes(data, digest)
        with self._lock:
            self._pending.add(digest)

    def flush(self, on_progress: Progress = _no_progress) -> int:
        """Send the objects written locally to the shared store; returns how many went."""
        if self.read_only:
            return 0
        with self._lock:
            pending, self._pending = self._pending, set()
        try:
            return copy_objects(self.local, self.shared, sorted(pending), on_progress)
        except BaseException:
            with self._lock:
                self._pending |= pending
            raise

    def put_run(self, fingerprint: str, record: dict[str, Any]) -> None:
        """Objects to the shared store, then the record there, then the local record.

        The local record comes last: if the shared store fails, the stage has no
        record anywhere and its next run tries again (and shares it), instead of
        finding a local record that would never reach the other runners.
        """
        if self.read_only:
            self.local.put_run(fingerprint, record)
            return
        self.flush()
        # Objects stored by an earlier process are in no pending set: check them all
        # (the shared store's existence cache makes this cheap).
        copy_objects(self.local, self.shared, record_objects(self.local, record))
        self.shared.put_run(fingerprint, record)
        self.local.put_run(fingerprint, record)

    # ------------------------------------------------------------------ reading

    def get_run(self, fingerprint: str) -> dict[str, Any] | None:
        return self.local.get_run(fingerprint) or self.shared.get_run(fingerprint)

    def _fetch(self, digests: list[str]) -> None:
        copy_objects(self.shared, self.local, digests)

    def read_bytes(self, digest: str) -> bytes:
        if not self.local.has(digest):
            self._fetch([digest])
        data = self.local.read_bytes(digest)
        if digest.endswith(DIR_SUFFIX):
            # Remember the folder's files: restoring it will ask for them one by one.
            hashes = [entry.hash for entry in manifest_from_bytes(data)]
            with self._lock:
                for file_hash in hashes:
                    self._folder_of.setdefault(file_hash, digest)
            # The caller is about to ask whether each file exists: one batched
            # check now answers every later `has` from the shared store's memory.
            self.shared.missing(self.local.missing(hashes))
        return data

    def checkout_file(self, digest: str, dest: Path) -> None:
        if not self.local.has(digest):
            with self._lock:
                folder = self._folder_of.get(digest)
                first = folder is not None and folder not in self._prefetched
                if first and folder is not None:
                    self._prefetched.add(folder)
            if first and folder is not None:
                # One parallel fetch of the whole folder instead of one file at a time.
                entries = manifest_from_bytes(self.local.read_bytes(folder))
                self._fetch(list(dict.fromkeys(e.hash for e in entries)))
            if not self.local.has(digest):
                self._fetch([digest])
        self.local.checkout_file(digest, dest)

    def clean_tmp(self, max_age_s: float = 24 * 3600) -> int:
        """Local leftovers only: the shared store's belong to every runner."""
        return self.local.clean_tmp(max_age_s)


def local_layer(store: Store) -> Store:
    """The store that holds this checkout's own objects: the local layer of a layered store."""
    return store.local if isinstance(store, LayeredStore) else store
