"""Ledger: writing 100,000 executions, then `sluice budget` and `sluice plan --tier` over them.

A project with four tiers (pr, merge, nightly, manual), prices, and four period
budgets (daily, weekly, monthly, and a 14-day GPU budget for nightly only), and
a 40-stage pipeline (checks, feature transforms, GPU training, evaluation).
Its SQLite ledger (``.sluice/sluice.db``) is filled through sluice's own library
API — ``open_database`` and ``record_run`` — with 10,000 runs of 10 executions
each (one transaction per run, as ``sluice run`` writes them), spread over the
last 60 days across the tiers and stages; the write throughput is reported.
Then these are timed as whole processes, median of 5 after a warm-up, taking
turns: ``sluice budget``, ``sluice budget --json`` and ``sluice plan --tier``
(which reads each stage's recent executions for its estimate and the spend of
every period budget), each also on the same project with an empty ledger, to
show what the 100,000 rows cost.

Target: ``sluice budget`` < 1 s.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from _common import (
    Section,
    Target,
    Timing,
    fmt_s,
    git_commit_all,
    git_init,
    markdown_table,
    measure,
    measure_interleaved,
    require_sluice,
    run,
    run_json,
    sluice_cmd,
    verdict,
    work_dir,
)

TARGET_S = 1.0
EXECUTIONS = 100_000
PER_RUN = 10
DAYS = 60
TIERS = {  # tier: (share of runs, fraction of the data its train and evaluate stages use)
    "pr": (0.60, 0.02),
    "merge": (0.25, 1.0),
    "nightly": (0.10, 1.0),
    "manual": (0.05, 1.0),
}
MODELS = [f"model{i}" for i in range(8)]
CHECKS = ["unit", "lint", "validate_data", "schema"]
FEATURES = [f"features_{g}" for g in ("users", "events", "items", "sessions")]
STAGES = {
    **dict.fromkeys(CHECKS, "check"),
    **dict.fromkeys(FEATURES, "transform"),
    **{f"train_{m}": "train" for m in MODELS},
    **{f"evaluate_{m}": "evaluate" for m in MODELS},
    **{f"report_{m}": "transform" for m in MODELS},
    **{f"export_{m}": "transform" for m in MODELS},
}
CPU_HOUR, GPU_HOUR = 0.048, 3.40

CONFIG_HEAD = """\
version: 1
prices:
  cpu_hour: 0.048
  gpu_hour: {default: 2.50, a100: 3.40}
  gpu_type: a100
tiers:
  pr:
    trigger: pull_request
    fraction: 0.02
    budget: {wall: 30m, usd: 5}
  merge:
    trigger: {push: {branches: [main]}}
    budget: {gpu_hours: 8, usd: 50}
  nightly:
    trigger: {schedule: "0 3 * * *"}
    select: all
    seeds: 3
  manual:
    trigger: manual
budgets:
  daily: {usd: 200}
  weekly: {gpu_hours: 400, usd: 1000}
  monthly: {cpu_hours: 5000, usd: 4000}
  gpu-sprint: {window: 14d, gpu_hours: 300, tiers: [nightly]}
