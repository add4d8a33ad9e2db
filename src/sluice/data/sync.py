"""`sluice data push` and `pull`: which pins move, between which stores, and what happened.

One function per direction over `versioning.transfer`. Pins still in DVC's md5 (from
`sluice init --from-dvc`, bytes not yet imported) never go to sluice's remote: a push
skips them, a pull fetches them from DVC's cache or remote first (md5-checked) and
re-pins them in sluice's hash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sluice.config.lockfile import DVC_PREFIX, DataPin
from sluice.data.versioning import data_checkout, remote_store, select_pins, transfer
from sluice.errors import UsageError
from sluice.workspace.project import Project, shared_read_only

Progress = Callable[[int, int], None]


@dataclass
class Transferred:
    """What a push or pull did."""

    direction: str
    copied: int = 0
    complete: int = 0  # pinned paths whose objects are now all on the target
    restored: list[str] | None = None  # checked out (pull --checkout), else None
    from_dvc: list[str] = field(default_factory=list)  # pulled from DVC and re-pinned
    skipped_dvc: list[str] = field(default_factory=list)  # push: still in DVC's md5


def _quiet(done: int, total: int) -> None:
    pass


def _is_dvc(pin: DataPin) -> bool:
    return pin.hash.startswith(DVC_PREFIX)


def data_push(project: Project, remote: str | None, paths: list[str] | None,
              on_progress: Progress | None = None) -> Transferred:
    """Copy the objects of the selected pins that the remote store lacks to it."""
    if shared_read_only():
        raise UsageError("$SLUICE_CACHE_READ_ONLY is set: this job reads the shared store "
                         "and never writes it",
                         hint="push from a job with write access (not a pull-request job), "
                              "or unset SLUICE_CACHE_READ_ONLY")
    pins = select_pins(project, paths)
    done = Transferred("push", skipped_dvc=[p.path for p in pins if _is_dvc(p)])
    pins = [pin for pin in pins if not _is_dvc(pin)]
    done.copied = transfer(project.store, remote_store(project, remote), pins,
                           on_progress or _quiet)
    done.complete = len(pins)
    return done


def data_pull(project: Project, remote: str | None, paths: list[str] | None, *,
              checkout: bool = True, on_progress: Progress | None = None) -> Transferred:
    """Fetch the selected pins' missing objects into the local store (and check them out)."""
    from sluice.data.dvc_import import pull_dvc_pins
    from sluice.store.layered import local_layer

    pins = select_pins(project, paths)
    dvc = [pin for pin in pins if _is_dvc(pin)]
    pulled = pull_dvc_pins(project, dvc)
    done = Transferred("pull", from_dvc=[pin.path for pin in pulled])
    pins = [pin for pin in pins if not _is_dvc(pin)] + pulled
    # Where DVC's pins were all that was missing, there is no other store to ask (the
    # project may have none configured).
    if not (dvc and not local_layer(project.store).missing([pin.hash for pin in pins])):
        done.copied = transfer(remote_store(project, remote), project.store, pins,
                               on_progress or _quiet)
    done.complete = len(pins)
    if checkout:
        done.restored = data_checkout(project, [pin.path for pin in pins])
    return done
