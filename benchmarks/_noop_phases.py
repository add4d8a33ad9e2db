"""Where a no-op `sluice run` spends its time, phase by phase (run inside a sluice project).

Prints one JSON object: seconds per phase. Imports are timed in dependency order,
so each phase counts only what the phases before it had not loaded yet. Used by
noop_run.py; not a benchmark by itself.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable

PHASES: list[tuple[str, str]] = [
    ("import typer (CLI framework)", "typer"),
    ("import pydantic", "pydantic.main"),
    ("import yaml", "yaml"),
    ("typer's pydantic adapter (loaded on first parse)", "typer._adapters"),
    ("import sluice.config_schema (builds the pydantic models)", "sluice.config_schema"),
    ("import sluice.config (loader, located errors)", "sluice.config"),
    ("import sluice.cli.main", "sluice.cli.main"),
    ("import the rest of sluice (run, plan, store, executor)", "sluice.run"),
]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    result: dict[str, float] = {}
    for label, module in PHASES:
        try:
            result[label] = timed(lambda m=module: importlib.import_module(m))
        except ImportError:
            result[label] = 0.0
    for module in ("sluice.plan", "sluice.cli.plan_cmd", "sluice.cli.progress"):
        result["import the rest of sluice (run, plan, store, executor)"] += timed(
            lambda m=module: importlib.import_module(m))

    from sluice.project import load_project
    from sluice.run import RunOptions, run_pipeline

    start = time.perf_counter()
    project = load_project()
    result["load_project (read + validate sluice.yaml, graph)"] = time.perf_counter() - start
    result["run_pipeline (fingerprint 20 stages, no-op)"] = timed(
        lambda: run_pipeline(project, RunOptions()))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