"""


def sluice_yaml() -> str:
    lines = [CONFIG_HEAD.rstrip("\n"), "stages:"]
    for name in CHECKS:
        lines += [f"  {name}:", "    kind: check", f"    cmd: echo {name}"]
    for name in FEATURES:
        lines += [f"  {name}:", f"    cmd: echo {name} > ${{outs.table}}",
                  f"    outs: {{table: build/{name}.csv}}", "    resources: {cpus: 2}"]
    for i, model in enumerate(MODELS):
        feature = FEATURES[i % len(FEATURES)]
        lines += [f"  train_{model}:", "    kind: train",
                  f"    cmd: echo ${{stages.{feature}.outs.table}} > ${{outs.model}}",
                  f"    outs: {{model: build/{model}.pkl}}",
                  "    resources: {cpus: 4, gpus: 1}", "    timeout: 2h",
                  f"  evaluate_{model}:", "    kind: evaluate",
                  f"    cmd: echo ${{stages.train_{model}.outs.model}} > ${{outs.predictions}}",
                  f"    outs: {{predictions: build/{model}-predictions.csv}}",
                  f"  report_{model}:",
                  f"    cmd: echo ${{stages.evaluate_{model}.outs.predictions}} > "
                  "${outs.report}",
                  f"    outs: {{report: build/{model}-report.md}}",
                  f"  export_{model}:",
                  f"    cmd: echo ${{stages.train_{model}.outs.model}} > ${{outs.onnx}}",
                  f"    outs: {{onnx: build/{model}.onnx}}"]
    lines.append("models:")
    lines += [f"  {m}: {{train: train_{m}, artifact: model, evaluate: evaluate_{m}}}"
              for m in MODELS]
    return "\n".join(lines) + "\n"


def setup(root: Path) -> None:
    git_init(root)
    (root / "sluice.yaml").write_text(sluice_yaml())
    (root / ".gitignore").write_text("build/\n")
    git_commit_all(root, "pipeline")


# --------------------------------------------------------------------------- filling


def make_runs(rng: random.Random, now: float) -> list[tuple[Any, list[Any]]]:
    """10,000 (RunRecord, 10 Executions), oldest first, spread over the last 60 days."""
    from sluice.pipeline.ledger import Execution, RunRecord

    names = list(STAGES)
    tiers = list(TIERS)
    weights = [share for share, _ in TIERS.values()]
    starts = sorted(now - rng.uniform(0, DAYS * 86400) for _ in range(EXECUTIONS // PER_RUN))
    runs = []
    for n, started in enumerate(starts):
        tier = rng.choices(tiers, weights)[0]
        fraction = TIERS[tier][1]
        run_id = f"bench-{n:06d}"
        commit = f"{rng.getrandbits(160):040x}"
        at = started
        executions = []
        for stage in rng.sample(names, PER_RUN):
            kind = STAGES[stage]
            cpus, gpus = (4, 1) if kind == "train" else (2, 0) if stage in FEATURES else (1, 0)
            base = {"check": 20.0, "transform": 120.0, "train": 1800.0, "evaluate": 300.0}[kind]
            wall = base * (fraction if kind in ("train", "evaluate") else 1.0) \
                * rng.lognormvariate(0, 0.3)
            outcome = rng.choices(["ran", "failed", "budget"], [0.95, 0.04, 0.01])[0]
            cost = cpus * wall / 3600 * CPU_HOUR + gpus * wall / 3600 * GPU_HOUR
            executions.append(Execution(
                run_id=run_id, stage=stage, kind=kind, tier=tier,
                fingerprint=f"{rng.getrandbits(128):032x}", started_at=at, wall_s=wall,
                cpu_s=wall * cpus * rng.uniform(0.5, 1.0), cpu_alloc_s=wall * cpus,
                gpu_s=wall * gpus, gpu_type="NVIDIA A100-SXM4-80GB" if gpus else None,
                max_rss_bytes=rng.randint(100, 16_000) * 2**20, cost_usd=cost,
                outcome=outcome, fraction=fraction if kind in ("train", "evaluate") else 1.0,
                seed=0, git_commit=commit, actor="ci"))
            at += wall
        runs.append((RunRecord(
            run_id=run_id, tier=tier, started_at=started, wall_s=at - started,
            outcome="ok" if all(e.outcome == "ran" for e in executions) else "failed",
            git_commit=commit, branch="main" if tier != "pr" else f"feature-{n % 97}",
            actor="ci", cost_usd=sum(e.cost_usd for e in executions),
            details={"fraction": fraction, "seeds": 1}), executions))
    return runs


def fill(root: Path, runs: list[tuple[Any, list[Any]]]) -> float:
    """Record every run through sluice's API; returns the seconds the writes took."""
    from sluice.db import database_url, open_database
    from sluice.pipeline.ledger import record_run

    db = open_database(database_url(root, None), root / ".sluice" / "locks")
    start = time.perf_counter()
    for record, executions in runs:
        record_run(db, record, executions)
    seconds = time.perf_counter() - start
    db.engine.dispose()
    return seconds


def in_process(root: Path, repeats: int) -> dict[str, Timing]:
    """The library calls behind the commands, timed in this process (after imports)."""
    from sluice.db import database_url, open_database
    from sluice.pipeline.ledger import estimates, spend_by_tier, spend_since
    from sluice.report.budget import budget_report
    from sluice.workspace.project import load_project

    project = load_project(root)
    db = open_database(database_url(root, None), root / ".sluice" / "locks")
    now = time.time()
    stages = list(STAGES)
    result = {
        "budget_report()": measure(lambda: budget_report(project), repeats=repeats),
        "estimates(40 stages)": measure(lambda: estimates(db, stages, 1.0), repeats=repeats),
        "spend_since(30 days)": measure(lambda: spend_since(db, now - 30 * 86400),
                                        repeats=repeats),
        "spend_by_tier(30 days)": measure(lambda: spend_by_tier(db, now - 30 * 86400),
                                          repeats=repeats),
    }
    db.engine.dispose()
    return result


# --------------------------------------------------------------------------- benchmark


COMMANDS = {
    "budget": ("budget",),
    "budget --json": ("budget", "--json"),
    "plan --tier pr": ("plan", "--tier", "pr"),
    "plan --tier nightly": ("plan", "--tier", "nightly"),
}


