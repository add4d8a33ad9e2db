"""What the UI's pages and API show, read from the database (and the run reports).

The routes in sluice.ui.app stay thin: each calls one function here, or one of
the registry's own (sluice.registry.versions / promotion). Lists that grow
(runs, versions, history) come back a page at a time.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from typing import Any

from sluice.db import Database
from sluice.errors import UsageError
from sluice.registry.versions import list_models
from sluice.workspace.project import Project

MAX_PAGE = 500
_DAY = 86400.0


class NotFound(UsageError):
    """An unknown run, model, version or request: a 404 with a link back."""

    def __init__(self, message: str, back: str) -> None:
        super().__init__(message, hint=f"see {back}")
        self.back = back


@dataclass(frozen=True)
class Page:
    items: list[Any]
    total: int
    limit: int
    offset: int

    def to_json(self) -> dict[str, Any]:
        following = self.offset + self.limit
        return {"items": self.items, "total": self.total, "limit": self.limit,
                "offset": self.offset,
                "next_offset": following if following < self.total else None}


def paged(items: list[Any], limit: int, offset: int) -> Page:
    """A page of an in-memory list (versions and history are per model: small)."""
    return Page(items[offset:offset + limit], len(items), limit, offset)


def _run_row(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    data["details"] = json.loads(data["details"]) if data.get("details") else {}
    return data


def runs_page(db: Database, limit: int = 50, offset: int = 0,
              tier: str | None = None) -> Page:
    """Runs, newest first."""
    from sqlalchemy import func, select

    from sluice.db.schema import runs

    query = select(runs)
    count = select(func.count()).select_from(runs)
    if tier is not None:
        query, count = query.where(runs.c.tier == tier), count.where(runs.c.tier == tier)
    with db.engine.connect() as conn:
        rows = conn.execute(query.order_by(runs.c.started_at.desc())
                            .limit(limit).offset(offset)).all()
        total = int(conn.execute(count).scalar() or 0)
    return Page([_run_row(r) for r in rows], total, limit, offset)


def latest_per_tier(db: Database) -> list[dict[str, Any]]:
    """The latest run of every tier (one indexed query per tier)."""
    from sqlalchemy import select

    from sluice.db.schema import runs

    with db.engine.connect() as conn:
        tiers = sorted(r[0] for r in conn.execute(select(runs.c.tier).distinct()))
        latest = [conn.execute(select(runs).where(runs.c.tier == t)
                               .order_by(runs.c.started_at.desc()).limit(1)).first()
                  for t in tiers]
    return [_run_row(r) for r in latest if r is not None]


def run_detail(db: Database, run_id: str) -> dict[str, Any]:
    """A run with the ledger's rows of its stage executions."""
    from sqlalchemy import select

    from sluice.db.schema import executions, runs

    with db.engine.connect() as conn:
        row = conn.execute(select(runs).where(runs.c.run_id == run_id)).first()
        if row is None:
            raise NotFound(f"no run `{run_id[:80]}` in the database", back="/")
        stages = conn.execute(select(executions).where(executions.c.run_id == run_id)
                              .order_by(executions.c.started_at, executions.c.id)).all()
    run = _run_row(row)
    run["executions"] = [dict(s._mapping) for s in stages]
    return run


def model_summary(db: Database, name: str) -> dict[str, Any]:
    """One entry of `sluice models list`, or NotFound."""
    for entry in list_models(db):
        if entry["model"] == name:
            return entry
    raise NotFound(f"no model `{name[:80]}` in the registry", back="/models")


def request_exists(db: Database, request_id: int) -> None:
    from sqlalchemy import select

    from sluice.db.schema import promotion_requests as r

    with db.engine.connect() as conn:
        if conn.execute(select(r.c.id).where(r.c.id == request_id)).first() is None:
            raise NotFound(f"no promotion request {request_id}", back="/")


