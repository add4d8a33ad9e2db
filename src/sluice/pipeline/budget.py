"""Budgets: refuse a run whose estimate exceeds what is left, and cap stages while running.

Units are wall time, CPU-hours (allocated CPUs × wall), GPU-hours (allocated
GPUs × wall) and money. A tier's ``budget`` limits one run of that tier; the
top-level ``budgets`` limit rolling windows (optionally per tier), summed from
the ledger. Before a run, estimates are compared with what is left; while it
runs, each stage's time limit is the smaller of its timeout and the time that
what is left would buy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sluice.config.checks import WINDOWS
from sluice.pipeline.costs import Rates
from sluice.pipeline.ledger import UNITS, Amounts, Estimate, Spend

if TYPE_CHECKING:
    from sluice.config.schema import BudgetSpec, PeriodBudgetSpec

def fmt(unit: str, value: float) -> str:
    if unit == "wall":
        minutes, seconds = divmod(round(value), 60)
        return f"{minutes} min {seconds:02d} s" if minutes else f"{value:.1f} s"
    if unit == "usd":
        return f"${value:,.2f}"
    return f"{value:.2f} {unit.replace('_', '-')}"


def from_estimate(estimate: Estimate) -> Amounts:
    return Amounts(estimate.wall_s or 0.0, estimate.cpu_alloc_s / 3600,
                   estimate.gpu_s / 3600, estimate.usd)


@dataclass(frozen=True)
class Limit:
    """One budget in force for a run: its name, limits, and what is already spent."""

    name: str  # "tier `pr`" or "weekly budget"
    limits: BudgetSpec
    spent: Amounts = field(default_factory=Amounts)

    def left(self, unit: str) -> float | None:
        cap = getattr(self.limits, unit)
        return None if cap is None else cap - self.spent.get(unit)


def window_of(name: str, budget: PeriodBudgetSpec) -> float:
    return budget.window or WINDOWS[name]


def period_limits(budgets: dict[str, PeriodBudgetSpec], tier: str,
                  spend_for: Callable[[float, list[str] | None], Spend],
                  now: float | None = None) -> list[Limit]:
    """The period budgets that apply to ``tier``, with their spend so far."""
    now = time.time() if now is None else now
    found = []
    for name, budget in budgets.items():
        if budget.tiers and tier not in budget.tiers:
            continue
        spend = spend_for(now - window_of(name, budget), budget.tiers)
        found.append(Limit(f"{name} budget", budget, spend))
    return found


@dataclass
class BudgetCheck:
    """The outcome of comparing a plan's estimates with the budgets in force."""

    estimates: dict[str, Estimate]
    total: Amounts
    unknown: list[str]
    over: list[str] = field(default_factory=list)  # one sentence per exceeded budget

    @property
    def ok(self) -> bool:
        return not self.over


def check(limits: list[Limit], estimates: dict[str, Estimate]) -> BudgetCheck:
    total = Amounts()
    for estimate in estimates.values():
        total = total.plus(from_estimate(estimate))
    unknown = [s for s, e in estimates.items() if not e.known]
    result = BudgetCheck(estimates, total, unknown)
    for limit in limits:
        for unit in UNITS:
            left = limit.left(unit)
            if left is not None and total.get(unit) > left:
                cap = getattr(limit.limits, unit)
                result.over.append(
                    f"{limit.name}: {unit.replace('_', '-')} estimate {fmt(unit, total.get(unit))}"
                    f" exceeds what is left, {fmt(unit, max(left, 0.0))} of "
                    f"{fmt(unit, cap)}, by {fmt(unit, total.get(unit) - max(left, 0.0))}")
    return result


class Tracker:
    """What a running tier run may still spend; gives each stage its time limit."""

    def __init__(self, limits: list[Limit], rates: Rates) -> None:
        self.limits = limits
        self.rates = rates
        self.started = time.monotonic()
        self.spent = Amounts()

    def _left(self, unit: str) -> tuple[float, str] | None:
        """The tightest amount left in ``unit`` and the budget it comes from."""
        best: tuple[float, str] | None = None
        for limit in self.limits:
            left = limit.left(unit)
            if left is None:
                continue
            if unit == "wall":
                left -= time.monotonic() - self.started  # the run's own clock runs on
            else:
                left -= self.spent.get(unit)
            if best is None or left < best[0]:
                best = (left, limit.name)
        return best

    def exhausted(self) -> str | None:
        """Why no further stage may start, or None."""
        for unit in UNITS:
            left = self._left(unit)
            if left is not None and left[0] <= 0:
                return f"{left[1]} ({unit.replace('_', '-')}) is spent"
        return None

    def time_limit(self, cpus: int, gpus: int,
                   rates: Rates | None = None) -> tuple[float, str] | None:
        """Seconds this stage may run before a budget runs out, and which budget
        (``rates``: its executor's, when they are not the run's)."""
        rates = rates or self.rates
        per_second = {"wall": 1.0, "cpu_hours": cpus / 3600, "gpu_hours": gpus / 3600,
                      "usd": cpus * rates.cpu_per_s + gpus * rates.gpu_per_s}
        best: tuple[float, str] | None = None
        for unit, rate in per_second.items():
            left = self._left(unit)
            if left is None or rate <= 0:
                continue
            seconds = max(left[0], 0.0) / rate
            if best is None or seconds < best[0]:
                best = (seconds, f"{left[1]} ({unit.replace('_', '-')})")
        return best

    def charge(self, wall_s: float, cpus: int, gpus: int, rates: Rates | None = None) -> None:
        cost = (rates or self.rates).cost(cpus * wall_s, gpus * wall_s)
        self.spent = self.spent.plus(Amounts(0.0, cpus * wall_s / 3600, gpus * wall_s / 3600,
                                             cost))


# UNITS and Amounts live in the ledger (what is spent is measured there); budgets re-export them.
__all__ = ["UNITS", "Amounts", "BudgetCheck", "Limit", "Tracker", "check", "fmt", "from_estimate",
           "period_limits", "window_of"]
