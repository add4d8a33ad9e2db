"""Pinned data on an empty runner: fetch what the selected stages read before they start.

A fresh clone (a CI runner) has ``sluice.lock`` but not the data it pins, so its
first stage would fail on a missing dependency. Before ``sluice run`` starts
anything, :func:`fetch_missing` looks at the pins the selected stages read (the
same reading as :func:`sluice.data.pins.check_pins`) and, for each one that is
*absent* from the workspace, copies its objects from the shared store into the
local one (only those the local store lacks, in parallel, every byte hashed on
the way: :func:`sluice.data.versioning.transfer`) and checks it out (verified
again as it lands). Data that is present but differs from its pin is never
overwritten: it may be someone's work, and the pin check refuses it with the fix.

The shared store is the one ``sluice data push`` writes to: ``$SLUICE_REMOTE``,
``remote:``, then ``storage: cache:`` (or ``$SLUICE_CACHE_URL``). Reading needs no
write access, so pull-request jobs with read-only credentials get their data too.
Upstream stages' outputs need nothing here: a cached stage's outputs are restored
through the layered store when the scheduler reuses it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from sluice.config.lockfile import LOCK_FILE, XXH3, DataPin
from sluice.data.pins import pins_read
from sluice.data.versioning import data_checkout, read_pins, remote_url, transfer
from sluice.errors import PinnedDataMismatch, SluiceError
from sluice.store.base import Store
from sluice.util.credentials import mask
from sluice.workspace.project import SHARED_CACHE_ENV, Project

_STEPS = 10  # progress lines per fetch: at most one per tenth of the objects


@dataclass(frozen=True)
class FetchProgress:
    """How far a fetch has got, for a progress line."""

    paths: tuple[str, ...]
    store: str  # masked URL
    done: int  # objects copied so far
    total: int  # objects to copy
    files: int  # files the paths hold

    @property
    def message(self) -> str:
        if self.done == 0 and not self.store:
            return f"checking out {_names(self.paths)} ({self.files} file(s)) from the local store"
        if self.done == 0:
            return f"fetching {_names(self.paths)} ({self.files} file(s)) from {self.store}"
        return f"fetched {self.done}/{self.total} object(s) from {self.store}"


@dataclass(frozen=True)
class FetchResult:
    """What a fetch of pinned data brought into the workspace."""

    paths: list[str]  # checked out into the workspace
    copied: int  # objects copied from the shared store
    store: str | None  # masked URL of the store they came from (None: the local store)


def _names(paths: tuple[str, ...]) -> str:
    shown = ", ".join(f"`{p}`" for p in paths[:3])
    return shown + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


def missing_pins(project: Project, stages: list[str]) -> dict[str, list[str]]:
    """Pins of sluice.lock that ``stages`` read and the workspace lacks: path → readers.

    DVC's pins are left to DVC (``dvc pull``); the pin check names them.
    """
    pins, readers = pins_read(project, stages, lock_only=True)
    return {path: readers[path] for path in sorted(readers)
            if pins[path].algorithm == XXH3 and not os.path.lexists(project.root / path)}


def _open_source(project: Project, url: str) -> Store:
    from sluice.store.layered import LayeredStore

    store = project.store
    if isinstance(store, LayeredStore) and url == project.shared_cache_url:
        return store.shared  # already open (and its existence cache warm)
    from sluice.store import open_store

    return open_store(url, project.root)


def _listing(pins: list[DataPin], readers: dict[str, list[str]]) -> str:
    lines = []
    for pin in pins:
        names = ", ".join(f"`{s}`" for s in readers[pin.path][:3])
        lines.append(f"  `{pin.path}` ({pin.hash[:12]}…, pinned in {LOCK_FILE}) read by {names}")
    return "\n".join(lines)


def _no_store(pins: list[DataPin], readers: dict[str, list[str]]) -> PinnedDataMismatch:
    off = (os.environ.get(SHARED_CACHE_ENV) or "").strip().lower() == "none"
    reason = f"${SHARED_CACHE_ENV}=none turns the shared store off" if off \
        else "no shared store is configured"
    return PinnedDataMismatch(
        "pinned data is missing from the workspace and from the local store, and "
        f"{reason}; nothing was run:\n" + _listing(pins, readers),
        hint="point `storage: cache:` (or `remote:`) in sluice.yaml, or $SLUICE_REMOTE, at "
             "the store it was pushed to with `sluice data push`; in CI, give pull-request "
             "jobs read-only store credentials with `ci.read_secrets`")


def _not_pushed(readers: dict[str, list[str]]
                ) -> Callable[[list[DataPin], Store], SluiceError]:
    def error(absent: list[DataPin], source: Store) -> SluiceError:
        paths = " ".join(p.path for p in absent)
        return PinnedDataMismatch(
            f"pinned data is missing from the workspace and not in the shared store "
            f"{mask(source.url)}; nothing was run:\n" + _listing(absent, readers),
            hint=f"push it from a checkout that has it: `sluice data push {paths}` (the "
                 "store is $SLUICE_REMOTE, `remote:` or `storage: cache:` there); or, to "
                 "use other data, `sluice data add` it and commit sluice.lock")
    return error


def fetch_missing(project: Project, stages: list[str],
                  on_progress: Callable[[FetchProgress], None] = lambda p: None
                  ) -> FetchResult:
    """Fetch and check out the pinned data ``stages`` read that the workspace lacks.

    Raises PinnedDataMismatch (exit 2) naming each pin, the store and the push that
    fixes it when an object is in no store this checkout can read.
    """
    readers = missing_pins(project, stages)
    if not readers:
        return FetchResult([], 0, None)
    from sluice.store.layered import local_layer

    lock = read_pins(project)
    pins = [lock[path] for path in readers]
    paths = tuple(readers)
    files = sum(pin.nfiles for pin in pins)
    local = local_layer(project.store)
    lacking = local.missing([p.hash for p in pins])
    url = remote_url(project) if lacking else None
    copied, shown = 0, None
    if lacking and url is None:
        raise _no_store([p for p in pins if p.hash in set(lacking)], readers)
    if url is None:
        on_progress(FetchProgress(paths, "", 0, 0, files))
    else:
        source = _open_source(project, url)
        shown = mask(source.url)
        on_progress(FetchProgress(paths, shown, 0, 0, files))
        step = [0]

        def progress(done: int, total: int) -> None:
            tenth = done * _STEPS // max(total, 1)
            if done == total or tenth != step[0]:
                step[0] = tenth
                on_progress(FetchProgress(paths, shown or "", done, total, files))

        copied = transfer(source, local, pins, progress, on_absent=_not_pushed(readers))
    # Every object is local now: the checkout reads (and verifies) them there.
    restored = data_checkout(project, list(paths))
    return FetchResult(restored, copied, shown)

