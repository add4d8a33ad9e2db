"""`sluice ui`: server time of the overview, a run page and a model page on a big project.

The database holds 1,000 runs over the last 30 days with 100 stage executions each
(100,000 ledger rows), and one model with 1,000 versions (the registry payload of
benchmarks/registry.py: lineage, five metrics, three gates with their evidence) and
200 alias moves. The app is sluice.ui.app's, called in this process through
FastAPI's TestClient (no network, no browser): what is timed is the request's
server work — queries, templates, SVG charts. 5 warm-up requests, then 30 of
each page; median and p95.

Backends: SQLite (a file in a temporary folder) and PostgreSQL 15 when its
binaries are on PATH (a throwaway server, as benchmarks/registry.py starts it).

Target (issue 17): each page's median ≤ 200 ms on both.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _common import Section, Target, require_sluice, work_dir
from registry import fmt_ms, p95, postgres, timed, version_payload

RUNS = 1_000
PER_RUN = 100
VERSIONS = 1_000
MOVES = 200
WARMUP = 5
REQUESTS = 30
TARGET_S = 0.200
CONFIG = """\
stages:
  train: {cmd: echo, kind: train}
budgets:
  weekly: {usd: 500, wall: 100h}
  monthly: {usd: 2000}
promotion:
  staging: {gates: pass}
"""


def fill(db: Any) -> str:
    """Write the runs, ledger rows, versions and alias moves; returns a run id to open."""
    from sluice.db.schema import alias_events, aliases, executions, model_versions, runs

    now = time.time()
    tiers = ("pr", "merge", "nightly")
    run_rows, exec_rows = [], []
    for i in range(RUNS):
        at = now - 30 * 86400 * (1 - i / RUNS)
        run_id = f"2026{i:06d}-bench"
        tier = tiers[i % 3]
        run_rows.append({"run_id": run_id, "tier": tier, "started_at": at, "wall_s": 60.0,
                         "outcome": "ok", "git_commit": f"{i:040x}", "branch": "main",
                         "actor": "ci", "cost_usd": 0.4, "details": "{}"})
        for s in range(PER_RUN):
            exec_rows.append({"run_id": run_id, "stage": f"stage{s:03d}",
                              "kind": ("train", "evaluate", "check")[s % 3], "tier": tier,
                              "fingerprint": f"{s:032x}", "started_at": at + s,
                              "wall_s": 0.5 + s % 7, "cpu_s": 0.5, "cpu_alloc_s": 1.0,
                              "gpu_s": 0.0, "gpu_type": None, "max_rss_bytes": 10**8,
                              "cost_usd": 0.004, "outcome": "ran", "fraction": 1.0,
                              "seed": 0, "git_commit": f"{i:040x}", "actor": "ci"})
    version_rows = []
    for v in range(1, VERSIONS + 1):
        payload = version_payload(v)
        version_rows.append({
            "model": "churn", "version": v, "artifact_hash": payload["artifact_hash"],
            "artifact_path": payload["artifact_path"], "verdict": "PASS",
            "lineage": json.dumps(payload["lineage"]), "metrics": json.dumps(payload["metrics"]),
            "gates": json.dumps(payload["gates"]), "predictions_hash": None, "creator": "ci",
            "created_at": now - VERSIONS + v, "tags": "{}"})
    moves = [{"model": "churn", "alias": "staging", "from_version": m or None,
              "to_version": m + 1, "kind": "promote", "actor": "ci", "reason": None,
              "request_id": None, "evidence": json.dumps({"verdict": "PASS"}),
              "at": now - MOVES + m} for m in range(MOVES)]
    with db.engine.begin() as conn:
        conn.execute(runs.insert(), run_rows)
        for start in range(0, len(exec_rows), 10_000):
            conn.execute(executions.insert(), exec_rows[start:start + 10_000])
        conn.execute(model_versions.insert(), version_rows)
        conn.execute(alias_events.insert(), moves)
        conn.execute(aliases.insert().values(model="churn", alias="staging", version=MOVES,
                                             revision=MOVES, updated_at=now, updated_by="ci"))
    return str(run_rows[-1]["run_id"])


def measure(folder: Path, url: str | None) -> dict[str, list[float]]:
    import os

    from fastapi.testclient import TestClient

    from sluice.db import open_project_database
    from sluice.ui.app import create_app
    from sluice.ui.identities import Identities
    from sluice.workspace.project import load_project

    folder.mkdir()
    (folder / ".git").mkdir()
    (folder / "sluice.yaml").write_text(CONFIG)
    if url:
        os.environ["SLUICE_DATABASE_URL"] = url
    try:
        project = load_project(folder)
        db = open_project_database(project)
        run_id = fill(db)
        client = TestClient(create_app(project, db, identities=Identities([])))
        pages = {"overview `/`": "/", "run page": f"/runs/{run_id}",
                 "model page (1,000 versions)": "/models/churn"}
        samples = {}
        for label, path in pages.items():
            def get(path: str = path) -> int:
                response = client.get(path)
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
                return len(response.content)

            timed(get, WARMUP)
            samples[label] = timed(get, REQUESTS)[0]
        db.engine.dispose()
        return samples
    finally:
        os.environ.pop("SLUICE_DATABASE_URL", None)


def bench(with_postgres: bool = True) -> Section:
    require_sluice()
    results: dict[str, dict[str, list[float]]] = {}
    note = "PostgreSQL: not measured (--no-postgres)"
    with work_dir("ui") as tmp:
        print("timing SQLite...", flush=True)
        results["SQLite"] = measure(tmp / "sqlite", None)
        if with_postgres:
            with postgres(tmp) as (server, detail):
                if server is None:
                    note = f"PostgreSQL: not measured: {detail}"
                else:
                    print("timing PostgreSQL...", flush=True)
                    note = f"PostgreSQL {detail}: a throwaway server, default settings"
                    results["PostgreSQL"] = measure(
                        tmp / "pg", f"postgresql+psycopg://{server}/sluice")
    section = Section(
        title="sluice ui: server time per page",
        what=(f"{RUNS:,} runs with {PER_RUN} stage executions each ({RUNS * PER_RUN:,} ledger "
              f"rows), one model with {VERSIONS:,} versions and {MOVES} alias moves; each page "
              "requested through FastAPI's TestClient in this process (server work only: "
              f"queries, templates, SVG). {WARMUP} warm-up requests, then {REQUESTS}; median "
              f"and p95. {note}."),
        headers=["database", "page", "median", "p95"])
    for backend, samples in results.items():
        for page, got in samples.items():
            median = statistics.median(got)
            section.rows.append([backend, page, fmt_ms(median), fmt_ms(p95(got))])
            section.targets.append(Target(f"ui, {page} on {backend}, median", "≤ 200 ms",
                                          fmt_ms(median), median <= TARGET_S))
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    bench(with_postgres=not args.no_postgres).print()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
