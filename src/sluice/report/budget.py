"""``sluice budget``: spend per tier and per period, against every budget."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sluice.config.checks import WINDOWS
from sluice.pipeline.budget import UNITS, window_of
from sluice.pipeline.ledger import Spend, spend_by_tier, spend_since
from sluice.workspace.project import Project

if TYPE_CHECKING:
    from sluice.db import Database


@dataclass(frozen=True)
class PeriodRow:
    name: str
    window_s: float
    tiers: list[str] | None
    limits: dict[str, float | None]
    spent: Spend

    def fraction_used(self, unit: str) -> float | None:
        cap = self.limits.get(unit)
        if not cap:
            return None
        return self.spent.get(unit) / cap


@dataclass(frozen=True)
class BudgetReport:
    periods: list[PeriodRow]
    tiers: dict[str, dict[str, Spend]]  # tier -> window name -> spend
    tier_limits: dict[str, dict[str, float | None]]
    future_rows: int

    def to_json(self) -> dict[str, Any]:
        return {
            "periods": [{"name": p.name, "window_s": p.window_s, "tiers": p.tiers,
                         "limits": p.limits, "spent": asdict(p.spent),
                         "used": {u: p.fraction_used(u) for u in UNITS
                                  if p.limits.get(u) is not None}} for p in self.periods],
            "tiers": {t: {w: asdict(s) for w, s in windows.items()}
                      for t, windows in self.tiers.items()},
            "tier_budgets": self.tier_limits,
            "future_rows": self.future_rows,
        }


def period_rows(project: Project, db: Database, now: float) -> list[PeriodRow]:
    """Each period budget of sluice.yaml with what its window spent (`sluice ui`'s overview)."""
    periods = []
    for name, budget in project.config.spec.budgets.items():
        window = window_of(name, budget)
        spent = spend_since(db, now - window, budget.tiers, now=now)
        limits = budget.model_dump(include=set(UNITS))
        periods.append(PeriodRow(name, window, budget.tiers, limits, spent))
    return periods


def budget_report(project: Project, now: float | None = None,
                  db: Database | None = None) -> BudgetReport:
    from sluice.db import open_project_database

    now = time.time() if now is None else now
    db = open_project_database(project) if db is None else db
    periods = period_rows(project, db, now)
    future = max([p.spent.future_rows for p in periods]
                 + [spend_since(db, 0.0, None, now=now).future_rows])
    tiers: dict[str, dict[str, Spend]] = {}
    for window_name, seconds in WINDOWS.items():
        for tier, spent in spend_by_tier(db, now - seconds).items():
            tiers.setdefault(tier, {})[window_name] = spent
    for tier in project.config.spec.tiers:
        tiers.setdefault(tier, {})
    tier_limits = {name: (spec.budget.model_dump() if spec.budget else {})
                   for name, spec in project.config.spec.tiers.items()}
    return BudgetReport(periods, tiers, tier_limits, future)
