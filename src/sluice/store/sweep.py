"""Listing and deleting what a store holds, for ``sluice gc``; and the lease that keeps a
gc away from running writers.

The rest of sluice only ever adds to a store; this module is the one place that takes
away. Nothing here decides *what* goes: :mod:`sluice.orchestrate.gc` does, from what the
registry, the ledger and the lock files reference. What is listed is trusted for
nothing but names that have the exact shape of a sluice digest: any other file under
a store (a stray note, a link, a folder someone made) is neither listed nor deleted.

The lease: a run holds a *shared* ``flock`` on ``<store>/gc.lock`` for its whole life
(:func:`run_lease`); a gc takes it *exclusively*, without waiting (:func:`gc_lease`),
so a gc never sweeps while a run on this machine is between writing an object and the
record that names it, and a run that starts during a gc waits for it. The kernel drops
either lock when its process dies (``kill -9``). A shared object store cannot be
locked so: there a gc spares everything younger than a grace period instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sluice.errors import StoreError
from sluice.store.base import Store
from sluice.store.fsspec_errors import store_errors
from sluice.store.local import LocalStore
from sluice.util.safepath import check_digest

LEASE_FILE = "gc.lock"
_HEX2 = re.compile(r"[0-9a-f]{2}")
_REST = re.compile(r"[0-9a-f]{30}(?:\.dir)?")
_RECORD = re.compile(r"([0-9a-f]{30})\.json")


@dataclass(frozen=True)
class Entry:
    """One object (``key`` its digest) or run record (``key`` its fingerprint)."""

    key: str
    size: int
    mtime: float  # seconds since the epoch; "now" where the store does not say


# ---------------------------------------------------------------------- the lease


@contextlib.contextmanager
def run_lease(store: Store) -> Iterator[None]:
    """Held by a run while it writes ``store`` (its local layer): a gc waits for it.

    A store whose lock cannot be made (a read-only folder) runs without one: a gc
    cannot write there either."""
    try:
        fd = _lease_fd(store)
    except StoreError:
        fd = None
    if fd is None:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # waits while a gc sweeps: it is short
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def gc_lease(store: Store) -> Iterator[None]:
    """Held by a gc while it marks and sweeps; StoreError if a run holds the store now."""
    fd = _lease_fd(store)
    if fd is None:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(f"a sluice run is using the store {store.url} right now; "
                             "nothing was removed",
                             hint="run `sluice gc` again when it has finished") from None
        yield
    finally:
        os.close(fd)


def _lease_fd(store: Store) -> int | None:
    if not isinstance(store, LocalStore):
        return None
    try:
        store.root.mkdir(parents=True, exist_ok=True)
        return os.open(store.root / LEASE_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise StoreError(f"cannot open the lock of the store {store.root}: {exc.strerror}",
                         hint="check the folder's permissions") from None


# ---------------------------------------------------------------------- listing


def list_objects(store: Store) -> list[Entry]:
    """Every object in ``store`` with its size and age (one listing on object stores)."""
    return _list(store, "objects", _object_key)


def list_records(store: Store) -> list[Entry]:
    """Every run record (run cache entry) in ``store``."""
    return _list(store, "runs", _record_key)


def _object_key(two: str, name: str) -> str | None:
    return two + name if _HEX2.fullmatch(two) and _REST.fullmatch(name) else None


def _record_key(two: str, name: str) -> str | None:
    found = _RECORD.fullmatch(name)
    return two + found.group(1) if _HEX2.fullmatch(two) and found else None


def _list(store: Store, folder: str, key_of: Any) -> list[Entry]:
    from sluice.store.fsspec import FsspecStore

    if isinstance(store, LocalStore):
        return _list_local(store.root / folder, key_of)
    if isinstance(store, FsspecStore):
        return _list_fsspec(store, folder, key_of)
    raise StoreError(f"`sluice gc` cannot list the store {store.url}",
                     hint="collect its own local and shared stores one at a time")


def _list_local(top: os.PathLike[str], key_of: Any) -> list[Entry]:
    found: list[Entry] = []
    try:
        folders = list(os.scandir(top))
    except FileNotFoundError:
        return []
    for folder in folders:
        if not folder.is_dir(follow_symlinks=False):
            continue
        for entry in os.scandir(folder.path):
            key = key_of(folder.name, entry.name)
            if key is None or not entry.is_file(follow_symlinks=False):
                continue  # not something sluice wrote: never touched
            with contextlib.suppress(FileNotFoundError):  # a concurrent gc took it
                stat = entry.stat(follow_symlinks=False)
                found.append(Entry(key, stat.st_size, stat.st_mtime))
    return found


def _when(info: dict[str, Any]) -> float:
    """An fsspec entry's modification time, whatever the backend calls it."""
    for name in ("LastModified", "mtime", "last_modified", "updated", "created"):
        value = info.get(name)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return time.time()  # unknown age: counts as new, so a grace period spares it


def _list_fsspec(store: Any, folder: str, key_of: Any) -> list[Entry]:
    from sluice.store.s3list import s3_entries

    top = f"{store.prefix}/{folder}"
    with store_errors(store, "listing the store"):
        if store.is_s3:
            bucket = top.partition("/")[0]
            infos = [{**item, "name": f"{bucket}/{item['Key']}", "size": item.get("Size", 0)}
                     for item in s3_entries(store.fs.call_s3, top, 1000)]
        else:
            store.fs.invalidate_cache(top)
            try:
                infos = [i for i in store.fs.find(top, detail=True).values()
                         if i.get("type", "file") == "file"]
            except FileNotFoundError:
                infos = []
    found = []
    for info in infos:
        parts = str(info["name"]).rstrip("/").rsplit("/", 2)
        key = key_of(parts[-2], parts[-1]) if len(parts) == 3 else None
        if key is not None:
            found.append(Entry(key, int(info.get("size") or 0), _when(info)))
    return found


# ---------------------------------------------------------------------- deleting


def delete_object(store: Store, digest: str) -> None:
    """Remove one object; gone already is fine (another gc)."""
    check_digest(digest)  # a name from a listing: never let it name another path
    _delete(store, lambda local: str(local.object_path(digest)),
            lambda shared: shared.object_key(digest))


def delete_record(store: Store, fingerprint: str) -> None:
    """Remove one run record; gone already is fine."""
    check_digest(fingerprint, "a run record")
    _delete(store, lambda local: str(local.runs / fingerprint[:2] / f"{fingerprint[2:]}.json"),
            lambda shared: shared.run_key(fingerprint))


def _delete(store: Store, local_path: Callable[[LocalStore], str],
            shared_key: Callable[[Any], str]) -> None:
    """Delete what ``local_path`` (a local store) or ``shared_key`` (an fsspec one) names."""
    from sluice.store.fsspec import FsspecStore

    if isinstance(store, LocalStore):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(local_path(store))
    elif isinstance(store, FsspecStore):
        _delete_key(store, shared_key(store))
    else:
        raise StoreError(f"`sluice gc` cannot delete from the store {store.url}",
                         hint="collect its own local and shared stores one at a time")


def _delete_key(store: Any, key: str) -> None:
    with store_errors(store, "deleting"):
        if store.is_s3:
            bucket, _, name = key.partition("/")
            store.fs.call_s3("delete_object", Bucket=bucket, Key=name)
        else:
            with contextlib.suppress(FileNotFoundError):
                store.fs.rm_file(key)
