"""``sluice gc``: remove the store objects, run records and local state nothing references.

Mark, then sweep. The roots (:mod:`sluice.orchestrate.gc_roots`) are read first; then
each store is listed once: a run record is kept when its fingerprint or its run is a
root (or it is younger than the grace period), and every object a kept record, a root
or a kept folder manifest names is kept. Nothing is deleted before everything is
marked, and deletion goes records first, then folder manifests, then files: a
``kill -9`` at any moment leaves no record naming a missing object and no manifest
naming a missing file, which is all a store promises its readers.

The local store is swept under :func:`sluice.store.sweep.gc_lease`, which every run
holds shared while it lives, so a run in progress on this machine is never swept
under (a gc refuses while one runs). A shared store (``storage: cache:``, with
``--shared``) cannot be locked across machines: there nothing younger than the grace
period (24 h by default) is deleted, so a run elsewhere that uploaded an object and has
not yet written the record naming it keeps it. sluice keeps no remote index of what a
store holds (see :mod:`sluice.store.fsspec`), so there is no index to invalidate.

``.sluice`` itself is trimmed too: run results and reports of runs beyond the kept
ones, logs of stages no longer configured, temp files of killed writers and cache
entries older than the oldest kept run.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sluice.errors import UsageError
from sluice.orchestrate.gc_roots import DIGEST, Roots, find_roots, out_hashes
from sluice.store.base import Store
from sluice.store.local import LocalStore
from sluice.store.sweep import (
    Entry,
    delete_object,
    delete_record,
    gc_lease,
    list_objects,
    list_records,
)
from sluice.util.hashing import DIR_SUFFIX, manifest_from_bytes
from sluice.workspace.project import Project

DEFAULT_GRACE_S = 24 * 3600
DEFAULT_KEEP_RUNS = 10
TMP_AGE_S = 3600  # a temp file this old has no live writer (a gc never waits for one)


@dataclass
class GcOptions:
    revs: list[str] = field(default_factory=list)
    all_branches: bool = False
    keep_runs: int = DEFAULT_KEEP_RUNS
    dry_run: bool = False
    shared: bool = False  # also collect the shared store (storage: cache:)
    grace_s: float = DEFAULT_GRACE_S


@dataclass
class StoreSweep:
    """What one store held and what went (or would go, in a dry run)."""

    store: str
    role: str  # local or shared
    grace_s: float
    objects: int = 0
    bytes: int = 0
    records: int = 0
    removed_objects: int = 0
    removed_bytes: int = 0
    removed_records: int = 0
    spared_young: int = 0  # unreferenced but younger than the grace period
    spared_young_bytes: int = 0


@dataclass
class StateSweep:
    """What went from ``.sluice`` besides the store."""

    before_bytes: int = 0
    after_bytes: int = 0
    removed: dict[str, int] = field(default_factory=dict)  # what → files removed
    removed_bytes: int = 0


@dataclass
class GcReport:
    dry_run: bool
    keep_runs: int
    revisions: list[str]
    kept: dict[str, int]
    stores: list[StoreSweep]
    state: StateSweep

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def collect_garbage(project: Project, options: GcOptions) -> GcReport:
    """Remove (or, dry, list) what nothing references; see the module docstring."""
    from sluice.store.layered import LayeredStore, local_layer

    if options.grace_s < 0:
        raise UsageError("--grace must not be negative", hint="e.g. --grace 24h")
    store = project.store
    local = local_layer(store)
    shared: Store | None = None
    if options.shared:
        if not isinstance(store, LayeredStore):
            raise UsageError("--shared: no shared store is configured",
                             hint="set `storage: cache:` in sluice.yaml (or $SLUICE_CACHE_URL)")
        if store.read_only:
            raise UsageError("--shared: the shared store is read-only here "
                             "($SLUICE_CACHE_READ_ONLY)",
                             hint="run the shared gc from a job that may write the store")
        shared = store.shared
    with gc_lease(local):
        roots = find_roots(project, revs=options.revs, all_branches=options.all_branches,
                           keep_runs=options.keep_runs)
        stores = [local] + ([shared] if shared is not None else [])
        state = StateSweep(before_bytes=_size(project.state_dir))
        # A "local" store on an object store ($SLUICE_CACHE=s3://…) has no lease: grace.
        own = isinstance(local, LocalStore)
        sweeps = [_sweep(local, "local" if own else "shared", 0.0 if own else options.grace_s,
                         roots, stores, options.dry_run)]
        if shared is not None:
            sweeps.append(_sweep(shared, "shared", options.grace_s, roots, stores,
                                 options.dry_run))
        _trim_state(project, local, roots, options, state)
        state.after_bytes = _size(project.state_dir)
        if options.dry_run:
            in_state = sweeps[0].removed_bytes if _inside(local, project.state_dir) else 0
            state.after_bytes = max(0, state.before_bytes - state.removed_bytes - in_state)
    return GcReport(options.dry_run, options.keep_runs, roots.revisions, dict(roots.why),
                    sweeps, state)


def _inside(store: Store, folder: Path) -> bool:
    root = getattr(store, "root", None)
    return isinstance(root, Path) and root.resolve().is_relative_to(folder.resolve())


def _sweep(store: Store, role: str, grace_s: float, roots: Roots, stores: list[Store],
           dry_run: bool) -> StoreSweep:
    from sluice.store.layered import parallel

    result = StoreSweep(store.url, role, grace_s)
    cutoff = time.time() - grace_s if grace_s else float("inf")
    kept = set(roots.objects)
    records = list_records(store)
    result.records = len(records)
    doomed: list[Entry] = []
    loaded = parallel(lambda entry: (entry, store.get_run(entry.key)), records)
    for entry, record in loaded:
        if not isinstance(record, dict):
            continue  # gone or damaged: names no object anyone could be given
        if isinstance(record.get("outs"), dict) and "stage" in record:
            if entry.key in roots.fingerprints or record.get("run_id") in roots.run_ids \
                    or entry.mtime > cutoff:
                kept.update(out_hashes(record["outs"]))
            else:
                doomed.append(entry)
        else:
            # A pointer or a tier-run manifest: kept, with every object it may name.
            kept.update(DIGEST.findall(json.dumps(record)))
    objects = list_objects(store)
    present = {o.key for o in objects}
    for digest in [d for d in kept if d.endswith(DIR_SUFFIX)]:
        source = store if digest in present else next((s for s in stores if s.has(digest)),
                                                      None)
        if source is not None:  # a manifest it lacks promises nothing about its files
            kept.update(e.hash for e in manifest_from_bytes(source.read_bytes(digest), digest))
    garbage: list[Entry] = []
    for obj in objects:
        result.objects += 1
        result.bytes += obj.size
        if obj.key in kept:
            continue
        if obj.mtime > cutoff:
            result.spared_young += 1
            result.spared_young_bytes += obj.size
        else:
            garbage.append(obj)
    result.removed_records = len(doomed)
    result.removed_objects = len(garbage)
    result.removed_bytes = sum(o.size for o in garbage)
    if not dry_run:
        # Records, then manifests, then files: each step leaves a consistent store.
        parallel(lambda e: delete_record(store, e.key), doomed)
        parallel(lambda o: delete_object(store, o.key),
                 [o for o in garbage if o.key.endswith(DIR_SUFFIX)])
        parallel(lambda o: delete_object(store, o.key),
                 [o for o in garbage if not o.key.endswith(DIR_SUFFIX)])
    return result


def _size(folder: Path) -> int:
    total = 0
    for top, dirs, files in os.walk(folder):
        total += sum(_lsize(Path(top, name)) for name in files)
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(top, d))]
    return total


def _trim_state(project: Project, local: Store, roots: Roots, options: GcOptions,
                state: StateSweep) -> None:
    """Old run results, reports, logs, temp files and cache entries in ``.sluice``."""
    from sluice.util.fs import remove_path

    base = project.state_dir
    now = time.time()
    doomed: dict[str, list[Path]] = {}
    # Run results and reports of runs the ledger has beyond the kept ones; of runs it
    # does not know (its database elsewhere), those older than the oldest kept run or,
    # with no kept run, beyond the newest --keep-runs.
    latest = _read_text(base / "reports" / "latest")
    for what, folder, suffix in (("run results", base / "runs", ".json"),
                                 ("reports", base / "reports", "")):
        entries = [p for p in _children(folder)
                   if p.name.endswith(suffix) and p.name != "latest"]
        unknown = []
        for path in entries:
            run_id = path.name.removesuffix(suffix) if suffix else path.name
            if run_id in roots.run_ids or run_id == latest:
                continue
            if run_id in roots.old_run_ids:
                doomed.setdefault(what, []).append(path)
            else:
                unknown.append(path)
        unknown.sort(key=_mtime, reverse=True)
        if roots.oldest_kept is not None:
            old = [p for p in unknown if _mtime(p) < roots.oldest_kept]
        else:
            old = unknown[options.keep_runs:]
        doomed.setdefault(what, []).extend(old)
    stages = set(project.config.stages)
    doomed["logs of removed stages"] = [p for p in _children(base / "logs")
                                        if p.suffix == ".log" and p.stem not in stages]
    doomed["temp files"] = [p for p in _children(base / "tmp") if _mtime(p) < now - TMP_AGE_S]
    if roots.oldest_kept is not None:
        for cache in ("config-cache", "validation"):
            doomed[f"{cache} entries"] = [p for p in _children(base / cache)
                                          if _mtime(p) < roots.oldest_kept]
    for what, paths in doomed.items():
        if not paths:
            continue
        state.removed[what] = len(paths)
        state.removed_bytes += sum(_size(p) if p.is_dir() else _lsize(p) for p in paths)
        if not options.dry_run:
            for path in paths:
                remove_path(path)
    if not options.dry_run:
        gone = local.clean_tmp(TMP_AGE_S)
        if gone:
            state.removed["store temp files"] = gone


def _children(folder: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(folder) if not e.is_symlink()]
    except OSError:
        return []


def _mtime(path: Path) -> float:
    try:
        return os.lstat(path).st_mtime
    except OSError:
        return 0.0


def _lsize(path: Path) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
