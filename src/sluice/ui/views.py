"""What the UI's pages and API read: one function per view, over the project's database.

The page routes and the JSON API of sluice.ui.app call the same function, so a page
shows exactly what its API route returns.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from sluice.db import Database
from sluice.errors import UsageError
from sluice.ui import queries
from sluice.workspace.project import Project


def overview(db: Database) -> dict[str, Any]:
    """Latest run per tier, pending promotion requests and the 20 newest runs."""
    from sluice.registry.promotion import pending_requests

    return {"latest": queries.latest_per_tier(db), "requests": pending_requests(db),
            "recent": queries.runs_page(db, 20).items}


def budgets(project: Project, db: Database) -> dict[str, Any]:
    """Spend per period budget, tier, stage kind (30 days) and day; estimate misses."""
    from sluice.report.budget import budget_report

    return {**budget_report(project, db=db).to_json(),
            "by_kind": queries.spend_by_kind(db, time.time() - 30 * 86400),
            "estimate_misses": queries.estimate_misses(db),
            "daily": queries.daily_spend(db)}


def run(project: Project, db: Database, run_id: str) -> dict[str, Any]:
    """A run, its stage executions and its report (None when it wrote none)."""
    from sluice.report.run import load_report

    detail = queries.run_detail(db, run_id)
    try:
        detail["report"] = load_report(project, run_id)[0]
    except UsageError:
        detail["report"] = None
    return detail


def model(db: Database, name: str, limit: int, offset: int, history_limit: int,
          history_offset: int) -> dict[str, Any]:
    """A model: a page of versions, a page of alias history, pending requests."""
    from sluice.registry.promotion import pending_requests
    from sluice.registry.versions import history, versions

    summary = queries.model_summary(db, name)
    listed = [v.to_json() for v in versions(db, name, newest_first=True, limit=limit,
                                            offset=offset)]
    events = list(reversed(history(db, name)))
    page = queries.Page(listed, summary["versions"], limit, offset)
    return {**summary, "versions": page.to_json(),
            "history": queries.paged(events, history_limit, history_offset).to_json(),
            "requests": pending_requests(db, name)}


def compare(project: Project, db: Database, name: str, a: int, b: int) -> dict[str, Any]:
    """Metric deltas of version ``b`` against ``a`` (404 when either is missing)."""
    from sluice.registry.versions import get_version

    queries.model_summary(db, name)
    try:
        left, right = get_version(db, name, a), get_version(db, name, b)
    except UsageError as exc:
        raise queries.NotFound(str(exc), back=f"/models/{quote(name)}") from None
    return queries.compare_versions(project, left, right)
