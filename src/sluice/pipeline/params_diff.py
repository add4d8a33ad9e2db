"""`sluice params diff`: the params two revisions give, leaf by leaf, and who reads them.

Both sides are read from git alone (:func:`sluice.pipeline.changes.load_snapshot`):
the params file ``sluice.yaml`` names at each revision, or the working tree's.
Values are compared leaf by leaf under dotted keys (``train.gbm.lr``); each row
also names the stages that read the key (by a `params:` entry covering it, or a
``${params.…}`` in their command), which is what decides what a change retrains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sluice.errors import ConfigError
from sluice.pipeline.changes import Snapshot, load_snapshot, stage_param_keys
from sluice.util.git import WORKTREE, Repo

ParamState = Literal["modified", "added", "removed", "unchanged"]


@dataclass(frozen=True)
class ParamRow:
    key: str
    state: ParamState
    old: Any  # None when added (JSON has no "absent"; `state` says which)
    new: Any  # None when removed
    stages: tuple[str, ...]  # the stages that read the key (at the newer side, else the older)

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "state": self.state, "old": self.old, "new": self.new,
                "stages": list(self.stages)}


@dataclass(frozen=True)
class ParamsDiff:
    old_label: str
    new_label: str
    params_file: str | None
    rows: list[ParamRow]

    @property
    def changed(self) -> list[ParamRow]:
        return [r for r in self.rows if r.state != "unchanged"]

    def to_json(self, show_all: bool = False) -> dict[str, Any]:
        return {"old": self.old_label, "new": self.new_label, "params_file": self.params_file,
                "params": [r.to_json() for r in (self.rows if show_all else self.changed)]}


def leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of a params value under its dotted key (lists are leaves)."""
    if isinstance(value, dict) and value:
        found: dict[str, Any] = {}
        for key, sub in value.items():
            found.update(leaves(sub, f"{prefix}{key}."))
        return found
    return {prefix.removesuffix("."): value} if prefix else {}


def _readers(snap: Snapshot) -> dict[str, list[str]]:
    """params key (as stages name it) → the stages that read it."""
    readers: dict[str, list[str]] = {}
    if snap.config is not None:
        for name, stage in snap.config.stages.items():
            for key in stage_param_keys(stage):
                readers.setdefault(key, []).append(name)
    return readers


def _stages_reading(leaf: str, readers: dict[str, list[str]]) -> tuple[str, ...]:
    """A stage reads ``train.lr`` when it names ``train.lr``, ``train`` or ``train.lr.x``."""
    return tuple(sorted({stage for key, stages in readers.items()
                         if leaf == key or leaf.startswith(key + ".")
                         or key.startswith(leaf + ".") for stage in stages}))


def _side(repo: Repo, rev: str | None) -> Snapshot:
    if rev is None:
        snap = load_snapshot(repo, WORKTREE, "the working tree")
    else:
        commit = repo.resolve(rev)
        snap = load_snapshot(repo, commit, f"{rev} ({commit[:10]})")
    if snap.config is None:
        raise ConfigError(f"cannot read the params at {snap.label}: {snap.problem}",
                          hint="pick a revision whose sluice.yaml loads (`git log sluice.yaml`)")
    return snap


def params_diff(repo: Repo, old_rev: str | None = "HEAD",
                new_rev: str | None = None) -> ParamsDiff:
    """The params at ``old_rev`` against ``new_rev`` (None: the working tree)."""
    try:
        old, new = _side(repo, old_rev), _side(repo, new_rev)
    finally:
        repo.close()
    assert old.config is not None and new.config is not None
    before, after = leaves(old.config.params), leaves(new.config.params)
    old_readers, new_readers = _readers(old), _readers(new)
    rows = []
    for key in sorted(set(before) | set(after)):
        state: ParamState
        if key not in before:
            state = "added"
        elif key not in after:
            state = "removed"
        else:
            state = "modified" if before[key] != after[key] else "unchanged"
        readers = _stages_reading(key, new_readers) if key in after else ()
        rows.append(ParamRow(key, state, before.get(key), after.get(key),
                             readers or _stages_reading(key, old_readers)))
    return ParamsDiff(old.label, new.label, new.config.params_file or old.config.params_file,
                      rows)
