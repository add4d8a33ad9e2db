"""One tier run from start to finish, as a chain of small steps.

resolve the tier → plan → estimate costs and check budgets (refuse, or skip
expensive stages) → run once per seed → record the ledger. Each step is a plain
function; :func:`run_tier` only passes values along. The planning steps (up to the
budget check) are in :mod:`sluice.orchestrate.tier_plan`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sluice.errors import SluiceError
from sluice.orchestrate.tier_plan import (
    TierPlan,
    TierRequest,
    enforce_budget,
    plan_tier,
    run_context,
)
from sluice.pipeline.base import Event, RunOptions, RunResult, StageOutcome, new_run_id
from sluice.pipeline.fingerprint import SEEDED_KINDS
from sluice.pipeline.scheduler import run_pipeline
from sluice.workspace.project import Project

if TYPE_CHECKING:
    from pathlib import Path

    from sluice.data.drift_check import DatasetDrift
    from sluice.evaluate.gates import ModelEvaluation

LEDGER_STATUSES = ("ran", "failed", "timeout", "budget", "cancelled")


def _seed_outcomes(result: RunResult, seed: int, project: Project) -> list[StageOutcome]:
    """A later seed's outcomes: only the seeded stages, named `stage@seedN`."""
    kept = []
    for outcome in result.outcomes:
        if project.config.stages[outcome.stage].kind in SEEDED_KINDS:
            kept.append(replace(outcome, stage=f"{outcome.stage}@seed{seed}"))
    return kept


def run_seeds(project: Project, plan: TierPlan, request: TierRequest, skip: frozenset[str],
              on_event: Callable[[Event], None], failed_checks: tuple[str, ...] = ()
              ) -> RunResult:
    """Run the plan once per seed; the last pass restores seed 0's outputs from the cache."""
    tier = plan.tier
    tracker = None
    if plan.limits and plan.rates:  # the budget module (and the ledger's) only then
        from sluice.pipeline.budget import Tracker

        tracker = Tracker(plan.limits, plan.rates)
    run_id = new_run_id()
    targets = [p.stage for p in plan.stages]
    if not targets:
        return RunResult(run_id, [], 0.0)
    started = time.monotonic()
    outcomes: list[StageOutcome] = []
    passes = [*tier.seeds, tier.seeds[0]] if len(tier.seeds) > 1 else tier.seeds
    for index, seed in enumerate(passes):
        options = RunOptions(targets=targets, jobs=request.jobs,
                             force=request.force and index == 0,
                             keep_going=request.keep_going, context=run_context(tier, seed),
                             tracker=tracker, over_budget=skip, run_id=run_id,
                             failed_checks=failed_checks,
                             planned=plan.decisions if index == 0 else {},
                             planned_at_ns=plan.planned_at_ns)
        result = run_pipeline(project, options, on_event)
        if index == 0:
            outcomes += result.outcomes
        elif index < len(tier.seeds):
            outcomes += _seed_outcomes(result, seed, project)
        if not result.ok:
            break
    return RunResult(run_id, outcomes, time.monotonic() - started)


