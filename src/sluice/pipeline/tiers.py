"""Tiers: resolve ``--tier NAME`` into what to run, on how much data, with which seeds.

A tier's selection is ``affected`` (the stages a change touches, from
:mod:`sluice.pipeline.changes`; without a base revision every stage is considered and the
cache skips unchanged ones), ``all``, or a list of stages and models. Its
``params`` override values of the params file for this run only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sluice.config.cache import view
from sluice.errors import UsageError
from sluice.util.suggest import did_you_mean
from sluice.workspace.project import Project

if TYPE_CHECKING:
    from sluice.config.schema import BudgetSpec, TierSpec
    from sluice.pipeline.changes import Impact  # imported only with a base revision

DEFAULT_TIER = "default"
# The tier of a plain `sluice run`: everything, full data, one seed, no budget. A
# View, so a no-op run never imports pydantic (see sluice.config.cache).
DEFAULT_TIER_SPEC: TierSpec = view({
    "description": None, "trigger": view({"pull_request": None, "push": None,
                                          "schedule": None, "manual": True}),
    "select": "all", "fraction": 1.0, "seeds": 1, "params": {}, "budget": None,
    "on_budget": "fail", "register": False, "promote": None})


@dataclass
class TierRun:
    """A tier, resolved against the project and (for `affected`) a base revision."""

    name: str
    spec: TierSpec
    targets: list[str] | None  # None: every stage
    seeds: list[int]
    notes: list[str] = field(default_factory=list)
    impact: Impact | None = None
    samples: tuple[tuple[str, str], ...] = ()  # datasets replaced by smoke samples

    @property
    def fraction(self) -> float:
        return self.spec.fraction

    @property
    def budget(self) -> BudgetSpec | None:
        return self.spec.budget


def _set_param(params: dict[str, Any], key: str, value: Any) -> None:
    node = params
    parts = key.split(".")
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value


def apply_overrides(project: Project, overrides: dict[str, Any]) -> None:
    """Replace params values for this run (keys were checked when the config loaded)."""
    if overrides:
        params = copy.deepcopy(project.config.params)
        for key, value in overrides.items():
            _set_param(params, key, value)
        project.config.params = params


def resolve_tier(project: Project, name: str | None, base: str | None = None,
                 head: str | None = None) -> TierRun:
    tiers = project.config.spec.tiers
    if name is None:
        spec = DEFAULT_TIER_SPEC
        return TierRun(DEFAULT_TIER, spec, None, [0])
    if name not in tiers:
        known = ", ".join(tiers) or "(none: add a `tiers:` section, see `sluice init`)"
        raise UsageError(f"unknown tier `{name}`" + did_you_mean(name, list(tiers)),
                         hint=f"tiers in sluice.yaml: {known}")
    spec = tiers[name]
    apply_overrides(project, spec.params)
    run = TierRun(name, spec, None, list(range(spec.seeds)))
    if isinstance(spec.select, list):
        run.targets = list(spec.select)
    elif spec.select == "affected":
        if base is None:
            run.notes.append("no --base given: every stage is considered, and the cache "
                             "skips the unchanged ones")
        else:
            from sluice.pipeline.changes import compute_impact
            from sluice.util.git import Repo

            run.impact = compute_impact(Repo.open(project.root), base, head)
            run.targets = run.impact.affected_stages
            run.notes.append(f"{len(run.targets)} of {len(run.impact.stages)} stages affected "
                             f"since {run.impact.base}")
    return run
