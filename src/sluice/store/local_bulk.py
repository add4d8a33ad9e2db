"""Adding many files to a :class:`sluice.store.local.LocalStore` at once (its ``add_files``).

Large files are copied on threads (the kernel copies, the hash releases the
GIL). Many small files are copied by forked worker processes, a chunk of
files per task: a small file is a few syscalls and a few microseconds of
Python each, which threads would run one at a time under the GIL. Each
worker publishes every object by an atomic rename, as ``add_file`` does,
and stops when this process dies, so a ``kill -9`` leaves no partial object.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sluice.errors import StoreError
from sluice.util.safepath import check_digest

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

    from sluice.store.local import LocalStore


def add_many(store: LocalStore, paths: Sequence[str], sizes: Sequence[int],
             known: Sequence[str | None]) -> list[str]:
    """``store.add_file`` of many files (``known``: digests from the stat cache, or
    None); their digests, in order."""
    objects, isfile = str(store.objects), os.path.isfile  # no Path per file
    digests: list[str | None] = [
        d if d is not None and isfile(os.path.join(objects, d[:2], check_digest(d)[2:]))
        else None for d in known]
    todo = [i for i, d in enumerate(digests) if d is None]
    small = [i for i in todo if sizes[i] < _LARGE]
    large = sorted((i for i in todo if sizes[i] >= _LARGE), key=lambda i: -sizes[i])
    cores = os.cpu_count() or 1
    pool = _fork_pool(store, cores) if len(small) >= _POOL_MIN_FILES and cores > 1 else None
    if pool is None:
        small, large = [], small + large  # threads for all (few files, one core, no fork)
    try:
        chunks = [small[n:n + _POOL_CHUNK] for n in range(0, len(small), _POOL_CHUNK)]
        pending = [] if pool is None else [
            pool.submit(_add_chunk, [paths[i] for i in chunk]) for chunk in chunks]
        if large:
            from concurrent.futures import ThreadPoolExecutor

            workers = min(cores + 1, len(large))
            with ThreadPoolExecutor(workers, thread_name_prefix="sluice-add") as threads:
                copied = threads.map(lambda i: store.add_file(paths[i]), large)
                for i, digest in zip(large, copied, strict=True):
                    digests[i] = digest
        for chunk, future in zip(chunks, pending, strict=True):
            result = _chunk_result(future, store.root)
            for i, digest in zip(chunk, result, strict=True):
                digests[i] = digest
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return [d for d in digests if d is not None]


# ---------------------------------------------------------------- forked copy workers

_LARGE = 4 * 1024 * 1024  # from here a file goes to a thread: its copy releases the GIL
_POOL_MIN_FILES = 512  # fewer small files than this: starting processes costs more
_POOL_CHUNK = 200  # files per task: few round trips, yet the workers stay balanced
_worker_store: LocalStore | None = None
_parent_pid = 0


def _fork_pool(store: LocalStore, workers: int) -> ProcessPoolExecutor | None:
    """A pool of ``workers`` forked processes adding files to ``store``; None where
    this platform cannot fork (the caller uses threads)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    global _worker_store, _parent_pid
    if "fork" not in multiprocessing.get_all_start_methods():
        return None
    try:
        store.prepare_folders()
    except OSError as exc:
        raise StoreError(f"cannot write to the store {store.root}: {exc.strerror}",
                         hint="check free space and permissions") from None
    _worker_store, _parent_pid = store, os.getpid()  # inherited by the forked workers
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                               initializer=_worker_init)


def _chunk_result(future: Future[list[str] | StoreError], root: Path) -> list[str]:
    from concurrent.futures.process import BrokenProcessPool

    try:
        result = future.result()
    except BrokenProcessPool:
        raise StoreError(f"a process copying files into the store {root} died (killed, or "
                         "out of memory?); nothing half-copied was stored",
                         hint="run the command again") from None
    if isinstance(result, StoreError):
        raise result
    return result


def _worker_init() -> None:
    # Ctrl-C reaches the whole process group: the parent stops the pool, the
    # workers need not print a traceback each.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A worker waiting for its next task would wait forever once the parent is
    # killed (it holds the queue's other end itself): Linux kills it with its parent.
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != _parent_pid:  # killed before that took effect
        os._exit(1)


def _add_chunk(paths: list[str]) -> list[str] | StoreError:
    """In a worker: add ``paths``; their digests, or the error of the first that failed
    (returned, not raised: it is reported by the parent as raised there)."""
    assert _worker_store is not None
    digests = []
    for path in paths:
        if os.getppid() != _parent_pid:  # the parent was killed: stop, publish no more
            os._exit(1)
        try:
            digests.append(_worker_store.add_file(path))
        except StoreError as exc:
            return StoreError(exc.message, hint=exc.hint)
    return digests