def record(project: Project, plan: TierPlan, result: RunResult, started_at: float,
           actor_name: str | None, evaluations: list[ModelEvaluation] | None = None,
           provenance: Provenance | None = None) -> None:
    """Write the run, its executions and its gate verdicts to the database.

    Skipped when nothing executed and no gate was decided.
    """
    executed = [o for o in result.outcomes if o.status in LEDGER_STATUSES and o.wall_s]
    gates = [{"run_id": result.run_id, "model": e.model, "metric": g.metric, "rule": g.rule,
              "slice": g.slice, "verdict": g.verdict, "point": g.point, "low": g.low,
              "high": g.high, "method": g.method, "confidence": g.confidence,
              "candidate": g.candidate, "baseline": g.baseline, "reason": g.reason,
              "created_at": started_at}
             for e in evaluations or [] for g in e.gates]
    if not executed and not gates:
        return
    from sluice.db import open_project_database
    from sluice.pipeline.costs import executor_rates, rates
    from sluice.pipeline.ledger import Execution, RunRecord, record_run
    from sluice.util import identity

    db = open_project_database(project)
    needs_gpu = any(project.config.stages[o.stage.split("@")[0]].spec.resources.gpus
                    for o in executed)
    rate = plan.rates or rates(project.config.spec.prices, needs_gpu=needs_gpu)
    origin = provenance or Provenance(identity.commit(project.root),
                                      identity.branch(project.root))
    commit, who = origin.commit, identity.actor(actor_name)
    rows = []
    for outcome in executed:
        name, _, seed = outcome.stage.partition("@seed")
        spec = project.config.stages[name]
        resources = spec.spec.resources
        wall = outcome.wall_s or 0.0
        cpu_alloc, gpu_s = resources.cpus * wall, resources.gpus * wall
        # Priced where it ran: an executor's own `prices:` over the global ones.
        where = executor_rates(project.config, outcome.executor, needs_gpu=gpu_s > 0,
                               default=rate)
        rows.append(Execution(
            result.run_id, name, spec.kind, plan.tier.name, outcome.fingerprint, started_at,
            wall, outcome.cpu_s or 0.0, cpu_alloc, gpu_s, where.gpu_type if gpu_s else None,
            outcome.max_rss_bytes, where.cost(cpu_alloc, gpu_s), outcome.status,
            plan.tier.fraction, int(seed or plan.tier.seeds[0]), commit, who))
    total = sum(r.cost_usd for r in rows) + rate.per_run
    record_run(db, RunRecord(result.run_id, plan.tier.name, started_at, result.wall_s,
                             "ok" if result.ok else "failed", commit,
                             origin.branch, who, total,
                             {"fraction": plan.tier.fraction, "seeds": plan.tier.seeds,
                              "stages": [p.stage for p in plan.stages]}), rows, gates)


def _preload_database() -> None:
    import sqlalchemy
    import sqlalchemy.exc  # noqa: F401


def run_tier(project: Project, request: TierRequest,
             on_event: Callable[[Event], None] = lambda e: None) -> tuple[TierPlan, RunResult]:
    """Plan, check the budget, run every seed, record the ledger.

    A ledger that cannot be written does not undo the run (its outputs are
    cached): the error is kept on the result for the caller to report.
    """
    started_at = time.time()
    plan = plan_tier(project, request, on_event)
    if all(p.action == "up-to-date" for p in plan.stages):
        # Touches no object: no lease (the scheduler takes one if a stage's decision
        # changes before it runs), and a no-op run imports no store machinery.
        return plan, _run_planned(project, request, plan, started_at, on_event)
    from sluice.store.layered import local_layer
    from sluice.store.sweep import run_lease

    # From the run's decisions (which find cached results) to the registration: a gc
    # waits. The scheduler decides every stage not up to date again under this lease.
    with run_lease(local_layer(project.store)):
        return plan, _run_planned(project, request, plan, started_at, on_event)


def _run_planned(project: Project, request: TierRequest, plan: TierPlan, started_at: float,
                 on_event: Callable[[Event], None]) -> RunResult:
    if plan.to_run:
        # The ledger is written after the run: import SQLAlchemy while stages run
        # rather than after them (it takes a noticeable fraction of a second).
        import threading

        threading.Thread(target=_preload_database, daemon=True).start()
    for note in plan.tier.notes:
        on_event(Event("note", "", note))
    skip = enforce_budget(plan, request.allow_over_budget, project)
    drift = check_drift(project, plan, request, on_event)
    failed = tuple(f"drift-{d.dataset}" for d in drift if d.failed)
    result = run_seeds(project, plan, request, skip, on_event, failed)
    result.drift = drift
    conclude(project, plan, result, started_at, request.actor)
    return result


@dataclass(frozen=True)
class Provenance:
    """The commit and branch a run's ledger rows and registry lineage name. None: this
    checkout's (a platform's `tier finish` works in a snapshot without git history)."""

    commit: str | None
    branch: str | None


