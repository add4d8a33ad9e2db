"""Comparing two evaluations of a model: metric deltas with paired intervals.

One function compares two sides of a model (:func:`compare_sides`), whoever picked
them: `sluice metrics diff` (a side is the model as of a git revision, or as the
working tree's last run left it) and the UI's version comparison. A side's
predictions are evidence like any other — located by hash (a registry version's
stored predictions, or the evaluate stage's record for its current fingerprint)
and verified when fetched. When both sides have predictions on the same test set,
each metric's delta comes with a paired bootstrap interval; otherwise the sides'
point values are compared and the reason is given. A side with no evidence at
all is reported with why, never filled in.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice.errors import SluiceError, UsageError
from sluice.evaluate.evidence import Evidence, Locator, materialize, predictions_output
from sluice.workspace.project import Project

if TYPE_CHECKING:
    from sluice.db import Database
    from sluice.registry.versions import Version
    from sluice.stats.predictions import Predictions

RESAMPLES = 2000  # as the gates use: stable 95 % ends, quick on 10^5 examples


@dataclass
class Side:
    """One side of a comparison: where its evidence came from, or why there is none."""

    label: str  # "main (3f2a9c1d0e): version 4", "the working tree"
    predictions: Evidence | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # point values, if no predictions
    verdict: str | None = None
    reason: str = ""  # why nothing is known about this side

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "verdict": self.verdict, "reason": self.reason or None,
                "predictions": None if self.predictions is None else self.predictions.to_json()}


@dataclass(frozen=True)
class MetricDelta:
    metric: str
    old: float | None
    new: float | None
    delta: float | None
    low: float | None = None  # the paired interval of the delta, when both sides have it
    high: float | None = None

    def to_json(self) -> dict[str, Any]:
        return vars(self).copy()


@dataclass
class ModelComparison:
    model: str
    old: Side
    new: Side
    rows: list[MetricDelta]
    method: str  # "paired bootstrap, 95 %", "point values"
    notes: list[str] = field(default_factory=list)
    # The predictions compared, (side label, predictions), for plots drawn from the
    # same bytes; not part of the JSON.
    series: list[tuple[str, Predictions]] = field(default_factory=list, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "old": self.old.to_json(), "new": self.new.to_json(),
                "method": self.method, "notes": self.notes,
                "metrics": [r.to_json() for r in self.rows]}


def version_side(project: Project, version: Version, label: str) -> Side:
    """A registry version: its stored predictions when it has them, else its metrics."""
    stored = version.lineage.get("predictions")
    side = Side(label, verdict=version.verdict,
                metrics={k: float(v) for k, v in version.metrics.items()
                         if isinstance(v, int | float)})
    if version.predictions_hash and isinstance(stored, dict):
        side.predictions = Evidence(str(stored.get("path", "")), version.predictions_hash,
                                    source=f"registry {version.model} version {version.version}")
    return side


def workspace_side(project: Project, model: str) -> Side:
    """The model as the working tree's code and data give it, if that evaluation is recorded.

    The evaluate stage's output is located by the fingerprint the stage has now
    (:class:`Locator`), so a stale or never-run evaluation is a reason, not a number.
    """
    from sluice.pipeline.base import RunResult
    from sluice.pipeline.fingerprint import RunContext

    spec = project.config.models[model]
    side = Side("the working tree")
    out = None if spec.evaluate is None else predictions_output(project, spec)
    if spec.evaluate is None or out is None:
        side.reason = f"model `{model}` has no evaluate stage writing predictions"
        return side
    locator = Locator(project, RunResult("metrics-diff", [], 0.0), RunContext())
    found = locator.output(project.config.stages[spec.evaluate].outs[out], "predictions")
    if found.found:
        side.predictions = found
    else:
        side.reason = found.reason
    return side


def read_side(project: Project, side: Side, scratch: Path,
              notes: list[str]) -> Predictions | None:
    """The side's predictions, fetched by hash; None (with a note) when it has none."""
    from sluice.evaluate.predictions import read_predictions

    if side.predictions is None:
        return None
    try:
        return read_predictions(materialize(project, side.predictions, scratch))
    except SluiceError as exc:
        notes.append(f"{side.label}: predictions unreadable ({exc.message})")
        side.reason = side.reason or exc.message
        return None


def _metric_names(project: Project, model: str, preds: list[Predictions]) -> list[str]:
    from sluice.stats.metrics import default_metrics

    spec = project.config.models.get(model)
    named = [g.metric for g in spec.gates] if spec is not None else []
    for p in preds:
        named += default_metrics(p)
    return list(dict.fromkeys(named))


