"""The ledger: every stage execution with its time, CPU, GPU, memory and cost.

Written once per run in a single transaction (a run is recorded whole or not
at all), read for cost estimates and for spend against period budgets.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sluice.db import Database, describe
from sluice.errors import DatabaseError

_HISTORY = 10  # executions per stage an estimate looks at


@dataclass(frozen=True)
class Execution:
    run_id: str
    stage: str
    kind: str
    tier: str
    fingerprint: str | None
    started_at: float
    wall_s: float
    cpu_s: float
    cpu_alloc_s: float
    gpu_s: float
    gpu_type: str | None
    max_rss_bytes: int | None
    cost_usd: float
    outcome: str
    fraction: float
    seed: int
    git_commit: str | None
    actor: str | None


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    tier: str
    started_at: float
    wall_s: float
    outcome: str
    git_commit: str | None
    branch: str | None
    actor: str | None
    cost_usd: float
    details: dict[str, Any] = field(default_factory=dict)


def _fail(db: Database, what: str, exc: Exception) -> DatabaseError:
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return DatabaseError(f"cannot {what} in {describe(db.url)}: {reason}",
                         hint="nothing was written; retry when the database is reachable")


def record_run(db: Database, run: RunRecord, executions: list[Execution],
               gates: list[dict[str, Any]] | None = None) -> None:
    """Insert a run, its executions and its gate verdicts atomically."""
    from sqlalchemy.exc import SQLAlchemyError

    from sluice.db.schema import executions as executions_table
    from sluice.db.schema import runs

    row = asdict(run)
    row["details"] = json.dumps(run.details, sort_keys=True)
    try:
        with db.engine.begin() as conn:
            conn.execute(runs.insert(), [row])
            if executions:
                conn.execute(executions_table.insert(), [asdict(e) for e in executions])
            if gates:
                from sluice.db.schema import gate_results

                conn.execute(gate_results.insert(), gates)
    except SQLAlchemyError as exc:
        raise _fail(db, "record the run", exc) from None


UNITS = ("wall", "cpu_hours", "gpu_hours", "usd")  # the names of a budget spec's limits too


@dataclass(frozen=True)
class Amounts:
    """A quantity in every budget unit: wall seconds, CPU-hours, GPU-hours and money.

    The one type for estimates, spend and what is left; a budget spec in the
    config (``BudgetSpec``) limits the same four, under the same names.
    """

    wall: float = 0.0
    cpu_hours: float = 0.0
    gpu_hours: float = 0.0
    usd: float = 0.0

    def get(self, unit: str) -> float:
        return float(getattr(self, unit))

    def plus(self, other: Amounts) -> Amounts:
        return Amounts(*(self.get(u) + other.get(u) for u in UNITS))


@dataclass(frozen=True)
class Spend(Amounts):
    """What was spent in a window: the amounts, and how many runs spent them."""

    runs: int = 0
    future_rows: int = 0  # dated after now: the clock went backwards since they were written


def spend_since(db: Database, since: float, tiers: list[str] | None = None,
                now: float | None = None) -> Spend:
    """Totals of runs started at or after ``since`` (optionally for some tiers)."""
    from sqlalchemy import case, func, select
    from sqlalchemy.exc import SQLAlchemyError

    from sluice.db.schema import executions, runs

    now = time.time() if now is None else now
    run_query = select(func.coalesce(func.sum(runs.c.wall_s), 0.0),
                       func.coalesce(func.sum(runs.c.cost_usd), 0.0),
                       func.count(),
                       func.coalesce(func.sum(case((runs.c.started_at > now, 1), else_=0)), 0)
                       ).where(runs.c.started_at >= since)
    exec_query = select(func.coalesce(func.sum(executions.c.cpu_alloc_s), 0.0),
                        func.coalesce(func.sum(executions.c.gpu_s), 0.0)
                        ).where(executions.c.started_at >= since)
    if tiers:
        run_query = run_query.where(runs.c.tier.in_(tiers))
        exec_query = exec_query.where(executions.c.tier.in_(tiers))
    try:
        with db.engine.connect() as conn:
            wall, usd, count, future = conn.execute(run_query).one()
            cpu_s, gpu_s = conn.execute(exec_query).one()
    except SQLAlchemyError as exc:
        raise _fail(db, "read the ledger", exc) from None
    return Spend(float(wall), float(cpu_s) / 3600, float(gpu_s) / 3600, float(usd),
                 int(count), int(future))


@dataclass(frozen=True)
class Estimate:
    """Expected cost of running one stage, from its recent history."""

    stage: str
    samples: int
    wall_s: float | None = None
    cpu_alloc_s: float = 0.0
    gpu_s: float = 0.0
    usd: float = 0.0

    @property
    def known(self) -> bool:
        return self.wall_s is not None


def estimates(db: Database, stages: list[str], fraction: float) -> dict[str, Estimate]:
    """Median of each stage's last successful runs at ``fraction``; a stage never run at
    ``fraction`` gets its other runs' median scaled linearly to it.

    Scaling is the fallback only: many stages do not shrink with the tier's fraction
    (an evaluate stage reads the full test set), and one estimated at 57.6 s in a smoke
    tier took 4 s.
    """
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from sluice.db.schema import executions as t

    history: dict[str, list[Any]] = {s: [] for s in stages}
    same: dict[str, bool] = {}
    columns = (t.c.stage, t.c.wall_s, t.c.cpu_alloc_s, t.c.gpu_s, t.c.cost_usd, t.c.fraction)
    try:
        with db.engine.connect() as conn:
            # One or two small indexed queries per stage (ix_executions_stage): reading
            # every past execution of the plan's stages costs far more as the ledger grows.
            for stage in stages:
                recent = (select(*columns).where(t.c.stage == stage, t.c.outcome == "ran")
                          .order_by(t.c.started_at.desc()).limit(_HISTORY))
                at = recent.where(t.c.fraction.between(fraction - 1e-9, fraction + 1e-9))
                history[stage] = list(conn.execute(at))
                same[stage] = bool(history[stage])
                if not same[stage]:
                    history[stage] = list(conn.execute(recent))
    except SQLAlchemyError as exc:
        raise _fail(db, "read the ledger", exc) from None
    result = {}
    for stage, rows in history.items():
        if not rows:
            result[stage] = Estimate(stage, 0)
            continue

        def median(column: str, rows: list[Any] = rows, scaled: bool = not same[stage]) -> float:
            return float(statistics.median(
                getattr(r, column) / max(r.fraction, 1e-9) * fraction if scaled
                else getattr(r, column) for r in rows))

        result[stage] = Estimate(stage, len(rows), median("wall_s"), median("cpu_alloc_s"),
                                 median("gpu_s"), median("cost_usd"))
    return result


def spend_by_tier(db: Database, since: float) -> dict[str, Spend]:
    """Spend per tier of runs started at or after ``since``."""
    from sqlalchemy import func, select
    from sqlalchemy.exc import SQLAlchemyError

    from sluice.db.schema import executions, runs

    run_query = (select(runs.c.tier, func.sum(runs.c.wall_s), func.sum(runs.c.cost_usd),
                        func.count())
                 .where(runs.c.started_at >= since).group_by(runs.c.tier))
    exec_query = (select(executions.c.tier, func.sum(executions.c.cpu_alloc_s),
                         func.sum(executions.c.gpu_s))
                  .where(executions.c.started_at >= since).group_by(executions.c.tier))
    try:
        with db.engine.connect() as conn:
            by_runs = {r[0]: r for r in conn.execute(run_query)}
            by_execs = {r[0]: r for r in conn.execute(exec_query)}
    except SQLAlchemyError as exc:
        raise _fail(db, "read the ledger", exc) from None
    result = {}
    for tier in sorted(set(by_runs) | set(by_execs)):
        run_row, exec_row = by_runs.get(tier), by_execs.get(tier)
        result[tier] = Spend(
            float(run_row[1] or 0) if run_row else 0.0,
            float(exec_row[1] or 0) / 3600 if exec_row else 0.0,
            float(exec_row[2] or 0) / 3600 if exec_row else 0.0,
            float(run_row[2] or 0) if run_row else 0.0,
            int(run_row[3]) if run_row else 0)
    return result