def conclude(project: Project, plan: TierPlan, result: RunResult, started_at: float,
             actor: str | None, provenance: Provenance | None = None) -> None:
    """The half of a tier run after its stages: gate verdicts, the ledger, registration
    and promotion, the report. `sluice run --tier` and `sluice tier finish` share it,
    so a tier run on a platform ends exactly like a local one."""
    key: str | None = None
    reused: tuple[dict[str, Any], Path] | None = None
    if any(m.evaluate is not None for m in project.config.models.values()):
        # (nothing evaluated, nothing to reuse: no report module on a no-op run)
        from sluice.report.reuse import evaluation_key, evaluations_from_report, reusable_report

        key = evaluation_key(project, plan.tier, result,
                             run_context(plan.tier, plan.tier.seeds[0]))
        reused = reusable_report(project, key, result)
        if reused is not None:
            result.evaluations = evaluations_from_report(reused[0])
    if reused is None:
        result.evaluations = evaluate(project, plan, result)
    try:
        # Verdicts reused from an earlier run are on record already.
        record(project, plan, result, started_at, actor,
               result.evaluations if reused is None else [], provenance)
        spec = plan.tier.spec
        if (spec.register or spec.promote) and result.ok and result.evaluations:
            from sluice.evaluate.registration import register_and_promote

            result.registered, result.moves = register_and_promote(
                project, plan.tier.name, spec.promote, result.run_id, result.evaluations,
                actor, provenance=None if provenance is None else
                (provenance.commit, provenance.branch))
    except SluiceError as exc:
        result.ledger_error = exc
    if project.config.spec.mirror.mlflow is not None:
        from sluice.registry.mirror import log_runs

        result.moves += log_runs(project, result.run_id)  # `log_runs: true`: to MLflow
    if reused is not None:
        result.report_dir, result.report_reused = reused[1], str(reused[0]["run_id"])
    elif result.evaluations or any(d.report for d in result.drift) or \
            plan.tier.name != "default":
        from sluice.report.data import data_section
        from sluice.report.run import build_report, report_folder, write_report

        report = build_report(plan, result, result.evaluations)
        report["evaluation_key"] = key
        folder = report_folder(project, result.run_id)
        folder.mkdir(parents=True, exist_ok=True)
        report["data"] = data_section(project, result, folder)
        result.report_dir = write_report(project, report, result.evaluations)


def check_drift(project: Project, plan: TierPlan, request: TierRequest,
                on_event: Callable[[Event], None]) -> list[DatasetDrift]:
    """Drift of the datasets the run reads, before any stage starts (sluice.data.drift_check)."""
    if not any(d.drift is not None for d in project.config.datasets.values()):
        return []
    from sluice.data.drift_check import check_drift as compute

    base = plan.tier.impact.base_commit if plan.tier.impact is not None else request.base
    if base is None and request.tier is None:
        return []  # a plain `sluice run` compares with nothing; tiers say why they did not
    found = compute(project, [p.stage for p in plan.stages], base)
    for item in found:
        on_event(Event("note", "", item.summary()))
    return found


def evaluate(project: Project, plan: TierPlan, result: RunResult) -> list[ModelEvaluation]:
    """Gate verdicts of every evaluated model; a model whose predictions cannot be read gets
    an INCONCLUSIVE verdict with the reason, never a PASS."""
    if not any(m.evaluate for m in project.config.models.values()):
        return []
    from sluice.evaluate.gates import ModelEvaluation, evaluate_model, unevaluated

    found = []
    settled = {o.stage: o.status for o in result.outcomes}
    context = run_context(plan.tier, plan.tier.seeds[0])  # the baseline's is the candidate's
    for name, spec in project.config.models.items():
        status = settled.get(spec.evaluate or "")
        if spec.evaluate is None or status is None:
            continue  # not part of this run
        if status not in ("ran", "cached"):
            # Every gate still appears: without predictions it cannot be decided.
            found.append(ModelEvaluation(name, "", None, gates=unevaluated(
                spec, plan.tier.name, f"its evaluate stage `{spec.evaluate}` did not run "
                                      f"({status}): no predictions to judge")))
            continue
        try:
            evaluation = evaluate_model(project, name, spec, plan.tier.name, result, context)
        except SluiceError as exc:
            evaluation = ModelEvaluation(name, "", None, notes=[exc.render()], gates=unevaluated(
                spec, plan.tier.name, f"could not evaluate: {exc.message}"))
        if evaluation is not None:
            found.append(evaluation)
    return found
