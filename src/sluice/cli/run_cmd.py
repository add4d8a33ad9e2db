"""``sluice run``: run the stale stages of the pipeline, or of one tier.

:func:`run_stages` is the command; typer is imported only in :func:`register`, so
the fast path (sluice.cli.fast) runs a plain `sluice run` without typer or click.
"""

# No `from __future__ import annotations`: the typer annotations inside register()
# are evaluated there, where typer is imported, and not looked up in this module.

from typing import TYPE_CHECKING, Annotated

from sluice.cli.output import echo, print_json, seconds

if TYPE_CHECKING:
    import typer

    from sluice.orchestrate.tier_plan import TierPlan
    from sluice.pipeline.base import RunResult
    from sluice.workspace.project import Project


def run_stages(targets: list[str] | None = None, tier: str | None = None,
               base: str | None = None, head: str | None = None, jobs: int | None = None,
               force: bool = False, dry_run: bool = False, keep_going: bool = True,
               allow_over_budget: bool = False, actor: str | None = None,
               as_json: bool = False) -> int:
    """`sluice run` with its options (see register()); the exit code."""
    from sluice.cli.progress import Progress
    from sluice.orchestrate.tier import run_tier
    from sluice.orchestrate.tier_plan import TierRequest, plan_tier
    from sluice.workspace.project import load_project

    project = load_project()
    warnings: list[str] = []
    if base == "auto":
        from sluice.ci.revision import explain_base

        resolved = explain_base(project.root,
                                default_branch=project.config.spec.ci.default_branch)
        base, warnings = resolved.commit, [resolved.warning] if resolved.warning else []
    request = TierRequest(tier=tier, targets=targets or None, base=base, head=head,
                          jobs=jobs or 0, force=force, keep_going=keep_going,
                          allow_over_budget=allow_over_budget, actor=actor,
                          warnings=warnings,
                          check_data=not dry_run)  # a dry run reports, like `plan`
    if dry_run:
        from sluice.cli.plan_cmd import print_tier_plan  # plan_cmd imports typer

        plan = plan_tier(project, request)
        if as_json:
            print_json(plan.to_json())
        else:
            print_tier_plan(plan, header="dry run; nothing will be executed:")
        return 0
    names = list(project.config.stages)
    group = "sluice run" + (f" --tier {tier}" if tier else "")
    with Progress(names, group=group) as progress:
        plan, result = run_tier(project, request, progress)
    return show_result(project, plan, result, warnings, as_json)


def show_result(project: "Project", plan: "TierPlan", result: "RunResult",
                warnings: list[str], as_json: bool) -> int:
    """Print how a tier run ended (`sluice run`, `sluice tier finish`); the exit code."""
    from sluice.ci.annotations import after_run

    for line in after_run(project, result):  # GitHub Actions only: summary, annotations
        echo(line, err=as_json)
    if as_json:
        print_json({**result.to_json(), "tier": plan.tier.name, "warnings": warnings})
    counts: dict[str, int] = {}
    for outcome in result.outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in counts.items()) or "nothing to run"
    restored = sum(1 for o in result.outcomes if o.restored)
    if restored:
        summary += f" ({restored} restored from the cache)"
    echo(f"{summary} in {seconds(result.wall_s)} (run {result.run_id})"
         + "".join(f"; warning: {w}" for w in warnings), err=as_json)
    for evaluation in result.evaluations:
        verdict = evaluation.verdict or "no gates"
        echo(f"model {evaluation.model}: {verdict}", err=as_json)
        for gate in evaluation.gates:
            where = f" [{gate.slice}]" if gate.slice else ""
            echo(f"  {gate.verdict:<12} {gate.metric} {gate.rule}{where}: {gate.reason}",
                 err=as_json)
        for note in evaluation.notes:
            echo(f"  note: {note}", err=as_json)
    for version in result.registered:
        echo(f"registered {version.model} version {version.version} "
             f"({version.verdict or 'no gates'})", err=as_json)
    for move in result.moves:
        echo(f"  {move if isinstance(move, str) else move.message}", err=as_json)
    if result.report_reused is not None:
        echo(f"nothing changed since run {result.report_reused}: its report and verdicts "
             "stand (`sluice report`)", err=as_json)
    elif result.report_dir is not None:
        echo(f"report: {result.report_dir / 'report.html'} (also report.md, report.json; "
             "`sluice report` prints it)", err=as_json)
    if result.ledger_error is not None:
        raise result.ledger_error
    gated = [o for o in result.outcomes if o.status == "gated"]
    if gated:
        echo(f"{len(gated)} stage(s) did not start because a check failed: fix the check "
             "first; nothing expensive was spent.", err=as_json)
    statuses = {o.status for o in result.outcomes}
    if statuses & {"failed", "timeout", "gated", "cancelled"}:
        return 1
    if "budget" in statuses:
        return 3  # what did not run was skipped for the budget, or stopped by it
    verdicts = {e.verdict for e in result.evaluations}
    if "FAIL" in verdicts:
        return 1
    if "INCONCLUSIVE" in verdicts:
        return 4
    return 0 if result.ok else 1


def register(app: "typer.Typer") -> None:
    import typer

    @app.command("run")
    def run(
        targets: Annotated[list[str] | None, typer.Argument(
            help="Stages or models to run (with everything upstream). Default: all.")] = None,
        tier: Annotated[str | None, typer.Option(
            help="Run as this tier of sluice.yaml (selection, fraction, seeds, budget).")
        ] = None,
        base: Annotated[str | None, typer.Option(
            help="For `select: affected`: compare with the merge base of this revision; "
                 "`auto`: the pull request's base or the pushed range, from the CI "
                 "environment.")
        ] = None,
        head: Annotated[str | None, typer.Option(
            help="With --base: the revision to inspect [default: the working tree].")] = None,
        jobs: Annotated[int | None, typer.Option(
            "--jobs", "-j", min=1,
            help="CPU slots for parallel stages [default: number of CPUs].")] = None,
        force: Annotated[bool, typer.Option(
            help="Rerun the selected stages even if cached.")] = False,
        dry_run: Annotated[bool, typer.Option(
            "--dry-run", help="Show the plan and stop.")] = False,
        keep_going: Annotated[bool, typer.Option(
            "--keep-going/--fail-fast",
            help="After a failure, let independent stages finish, or stop everything.")] = True,
        allow_over_budget: Annotated[bool, typer.Option(
            "--allow-over-budget", help="Run even if the estimate exceeds a budget.")] = False,
        actor: Annotated[str | None, typer.Option(
            help="Who runs this, for the ledger [default: from CI, else the OS user].")
        ] = None,
        as_json: Annotated[bool, typer.Option(
            "--json", help="Print the result as JSON on stdout (progress goes to stderr).")
        ] = False,
    ) -> int:
        """Run every stale stage (or TARGETS and their upstream), reusing cached results.

        Checks run first; if one fails, the other stages are gated. Exit code 1 if
        a stage failed, 3 if a budget refused the run or stopped a stage.

        Pinned data (sluice.lock) that the selected stages read and the workspace
        lacks is fetched from the shared store and checked out first, so a fresh
        clone needs no `sluice data pull`; data in no store is exit 2.

        Examples:

          sluice run

          sluice run train_churn --jobs 2

          sluice run --tier pr --base main

          sluice run --tier merge --allow-over-budget

          sluice run --tier pr --base auto   # in CI: the pull request's base

          sluice run --dry-run --json
        """
        return run_stages(targets, tier, base, head, jobs, force, dry_run, keep_going,
                          allow_over_budget, actor, as_json)
