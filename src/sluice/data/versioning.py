"""Data versioning: pin data outside git by content hash in ``sluice.lock``.

``add`` hashes a file or folder, stores its objects and pins the hash;
``status`` (:mod:`sluice.data.status`, light enough for the fast path) compares
the workspace with the pins — sluice.lock's and those of DVC's ``.dvc`` /
``dvc.lock`` files, in DVC's md5 — cheaply, through the stat cache;
``checkout`` restores pinned data from the store; ``push``/``pull`` copy
missing objects between the local store and a remote one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from sluice.config.base import normalise_path
from sluice.config.lockfile import LOCK_FILE, DataPin, render_lock
from sluice.data.status import pin_status, workspace_pins
from sluice.data.status import read_pins as read_pins  # status lives there; fetch reads it here
from sluice.errors import Location, SluiceError, StoreError, UsageError
from sluice.store.base import Store
from sluice.store.local import LocalStore
from sluice.util.fs import FileLock, atomic_write_bytes
from sluice.util.hashing import (
    DIR_SUFFIX,
    manifest_from_bytes,
)
from sluice.workspace.gitignore import ensure_ignored
from sluice.workspace.graph import OutputIndex
from sluice.workspace.outputs import LinkMode, restore_outputs, store_file, store_tree
from sluice.workspace.project import Project


def _write_pins(project: Project, pins: dict[str, DataPin]) -> None:
    atomic_write_bytes(project.root / LOCK_FILE, render_lock(pins).encode())


def link_mode(project: Project, link: bool | None) -> LinkMode | None:
    """Whether pinned data is hard-linked: ``link`` (a command's option), else ``storage: link``."""
    return LinkMode() if (project.config.spec.storage.link if link is None else link) else None


def _say_copied(mode: LinkMode | None, on_notice: Callable[[str], None]) -> None:
    if mode is not None and mode.copied:
        on_notice(f"{len(mode.copied)} file(s) were copied, not linked (e.g. "
                  f"{mode.copied[0]}): hard links cannot join them and the store "
                  "(another filesystem?)")


def data_add(project: Project, raw_paths: list[str],
             on_progress: Callable[[str], None] = lambda p: None, *,
             link: bool | None = None,
             on_notice: Callable[[str], None] = lambda m: None) -> list[DataPin]:
    """Pin each path: store its content, record it in sluice.lock, git-ignore it.

    ``link`` (default: ``storage: link``) makes the files hard links to read-only
    store objects instead of copying them; ``on_notice`` hears of any it had to copy.
    """
    mode = link_mode(project, link)
    outputs = OutputIndex(project.config)
    added = []
    lock = FileLock(project.state_dir / "locks" / "sluice.lock.lock")
    lock.acquire(blocking=True)
    lease = ExitStack()  # a `sluice gc` waits until the objects are pinned
    try:
        from sluice.store.layered import local_layer
        from sluice.store.sweep import run_lease

        lease.enter_context(run_lease(local_layer(project.store)))
        pins = read_pins(project)
        for raw in raw_paths:
            absolute = Path(raw).resolve()
            try:
                rel_raw = absolute.relative_to(project.root.resolve()).as_posix()
            except ValueError:
                raise UsageError(f"`{raw}` is outside the project {project.root}",
                                 hint="move the data into the repository first") from None
            rel = normalise_path(rel_raw, "data path", Location(raw))
            full = project.root / rel
            if not full.exists():
                raise UsageError(f"`{raw}` does not exist", hint="check the path")
            if outputs.matching(rel):
                producer = outputs.matching(rel)[0]
                raise UsageError(f"`{rel}` is output `{producer.out}` of stage "
                                 f"`{producer.stage}`; sluice already caches it",
                                 hint="pin only source data that no stage produces")
            on_progress(rel)
            if full.is_dir():
                digest, entries = store_tree(project.store, project.hasher, full,
                                             follow_links=False,  # never host files via a link
                                             link=mode)
                size, nfiles = sum(e.size for e in entries), len(entries)
            else:
                digest = store_file(project.store, project.hasher, full, mode)
                size, nfiles = full.stat().st_size, 1
            pin = DataPin(rel, digest, size, nfiles)
            pins = {p: v for p, v in pins.items()
                    if not (p == rel or p.startswith(rel + "/"))}
            pins[rel] = pin
            added.append(pin)
            ensure_ignored(project.root, [rel], project.state_dir / "locks",
                           unless_tracked=False)
        _write_pins(project, pins)
    finally:
        lease.close()
        lock.release()
        project.stat_cache.flush()
    _say_copied(mode, on_notice)
    return added


def select_pins(project: Project, paths: list[str] | None) -> list[DataPin]:
    pins = read_pins(project)
    if not paths:
        return list(pins.values())
    chosen = []
    for raw in paths:
        rel = normalise_path(raw, "data path", Location(raw))
        dvc = workspace_pins(project).get(rel) if rel not in pins else None
        if dvc is not None:
            raise UsageError(f"`{rel}` is pinned by {dvc.source}, which DVC manages",
                             hint=f"use DVC for it: `dvc checkout {dvc.source}`, "
                                  f"`dvc pull {dvc.source}`, `dvc push {dvc.source}`")
        if rel not in pins:
            raise UsageError(f"`{rel}` is not pinned in {LOCK_FILE}",
                             hint="`sluice data status` lists the pinned paths; "
                                  "pin new data with `sluice data add`")
        chosen.append(pins[rel])
    return chosen


def data_checkout(project: Project, paths: list[str] | None = None, *,
                  link: bool | None = None,
                  on_notice: Callable[[str], None] = lambda m: None) -> list[str]:
    """Restore pinned data that differs from its pin; returns the restored paths.

    ``link`` (default: ``storage: link``) restores hard links to the read-only
    objects instead of copies; ``on_notice`` hears of any it had to copy.
    """
    mode = link_mode(project, link)
    restored = []
    try:
        for pin in select_pins(project, paths):
            full = project.root / pin.path
            if full.exists() and pin_status(project, pin).state == "unchanged":
                continue
            if not project.store.has(pin.hash):
                raise StoreError(f"`{pin.path}` ({pin.hash[:12]}) is not in the store "
                                 f"{project.store.url}",
                                 hint="fetch it with `sluice data pull`, or re-pin local data "
                                      f"with `sluice data add {pin.path}`")
            restore_outputs(project, {"data": {"path": pin.path, "hash": pin.hash}}, mode)
            restored.append(pin.path)
    finally:
        project.stat_cache.flush()
    _say_copied(mode, on_notice)
    return restored


def _objects_of(store: Store, pin: DataPin) -> list[str]:
    if not pin.hash.endswith(DIR_SUFFIX):
        return [pin.hash]
    entries = manifest_from_bytes(store.read_bytes(pin.hash))
    return [pin.hash, *(e.hash for e in entries)]


def _not_in_store(absent: list[DataPin], source: Store) -> SluiceError:
    names = ", ".join(f"`{pin.path}`" for pin in absent)
    verb = "is" if len(absent) == 1 else "are"
    return StoreError(f"{names} (pinned in {LOCK_FILE}) {verb} not in the store {source.url}",
                      hint="push it from a checkout that has the data: "
                           + " ".join(["`sluice data push", *(p.path for p in absent)]) + "`"
                           + " (after `sluice data add` if it is not pinned there)")


def transfer(source: Store, target: Store, pins: list[DataPin],
             on_progress: Callable[[int, int], None] = lambda done, total: None,
             *, on_absent: Callable[[list[DataPin], Store], SluiceError] = _not_in_store
             ) -> int:
    """Copy the objects of ``pins`` that ``target`` lacks; returns how many were copied.

    Existence is checked in batches (a listing per prefix on object stores, not a
    request per object), the copies run in parallel, and every object is hashed
    on the way, so a corrupt one is reported and never installed. A layered
    store takes part through its local layer: push sends what this checkout has,
    pull fetches into this checkout.
    """
    from sluice.store.layered import copy_objects, local_layer

    source, target = local_layer(source), local_layer(target)
    # Only pins the target lacks must be in the source (one batched check each side).
    absent = set(source.missing(target.missing([pin.hash for pin in pins])))
    if absent:
        raise on_absent([pin for pin in pins if pin.hash in absent], source)
    wanted: list[str] = []
    for pin in pins:
        # Read a folder's manifest from this disk when it is here: no request.
        here = [s for s in (source, target) if isinstance(s, LocalStore) and s.has(pin.hash)]
        wanted += _objects_of(here[0] if here else source, pin)
    return copy_objects(source, target, dict.fromkeys(wanted), on_progress)


def remote_url(project: Project) -> str | None:
    """The store pinned data is pushed to: $SLUICE_REMOTE, `remote:`, then the shared cache."""
    return os.environ.get("SLUICE_REMOTE") or project.config.remote or project.shared_cache_url


def remote_store(project: Project, url: str | None) -> Store:
    from sluice.store import open_store

    remote = url or remote_url(project)
    if not remote:
        raise UsageError("no remote store configured",
                         hint="set `remote:` or `storage: cache:` in sluice.yaml (a folder "
                              "or URL such as s3://bucket/prefix), the SLUICE_REMOTE "
                              "variable, or pass --remote")
    return open_store(remote, project.root)