def compare_sides(project: Project, model: str, old: Side, new: Side,
                  confidence: float = 0.95) -> ModelComparison:
    """Each metric of ``new`` against ``old`` (see the module docstring)."""
    from sluice.stats.bootstrap import paired_bootstrap
    from sluice.stats.metrics import evaluate

    notes: list[str] = []
    scratch_root = project.state_dir / "tmp"
    scratch_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch_root) as scratch:
        before = read_side(project, old, Path(scratch), notes)
        after = read_side(project, new, Path(scratch), notes)
        present = [p for p in (before, after) if p is not None]
        names = _metric_names(project, model, present) or sorted(set(old.metrics) |
                                                                  set(new.metrics))
        old_points = evaluate(before, names) if before is not None else old.metrics
        new_points = evaluate(after, names) if after is not None else new.metrics
        rows: list[MetricDelta] = []
        method = "point values"
        if before is not None and after is not None:
            method = f"paired bootstrap, {confidence:.0%}"
            for name in names:
                try:
                    iv = paired_bootstrap(name, after, before, RESAMPLES, confidence)
                except (SluiceError, ValueError) as exc:
                    message = exc.message if isinstance(exc, SluiceError) else str(exc)
                    notes.append(f"{name}: no paired interval ({message})")
                    method = "point values"
                    rows = []
                    break
                rows.append(MetricDelta(name, old_points.get(name), new_points.get(name),
                                        iv.point, iv.low, iv.high))
        if not rows:
            for name in names:
                a, b = old_points.get(name), new_points.get(name)
                rows.append(MetricDelta(name, a, b, None if a is None or b is None else b - a))
    series = [(side.label, preds) for side, preds in ((old, before), (new, after))
              if preds is not None]
    return ModelComparison(model, old, new, rows, method, notes, series)


def version_at(db: Database, repo_root: Path, model: str, rev: str) -> tuple[Version, str]:
    """The latest version of ``model`` registered from ``rev`` or an ancestor of it.

    Walks ``rev``'s first-parent history, so "the model on main" is the one main's
    last registering run produced. UsageError when no such version exists.
    """
    from sluice.registry.versions import versions
    from sluice.util.git import git

    by_commit: dict[str, Version] = {}
    for version in versions(db, model):
        commit = version.lineage.get("commit")
        if isinstance(commit, str) and (commit not in by_commit or
                                        by_commit[commit].version < version.version):
            by_commit[commit] = version
    if by_commit:
        history = git(repo_root, "rev-list", "--first-parent", rev, "--").decode().split()
        for commit in history:
            if commit in by_commit:
                return by_commit[commit], commit
    raise UsageError(f"no version of `{model}` was registered from `{rev}` or its history",
                     hint="run a tier with `register: true` on that branch, or compare with "
                          "another revision")


def _revision_side(project: Project, db: Database, model: str, rev: str) -> Side:
    try:
        version, commit = version_at(db, project.root, model, rev)
    except UsageError as exc:
        return Side(rev, reason=exc.message)
    return version_side(project, version, f"{rev} ({commit[:10]}): version {version.version}")


def metrics_diff(project: Project, old_rev: str | None = None,
                 new_rev: str | None = None) -> list[ModelComparison]:
    """Every model at ``old_rev`` (default: the base branch) against ``new_rev``
    (default: the working tree), in the order sluice.yaml lists them."""
    from sluice.db import open_project_database

    old_rev = old_rev or project.config.spec.ci.default_branch
    check_revisions(project, old_rev, new_rev)
    db = open_project_database(project)
    return [compare_sides(project, model, *model_sides(project, db, model, old_rev, new_rev))
            for model in project.config.models]


def model_sides(project: Project, db: Database, model: str, old_rev: str,
                new_rev: str | None) -> tuple[Side, Side]:
    """``model`` at ``old_rev`` and at ``new_rev`` (None: the working tree)."""
    old = _revision_side(project, db, model, old_rev)
    new = (workspace_side(project, model) if new_rev is None
           else _revision_side(project, db, model, new_rev))
    return old, new


def check_revisions(project: Project, *revs: str | None) -> None:
    """An unknown revision is a usage error, said before any work."""
    from sluice.util.git import Repo

    repo = Repo.open(project.root)
    try:
        for rev in revs:
            if rev is not None:
                repo.resolve(rev)
    finally:
        repo.close()
