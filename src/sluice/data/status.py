"""Pinned data against the workspace: ``sluice data status`` and the pin checks of a run.

The pins are sluice.lock's and those of DVC's ``.dvc`` / ``dvc.lock`` files (in
DVC's md5). Files whose size, mtime and inode match the stat index are not read
again (:mod:`sluice.util.statcache`); unknown ones are hashed on every core.

This module is on the path of a plain ``sluice data status``, which answers
without typer (:mod:`sluice.cli.fast_data`): it imports only the standard
library, xxhash and sluice's light modules; a plain sluice.lock is read without
yaml (:func:`sluice.config.lockfile.parse_lock`). :mod:`sluice.data.versioning`
re-exports these names.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol

from sluice.config.lockfile import (
    DVC_PREFIX,
    EXTERNAL,
    LOCK_FILE,
    XXH3,
    DataPin,
    collect_pins,
    in_dvc_repository,
    parse_lock,
)
from sluice.errors import DataInvalid, UsageError

if TYPE_CHECKING:
    from sluice.util.hashing import Hasher
    from sluice.util.statcache import StatCache

DataState = Literal["unchanged", "modified", "missing"]


class Workspace(Protocol):
    """What checking pins needs of a project (a Project, or a :class:`Checkout`)."""

    @property
    def root(self) -> Path: ...

    @property
    def stat_cache(self) -> StatCache: ...

    @property
    def hasher(self) -> Hasher: ...


class Checkout:
    """A checkout's root and stat index, without its config.

    `sluice data status` compares files with sluice.lock and DVC's pointer files;
    nothing in sluice.yaml changes the answer. So it does not validate the config,
    which in a fresh clone (no config cache yet) would cost more than the status.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    @cached_property
    def stat_cache(self) -> StatCache:
        from sluice.workspace.root import checkout_stat_cache

        return checkout_stat_cache(self.root)

    @cached_property
    def hasher(self) -> Hasher:
        from sluice.util.hashing import Hasher

        return Hasher(self.stat_cache)


class DataStatus(NamedTuple):
    """A pin's data in the workspace: unchanged, modified or missing (a NamedTuple: see
    :class:`sluice.errors.Location`)."""

    path: str
    state: DataState
    locked_hash: str
    current_hash: str | None
    source: str = LOCK_FILE  # the file that pins it


def read_pins(project: Workspace) -> dict[str, DataPin]:
    """The pins of sluice.lock (the ones sluice writes, restores and transfers)."""
    return lock_pins(project.root)


def lock_pins(root: Path) -> dict[str, DataPin]:
    try:
        text = (root / LOCK_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    return parse_lock(text)


def pointer_files(root: Path, *, anywhere: bool = False) -> list[str]:
    """DVC's pointer files (``*.dvc``, ``dvc.lock``) in the project, relative to ``root``.

    None outside a DVC repository (see :func:`in_dvc_repository`): a status there
    starts no git process. ``anywhere``: look all the same (`init --from-dvc` imports
    a project whose ``.dvc/`` folder is gone). Listed by git (tracked, or untracked and
    not ignored: one quick call) rather than by walking folders that may hold a great
    many data files; outside a git repository, by a walk that skips hidden folders and
    data pinned in sluice.lock.
    """
    if not anywhere and not in_dvc_repository(root):
        return []
    from sluice.util.git import git

    try:
        out = git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--",
                  ":(glob)**/*.dvc", ":(glob)**/dvc.lock")
        return sorted({os.fsdecode(p) for p in out.split(b"\0") if p})
    except UsageError:  # not a git repository, or no git
        pass
    skip = {root / p for p in lock_pins(root)}
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and Path(folder, d) not in skip]
        rel = Path(folder).relative_to(root)
        found += [(rel / f).as_posix() for f in files if f.endswith(".dvc") or f == "dvc.lock"]
    return sorted(found)


def workspace_pins(project: Workspace) -> dict[str, DataPin]:
    """Every pin of the workspace: sluice.lock's, then those of DVC's pointer files."""
    def read(path: str) -> bytes | None:
        try:
            return (project.root / path).read_bytes()
        except OSError:
            return None

    return collect_pins(pointer_files(project.root), read)


def current_hash(project: Workspace, pin: DataPin) -> str:
    """The workspace content's digest, in the pin's algorithm (FileNotFoundError if absent)."""
    full = project.root / pin.path
    if pin.algorithm == XXH3:
        return project.hasher.path(full)
    from sluice.util.dvc_md5 import path_md5

    return DVC_PREFIX + path_md5(full, project.stat_cache, pin.algorithm)


def pin_status(project: Workspace, pin: DataPin, current: str | None = None) -> DataStatus:
    """Whether the workspace holds the pinned content (unchanged files are not re-read).

    ``current``: the workspace's digest, when already known.
    """
    try:
        current = current or current_hash(project, pin)
    except (FileNotFoundError, NotADirectoryError):
        return DataStatus(pin.path, "missing", pin.hash, None, pin.source)
    except OSError as exc:  # unreadable (permissions, I/O): say which, never a traceback
        raise DataInvalid(f"cannot read pinned data `{pin.path}`: {exc.strerror}",
                          hint="check its permissions, or restore it with `sluice data "
                               f"checkout {pin.path}`") from None
    state: DataState = "unchanged" if current == pin.hash else "modified"
    return DataStatus(pin.path, state, pin.hash, current, pin.source)


def data_status(project: Workspace) -> list[DataStatus]:
    """Every checkable pin (sluice.lock and DVC's) against the workspace.

    sluice's own pins are hashed together: in a fresh clone the large files of
    one and the small files of another then share the cores.
    """
    pins = sorted((p for p in workspace_pins(project).values() if p.algorithm != EXTERNAL),
                  key=lambda p: p.path)
    own = [p for p in pins if p.algorithm == XXH3 and (project.root / p.path).exists()]
    try:
        try:
            # Hasher.paths' digests, from one quick walk (a warm status is mostly its stats).
            from sluice.util.treewalk import digests as walk_digests

            digests = dict(zip([p.path for p in own],
                               walk_digests(project.stat_cache,
                                            [project.root / p.path for p in own]),
                               strict=True))
        except OSError:  # one vanished or is unreadable: one at a time tells which
            digests = {}
        return [pin_status(project, pin, digests.get(pin.path)) for pin in pins]
    finally:
        project.stat_cache.flush()
