"""Pinned data against its pins, for the stages a run or a plan selects.

After ``git checkout main`` without ``sluice data checkout``, data pinned in
``sluice.lock`` (or by a DVC pointer file) still holds the other branch's bytes;
a run would train on them and register the model under this commit. So before
``sluice run`` starts anything, the pinned data the selected stages read — as a
dependency, a dataset input, or a folder around either — is compared with its
pin: modified or missing data refuses the run (exit 2) with the command that
fixes it; ``plan`` and ``status`` only report it. Files whose size, time and
inode are unchanged are not re-read (the stat cache), so a no-op run stays fast.

The same reading of "what a stage reads" gives a registered version the raw
data it was trained on (:func:`data_lineage`).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from sluice.config.base import is_glob
from sluice.config.lockfile import EXTERNAL, LOCK_FILE, DataPin
from sluice.data.status import pin_status, read_pins, workspace_pins
from sluice.errors import PinnedDataMismatch
from sluice.workspace.graph import OutputIndex, glob_touches
from sluice.workspace.project import Project


@dataclass(frozen=True)
class PinProblem:
    """One pin whose data the workspace lacks or holds in another version."""

    path: str
    source: str  # the file that pins it: sluice.lock, x.dvc, dvc.lock
    state: str  # "modified" or "missing"
    pinned: str
    current: str | None
    stages: tuple[str, ...]  # the selected stages that read it

    def summary(self) -> str:
        readers = ", ".join(f"`{s}`" for s in self.stages[:3])
        if len(self.stages) > 3:
            readers += f" and {len(self.stages) - 3} more"
        if self.state == "missing":
            return f"`{self.path}` (pinned in {self.source}) is missing; read by {readers}"
        return (f"`{self.path}` differs from its pin in {self.source} (pinned "
                f"{_short(self.pinned)}, workspace {_short(self.current)}); read by {readers}")

    def fix(self) -> str:
        if self.source == LOCK_FILE:
            if self.state == "missing":
                return f"`sluice data pull {self.path}` (`sluice run` fetches it by itself)"
            return (f"`sluice data checkout {self.path}` (or, to use these bytes, "
                    f"`sluice data add {self.path}` and commit {LOCK_FILE})")
        if self.state == "missing":
            return f"`dvc pull {self.source}`"
        return f"`dvc checkout {self.source}` (or, to use these bytes, `dvc add {self.path}`)"

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "source": self.source, "state": self.state,
                "pinned": self.pinned, "current": self.current, "stages": list(self.stages),
                "fix": self.fix().replace("`", "")}


def _short(digest: str | None) -> str:
    if digest is None:
        return "-"
    _, _, value = digest.rpartition(":")
    return value[:12] + "…"


def _overlaps(read: str, pinned: str) -> bool:
    """Whether reading ``read`` (a path, folder or glob) reads some of ``pinned``."""
    if is_glob(read):
        return glob_touches(read, pinned)
    return read == pinned or read.startswith(pinned + "/") or pinned.startswith(read + "/")


def paths_read(project: Project, stages: list[str]) -> dict[str, list[str]]:
    """path → the stages among ``stages`` that read it: deps and dataset inputs.

    A dataset input counts by the dataset's own path, not the smoke-run sample
    a tier may substitute: the sample is drawn from it.
    """
    found: dict[str, list[str]] = {}
    for name in stages:
        stage = project.config.stages[name]
        paths = [*stage.deps, *(i.path for i in stage.inputs if i.stage is None)]
        for path in dict.fromkeys(posixpath.normpath(p) for p in paths):
            found.setdefault(path, []).append(name)
    return found


def pins_read(project: Project, stages: list[str], *, lock_only: bool = False
              ) -> tuple[dict[str, DataPin], dict[str, list[str]]]:
    """The checkable pins the stages read, and pin path → the stages reading it.

    ``lock_only``: sluice.lock's pins alone (no search for DVC's pointer files).
    """
    readers: dict[str, list[str]] = {}
    read = paths_read(project, stages)
    if not read:
        return {}, readers  # nothing selected: no need to look for pins
    found = read_pins(project) if lock_only else workspace_pins(project)
    # dvc.lock pins what DVC's stages wrote; where a sluice stage now writes the path
    # (a pipeline converted by `init --from-dvc`), sluice's run cache owns it.
    produced = OutputIndex(project.config) if any(
        p.source.endswith("dvc.lock") for p in found.values()) else None
    pins = {p.path: p for p in found.values() if p.algorithm != EXTERNAL and not (
        produced is not None and p.source.endswith("dvc.lock") and produced.matching(p.path))}
    for path, names in read.items():
        for pin in pins.values():
            if _overlaps(path, pin.path):
                readers.setdefault(pin.path, [])
                readers[pin.path] += [n for n in names if n not in readers[pin.path]]
    return pins, readers


def check_pins(project: Project, stages: list[str], *, refuse: bool = False
               ) -> list[PinProblem]:
    """Pins read by ``stages`` whose data is missing or modified; raise when ``refuse``."""
    pins, readers = pins_read(project, stages)
    problems = []
    try:
        for path in sorted(readers):
            status = pin_status(project, pins[path])
            if status.state != "unchanged":
                problems.append(PinProblem(path, status.source, status.state,
                                           status.locked_hash, status.current_hash,
                                           tuple(readers[path])))
    finally:
        project.stat_cache.flush()
    if refuse and problems:
        raise PinnedDataMismatch(
            "pinned data does not match its pins; nothing was run:\n"
            + "\n".join(f"  {p.summary()}" for p in problems),
            hint="; ".join(p.fix() for p in problems)
                 + " — `sluice data status` lists every pin")
    return problems


def readable(stages: list[str], problems: list[PinProblem]) -> list[str]:
    """``stages`` less those that read missing pinned data (nothing to sample from)."""
    blocked = {s for p in problems if p.state == "missing" for s in p.stages}
    return [s for s in stages if s not in blocked]


def data_lineage(project: Project, stages: list[str]) -> dict[str, dict[str, Any]]:
    """The raw data ``stages`` and everything upstream of them read, for a registry lineage.

    path → ``hash`` (sluice's content hash now; the run checked it against its pin
    before it started), ``dataset`` (its name in sluice.yaml), and for pinned data
    ``pin`` and ``pinned_by`` (the pinned digest and the file that pins it).
    """
    chain = project.graph.with_upstream(stages)
    datasets = {posixpath.normpath(d.path.strip()): name
                for name, d in project.config.datasets.items()}
    pins, readers = pins_read(project, chain)
    found: dict[str, dict[str, Any]] = {}
    for path in paths_read(project, chain):
        if path in datasets:
            found.setdefault(path, {})["dataset"] = datasets[path]
    for path in readers:
        found.setdefault(path, {}).update(pin=pins[path].hash, pinned_by=pins[path].source)
    for path, entry in found.items():
        try:
            entry["hash"] = project.hasher.path(project.root / path)
        except OSError:
            entry["hash"] = None
    project.stat_cache.flush()
    return dict(sorted(found.items()))