def bench(repeats: int = 5) -> Section:
    require_sluice()
    rng = random.Random(20240615)
    with work_dir("ledger") as tmp:
        full, empty = tmp / "ledger", tmp / "empty"
        for root in (full, empty):
            root.mkdir()
            setup(root)
        print(f"recording {EXECUTIONS:,} executions...", flush=True)
        runs = make_runs(rng, time.time())
        write_s = fill(full, runs)
        fill(empty, [])
        report = run_json(sluice_cmd("budget", "--json"), full)
        recorded = sum(p["spent"]["runs"] for p in report["periods"] if p["name"] == "monthly")
        if not recorded:
            raise RuntimeError("sluice budget sees no runs in the filled ledger")
        plan = run_json(sluice_cmd("plan", "--tier", "nightly", "--json"), full)
        known = sum(1 for e in plan["budget"]["estimates"].values() if e["samples"])
        if known != len(STAGES):
            raise RuntimeError(f"plan --tier nightly found history for {known} of "
                               f"{len(STAGES)} stages")
        size = (full / ".sluice" / "sluice.db").stat().st_size

        print("timing the commands...", flush=True)
        fns: dict[str, Callable[[], object]] = {}
        for key, args in COMMANDS.items():
            fns[key] = partial(run, sluice_cmd(*args), full)
            fns[f"{key}, empty"] = partial(run, sluice_cmd(*args), empty)
        fns["floor"] = partial(run, sluice_cmd("--help"), full)
        t = measure_interleaved(fns, repeats=repeats, warmup=1)
        lib = in_process(full, repeats)

    rate = EXECUTIONS / write_s
    section = Section(
        title=f"Ledger: {EXECUTIONS:,} executions, `sluice budget` and `sluice plan --tier`",
        what=(
            "A project with four tiers, prices, four period budgets (daily, weekly, monthly, "
            f"and a 14-day GPU budget for one tier) and a {len(STAGES)}-stage pipeline. Its "
            f"SQLite ledger is filled through sluice's library API (`open_database`, "
            f"`record_run`): {EXECUTIONS // PER_RUN:,} runs of {PER_RUN} executions, one "
            f"transaction per run as `sluice run` writes them, spread over {DAYS} days, "
            "four tiers and all stages. Then each command is timed as a whole process, "
            f"median of {repeats} after a warm-up, taking turns with the same command on "
            "the same project with an empty ledger (the difference is what the rows "
            "cost). `plan --tier` reads each planned stage's recent successful executions "
            "for its estimate and the spend of every period budget that applies."),
        headers=["command", f"{EXECUTIONS // 1000}k executions", "min–max (s)",
                 "empty ledger", "the rows cost"],
    )
    for key in COMMANDS:
        full_t, empty_t = t[key], t[f"{key}, empty"]
        section.rows.append([f"`sluice {key}`", fmt_s(full_t.median), full_t.spread(),
                             fmt_s(empty_t.median), fmt_s(full_t.median - empty_t.median)])
    section.rows.append(["`sluice --help` (start-up floor)", fmt_s(t["floor"].median),
                         t["floor"].spread(), "", ""])

    budget_s = max(t["budget"].median, t["budget --json"].median)
    ok = budget_s < TARGET_S
    section.targets = [Target(f"`sluice budget` over {EXECUTIONS:,} executions",
                              f"< {TARGET_S:g} s",
                              f"{t['budget'].median:.3f} s (`--json` "
                              f"{t['budget --json'].median:.3f} s)", ok)]
    section.findings = [
        f"writes: {rate:,.0f} executions/s ({EXECUTIONS // PER_RUN / write_s:,.0f} runs/s, "
        f"{write_s / (EXECUTIONS // PER_RUN) * 1000:.2f} ms per run of {PER_RUN}) through "
        f"`record_run`; the database is {size / 1e6:.0f} MB",
        f"`sluice budget`: {fmt_s(t['budget'].median)}, `--json` "
        f"{fmt_s(t['budget --json'].median)} (target < {TARGET_S:g} s: {verdict(ok)})",
        f"`sluice plan --tier pr` {fmt_s(t['plan --tier pr'].median)}, `--tier nightly` "
        f"{fmt_s(t['plan --tier nightly'].median)}, with estimates for all {len(STAGES)} "
        "stages",
    ]
    section.blocks.append(
        "The library calls behind them, in-process (imports done, database open), "
        f"median of {repeats}:\n\n" + markdown_table(
            ["call", "median"], [[f"`{k}`", f"{v.median * 1000:.1f} ms"]
                                 for k, v in lib.items()]))
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    bench(args.repeats).print()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