def daily_spend(db: Database, days: int = 30, now: float | None = None
                ) -> dict[str, list[float]]:
    """Cost (USD) per tier per day, oldest day first: ``{tier: [day0, …, day{days-1}]}``."""
    from sqlalchemy import select

    from sluice.db.schema import runs

    now = time.time() if now is None else now
    start = now - days * _DAY
    series: dict[str, list[float]] = {}
    with db.engine.connect() as conn:
        rows = conn.execute(select(runs.c.tier, runs.c.started_at, runs.c.cost_usd,
                                   runs.c.wall_s).where(runs.c.started_at >= start)).all()
    for tier, started, cost, wall in rows:
        day = min(days - 1, int((started - start) // _DAY))
        # A project without prices spends no money: chart wall-hours then.
        series.setdefault(tier, [0.0] * days)[day] += float(cost or 0) or float(wall) / 3600
    return series


def spend_by_kind(db: Database, since: float) -> list[dict[str, Any]]:
    """Ledger totals per tier and stage kind since ``since``."""
    from sqlalchemy import func, select

    from sluice.db.schema import executions as e

    query = (select(e.c.tier, e.c.kind, func.count(), func.sum(e.c.wall_s),
                    func.sum(e.c.cpu_alloc_s), func.sum(e.c.gpu_s), func.sum(e.c.cost_usd))
             .where(e.c.started_at >= since).group_by(e.c.tier, e.c.kind)
             .order_by(e.c.tier, e.c.kind))
    with db.engine.connect() as conn:
        return [{"tier": t, "kind": k, "executions": int(n), "wall_s": float(w or 0),
                 "cpu_hours": float(c or 0) / 3600, "gpu_hours": float(g or 0) / 3600,
                 "usd": float(u or 0)} for t, k, n, w, c, g, u in conn.execute(query)]


def estimate_misses(db: Database, limit: int = 10, window: int = 2000) -> list[dict[str, Any]]:
    """Stages whose latest run was furthest from what their history predicted.

    The prediction is the median of the stage's earlier runs (as sluice's own
    estimate, sluice.pipeline.ledger.estimates), scaled to the fraction it ran at.
    """
    from sqlalchemy import select

    from sluice.db.schema import executions as e

    with db.engine.connect() as conn:
        rows = conn.execute(select(e.c.stage, e.c.wall_s, e.c.fraction, e.c.run_id)
                            .where(e.c.outcome == "ran")
                            .order_by(e.c.started_at.desc()).limit(window)).all()
    by_stage: dict[str, list[Any]] = {}
    for row in rows:
        by_stage.setdefault(row.stage, []).append(row)
    misses = []
    for stage, runs in by_stage.items():
        if len(runs) < 2:
            continue
        latest, earlier = runs[0], runs[1:11]
        expected = statistics.median(r.wall_s / max(r.fraction, 1e-9) for r in earlier) \
            * latest.fraction
        misses.append({"stage": stage, "run_id": latest.run_id, "estimate_s": expected,
                       "actual_s": latest.wall_s, "error_s": latest.wall_s - expected,
                       "ratio": latest.wall_s / expected if expected > 0 else None})
    misses.sort(key=lambda m: abs(m["error_s"]), reverse=True)
    return misses[:limit]


def stage_logs(db: Database, log_path: Any, run: dict[str, Any],
               tail_bytes: int = 16384) -> dict[str, str]:
    """The log of each stage this run executed, where this run was its latest execution.

    A stage's log file (``.sluice/logs/STAGE.log``) holds only its latest execution
    on this machine, so an older run's stages show none rather than a later one's.
    Masked like everything sluice shows.
    """
    from sqlalchemy import func, select

    from sluice.db.schema import executions as e
    from sluice.util.credentials import mask

    stages = sorted({x["stage"] for x in run["executions"]})
    with db.engine.connect() as conn:
        latest = dict(conn.execute(select(e.c.stage, func.max(e.c.started_at))
                                   .where(e.c.stage.in_(stages)).group_by(e.c.stage)).all())
    logs = {}
    for execution in run["executions"]:
        if latest.get(execution["stage"]) == execution["started_at"]:
            try:
                with open(log_path(execution["stage"]), "rb") as handle:
                    handle.seek(0, 2)
                    handle.seek(max(0, handle.tell() - tail_bytes))
                    logs[execution["stage"]] = mask(handle.read().decode("utf-8", "replace"))
            except OSError:
                continue
    return logs


def compare_versions(project: Project, a: Any, b: Any) -> dict[str, Any]:
    """Metric by metric, version ``b`` against ``a`` (registry.versions.Version each).

    The same comparison as `sluice metrics diff` (sluice.evaluate.compare): from the
    versions' stored predictions with paired intervals where both have them, else
    the registered point values; ``method`` and ``notes`` say which and why.
    """
    from sluice.evaluate.compare import compare_sides, version_side

    result = compare_sides(project, a.model, version_side(project, a, f"version {a.version}"),
                           version_side(project, b, f"version {b.version}"))
    rows = [{"metric": r.metric, "a": r.old, "b": r.new, "delta": r.delta, "low": r.low,
             "high": r.high} for r in result.rows]
    return {"model": a.model, "a": a.version, "b": b.version, "metrics": rows,
            "method": result.method, "notes": result.notes,
            "verdicts": {"a": a.verdict, "b": b.verdict}}


def cumulative_spend(db: Database, since: float, days: int, tiers: list[str] | None,
                     unit: str, now: float) -> list[float]:
    """Spend in ``unit`` (``usd`` or ``wall``) from ``since`` to the end of each day so far."""
    from sqlalchemy import select

    from sluice.db.schema import runs

    column = runs.c.cost_usd if unit == "usd" else runs.c.wall_s
    query = select(runs.c.started_at, column).where(runs.c.started_at >= since)
    if tiers:
        query = query.where(runs.c.tier.in_(tiers))
    elapsed = max(1, min(days, int((now - since) // _DAY) + 1))
    per_day = [0.0] * elapsed
    with db.engine.connect() as conn:
        for started, value in conn.execute(query):
            per_day[min(elapsed - 1, max(0, int((started - since) // _DAY)))] += float(value or 0)
    total, out = 0.0, []
    for value in per_day:
        total += value
        out.append(total)
    return out
