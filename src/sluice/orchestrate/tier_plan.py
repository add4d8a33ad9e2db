"""Planning one tier run: what it is asked for, what it will do, what it should cost.

:func:`plan_tier` resolves the tier, fetches and checks the pinned data it reads,
draws its samples, plans its stages and, where budgets apply, estimates their cost;
:func:`enforce_budget` then refuses the run or names the expensive stages to skip.
A local run (:mod:`sluice.orchestrate.tier`) and a platform's ``sluice tier start``
(:mod:`sluice.orchestrate.tier_run`) both start here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sluice.data.samples import prepare_samples
from sluice.errors import BudgetRefused
from sluice.pipeline.base import Event
from sluice.pipeline.fingerprint import SEEDED_KINDS, RunContext
from sluice.pipeline.plan import Decision, StagePlan, make_plan, select_stages
from sluice.pipeline.tiers import TierRun, resolve_tier
from sluice.workspace.project import Project

if TYPE_CHECKING:
    # (costs, prices and identities matter only when something runs or a budget
    # applies: imported there, not on a no-op run)
    from sluice.data.pins import PinProblem
    from sluice.pipeline.budget import BudgetCheck, Limit
    from sluice.pipeline.costs import Rates
    from sluice.pipeline.ledger import Estimate

EXPENSIVE_KINDS = ("train", "evaluate")


@dataclass
class TierRequest:
    """What a `sluice run` (or a tier run) asks for."""

    tier: str | None = None
    targets: list[str] | None = None
    base: str | None = None
    head: str | None = None
    jobs: int = 0
    force: bool = False
    keep_going: bool = True
    allow_over_budget: bool = False
    actor: str | None = None
    warnings: list[str] = field(default_factory=list)  # shown in the report (e.g. no base)
    check_data: bool = True  # refuse data that differs from its pin (plans only report it)


@dataclass
class TierPlan:
    """What a tier run will do and what it should cost."""

    tier: TierRun
    stages: list[StagePlan]
    budget: BudgetCheck | None = None
    limits: list[Limit] = field(default_factory=list)
    rates: Rates | None = None
    timeouts: dict[str, float] = field(default_factory=dict)  # bounds of unknown estimates
    warnings: list[str] = field(default_factory=list)
    data: list[PinProblem] = field(default_factory=list)  # pinned data not as pinned
    decisions: dict[str, Decision] = field(default_factory=dict)  # behind `stages`, for the run
    planned_at_ns: int = 0  # when `decisions` began to be made (their records read)

    @property
    def to_run(self) -> list[str]:
        return [p.stage for p in self.stages if p.action == "run"]

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "tier": self.tier.name, "fraction": self.tier.fraction, "seeds": self.tier.seeds,
            "notes": self.tier.notes, "stages": [p.to_json() for p in self.stages],
            "data": [d.to_json() for d in self.data]}
        if self.tier.impact is not None:
            value["impact"] = self.tier.impact.to_json()
        if self.budget is not None:
            value["budget"] = {
                "ok": self.budget.ok, "over": self.budget.over, "unknown": self.budget.unknown,
                "total": vars(self.budget.total),
                "estimates": {s: vars(e) for s, e in self.budget.estimates.items()},
                "limits": [{"name": lim.name, "limits": lim.limits.model_dump(),
                            "spent": vars(lim.spent)} for lim in self.limits]}
        return value


def run_context(tier: TierRun, seed: int) -> RunContext:
    """What a stage of this tier runs under for one seed (part of every fingerprint)."""
    return RunContext(tier=tier.name, fraction=tier.fraction, seed=seed, samples=tier.samples)


def needs_budget(project: Project, tier: TierRun) -> bool:
    """Whether costs must be estimated before the tier runs (a tier or project budget)."""
    return tier.budget is not None or bool(project.config.spec.budgets)


def plan_tier(project: Project, request: TierRequest,
              on_event: Callable[[Event], None] = lambda e: None) -> TierPlan:
    """Resolve the tier, plan its stages and (where budgets apply) estimate their cost.

    For a run (``check_data``), pinned data the selected stages read and this
    checkout lacks is first fetched from the shared store (sluice.data.fetch).
    """
    tier = resolve_tier(project, request.tier, request.base, request.head)
    targets = tier.targets
    if request.targets:
        targets = [t for t in request.targets if targets is None or t in targets]
    selected = select_stages(project, targets)
    from sluice.config.lockfile import LOCK_FILE
    from sluice.data.pins import check_pins, readable

    # An empty runner gets its data; a plan only reports it. Only sluice.lock's pins
    # are fetched (sluice.data.fetch): without the file, not even that module is needed.
    if request.check_data and (project.root / LOCK_FILE).exists():
        from sluice.data.fetch import fetch_missing

        fetch_missing(project, selected, lambda p: on_event(Event("note", "", p.message)))
    data = check_pins(project, selected, refuse=request.check_data)  # before a sample is drawn
    tier.samples = prepare_samples(project, tier.fraction, readable(selected, data))
    decisions: dict[str, Decision] = {}
    planned_at_ns = time.time_ns()
    stages = make_plan(project, targets, run_context(tier, tier.seeds[0]), force=request.force,
                       decisions=decisions)
    result = TierPlan(tier, stages, warnings=list(request.warnings), data=data,
                      decisions=decisions, planned_at_ns=planned_at_ns)
    if not result.to_run or not needs_budget(project, tier):
        return result
    from sluice.db import open_project_database
    from sluice.pipeline.budget import Limit, check, period_limits
    from sluice.pipeline.costs import rates
    from sluice.pipeline.ledger import estimates, spend_since

    db = open_project_database(project)
    needs_gpu = any(project.config.stages[s].spec.resources.gpus for s in result.to_run)
    result.rates = rates(project.config.spec.prices, needs_gpu=needs_gpu)
    limits = []
    if tier.budget is not None:
        limits.append(Limit(f"tier `{tier.name}` budget", tier.budget))
    limits += period_limits(project.config.spec.budgets, tier.name,
                            lambda since, tiers: spend_since(db, since, tiers))
    found = estimates(db, result.to_run, tier.fraction)
    runs_per_seed = {s: len(tier.seeds) if project.config.stages[s].kind in SEEDED_KINDS
                     else 1 for s in result.to_run}
    found = {s: replace(e, wall_s=None if e.wall_s is None else e.wall_s * runs_per_seed[s],
                        cpu_alloc_s=e.cpu_alloc_s * runs_per_seed[s],
                        gpu_s=e.gpu_s * runs_per_seed[s], usd=e.usd * runs_per_seed[s])
             for s, e in found.items()}
    found = {s: _priced_where_it_runs(project, tier.name, e) for s, e in found.items()}
    result.budget = check(limits, found)
    result.limits = limits
    result.timeouts = {s: t for s in result.to_run
                       if (t := project.config.stages[s].spec.timeout) is not None}
    return result


def _priced_where_it_runs(project: Project, tier: str, estimate: Estimate) -> Estimate:
    """An estimate's cost at the prices of the executor that will run its stage, when
    that executor has its own (history may have been priced elsewhere)."""
    executor = project.config.executor_name(estimate.stage, tier)
    spec = project.config.executor_spec(executor)
    if spec is None or spec.prices is None or not estimate.samples:
        return estimate
    from sluice.pipeline.costs import executor_rates

    rate = executor_rates(project.config, executor, needs_gpu=estimate.gpu_s > 0)
    return replace(estimate, usd=rate.cost(estimate.cpu_alloc_s, estimate.gpu_s))


def refusal_message(plan: TierPlan) -> str:
    assert plan.budget is not None
    lines = [f"run of tier `{plan.tier.name}` refused: its estimated cost exceeds the budget"]
    lines += [f"  {over}" for over in plan.budget.over]
    costly = sorted(((e.wall_s or 0.0, s) for s, e in plan.budget.estimates.items()),
                    reverse=True)[:3]
    if costly:
        lines.append("  largest estimates: " + ", ".join(f"{s} {w:.0f} s" for w, s in costly))
    return "\n".join(lines)


def enforce_budget(plan: TierPlan, allow_over_budget: bool, project: Project) -> frozenset[str]:
    """Stages to skip for the budget; raises BudgetRefused when the tier says `fail`."""
    if plan.budget is None or plan.budget.ok or allow_over_budget:
        return frozenset()
    if plan.tier.spec.on_budget == "skip-expensive":
        return frozenset(s for s in plan.to_run
                         if project.config.stages[s].kind in EXPENSIVE_KINDS)
    raise BudgetRefused(refusal_message(plan),
                        hint="to proceed: pass --allow-over-budget, run fewer stages or "
                             "models (`sluice run --tier T STAGE`), lower the tier's "
                             "`fraction`, or raise the budget in sluice.yaml")
