"""``sluice plan``: what a run (or a tier) would do and why, with cost estimates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from sluice.cli.output import echo, print_json, seconds

if TYPE_CHECKING:
    from sluice.data.pins import PinProblem
    from sluice.orchestrate.tier_plan import TierPlan
    from sluice.pipeline.plan import StagePlan

ACTION_WORDS = {"run": "run", "restore": "restore", "up-to-date": "up to date"}


def print_plan(plans: list[StagePlan], *, header: str,
               estimates: dict[str, str] | None = None) -> None:
    echo(header)
    width = max((len(p.stage) for p in plans), default=5)
    for plan in plans:
        extra = ""
        if plan.action == "run" and estimates and plan.stage in estimates:
            extra = f"  [{estimates[plan.stage]}]"
        elif plan.action == "run" and plan.last_wall_s is not None:
            extra = f"  (last {seconds(plan.last_wall_s)})"
        why = "; ".join(plan.reasons)
        echo(f"  {ACTION_WORDS[plan.action]:<11} {plan.stage:<{width}}  {why}{extra}")
    counts = {a: sum(1 for p in plans if p.action == a) for a in ACTION_WORDS}
    echo(f"{counts['run']} to run, {counts['restore']} to restore from cache, "
         f"{counts['up-to-date']} up to date")


def print_tier_plan(plan: TierPlan, *, header: str) -> None:
    from sluice.pipeline.budget import UNITS, fmt

    if plan.tier.impact is not None:
        from sluice.cli.affected_cmd import print_impact

        print_impact(plan.tier.impact)
        echo()
    tier = plan.tier
    if tier.name != "default":
        header += f" tier `{tier.name}`, fraction {tier.fraction:g}, " \
                  f"{len(tier.seeds)} seed(s)"
    for note in tier.notes:
        echo(f"note: {note}")
    estimates = None
    check = plan.budget
    if check is not None:
        estimates = {}
        for stage, estimate in check.estimates.items():
            if estimate.known:
                estimates[stage] = f"est. {seconds(estimate.wall_s)} from " \
                                   f"{estimate.samples} run(s)"
            else:
                bound = plan.timeouts.get(stage)
                estimates[stage] = "no history: estimate unknown" + (
                    f", at most its timeout {seconds(bound)}" if bound else "")
    print_plan(plan.stages, header=header, estimates=estimates)
    print_data_problems(plan.data)
    if check is None:
        return
    echo(f"estimated cost: {seconds(check.total.wall)} wall, "
         f"{fmt('cpu_hours', check.total.cpu_hours)}, {fmt('gpu_hours', check.total.gpu_hours)}"
         f", {fmt('usd', check.total.usd)}"
         + (f" (+ {len(check.unknown)} stage(s) without history)" if check.unknown else ""))
    for limit in plan.limits:
        parts = []
        for unit in UNITS:
            left = limit.left(unit)
            if left is not None:
                parts.append(f"{unit.replace('_', '-')} {fmt(unit, max(left, 0))} left of "
                             f"{fmt(unit, getattr(limit.limits, unit))}")
        echo(f"{limit.name}: " + "; ".join(parts))
    for over in check.over:
        echo(f"OVER BUDGET: {over}")


def print_data_problems(problems: list[PinProblem]) -> None:
    """Pinned data that is not as pinned: a run would refuse to start."""
    for problem in problems:
        echo(f"DATA NOT AS PINNED: {problem.summary()}")
        echo(f"    fix: {problem.fix()}")
    if problems:
        echo(f"`sluice run` refuses to start until the {len(problems)} pinned path(s) above "
             "match their pins")


def _shown(value: object) -> str:
    """A value of `plan --explain` as words: lists and mappings joined, yes/no, never a
    Python repr (``{'model': 'm.pkl'}``, ``True``)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        value = [f"{k}: {v}" for k, v in value.items()]
    if isinstance(value, list | tuple | set):
        value = ", ".join(str(v) for v in value)
    return str(value) if value not in ("", None) else "-"


def register(app: typer.Typer) -> None:
    @app.command("plan")
    def plan(
        targets: Annotated[list[str] | None, typer.Argument(
            help="Stages or models to plan (with everything upstream). Default: all.")] = None,
        tier: Annotated[str | None, typer.Option(
            help="Plan as this tier: its selection, fraction, seeds and budget.")] = None,
        force: Annotated[bool, typer.Option(help="Plan as if every stage were forced.")] = False,
        base: Annotated[str | None, typer.Option(
            help="Plan only what changed since the merge base with this revision "
                 "(`auto`: from the CI environment).")] = None,
        head: Annotated[str | None, typer.Option(
            help="With --base: the revision to inspect [default: the working tree].")] = None,
        explain: Annotated[str | None, typer.Option(
            help="Show what one stage depends on, discovered Python imports included.")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    ) -> int:
        """Show what `sluice run` would do and why, without running anything.

        With --tier, also the estimated cost of each stage (from the ledger)
        against what is left of the tier's and the period budgets.

        Examples:

          sluice plan

          sluice plan --tier pr --base main   # what this branch affects, and its cost

          sluice plan train_churn --json

          sluice plan --explain train_churn   # deps, inputs and discovered imports
        """
        from sluice.orchestrate.tier_plan import TierRequest, plan_tier
        from sluice.pipeline.fingerprint import RunContext
        from sluice.pipeline.plan import explain_stage
        from sluice.workspace.project import load_project

        project = load_project()
        if base is not None:
            from sluice.ci.revision import resolve_base

            base = resolve_base(project.root, base,
                                default_branch=project.config.spec.ci.default_branch)
        if explain:
            details = explain_stage(project, explain, RunContext())
            if as_json:
                print_json(details)
            else:
                for key, value in details.items():
                    echo(f"{key + ':':<20} {_shown(value)}")
            return 0
        if base is not None and tier is None:
            # `plan --base` alone plans the affected stages, like a tier with defaults.
            from sluice.data.pins import check_pins
            from sluice.orchestrate.tier_plan import TierPlan
            from sluice.pipeline.changes import compute_impact
            from sluice.pipeline.plan import make_plan, select_stages
            from sluice.pipeline.tiers import DEFAULT_TIER, DEFAULT_TIER_SPEC, TierRun
            from sluice.util.git import Repo

            impact = compute_impact(Repo.open(project.root), base, head)
            chosen = [s for s in impact.affected_stages if not targets or s in targets]
            tier_run = TierRun(DEFAULT_TIER, DEFAULT_TIER_SPEC, chosen, [0], impact=impact)
            result = TierPlan(tier_run, make_plan(project, chosen, RunContext(), force=force),
                              data=check_pins(project, select_stages(project, chosen)))
        else:
            result = plan_tier(project, TierRequest(tier=tier, targets=targets or None,
                                                    base=base, head=head, force=force,
                                                    check_data=False))
        if as_json:
            print_json(result.to_json())
        else:
            print_tier_plan(result, header=f"plan for {project.root.name}:")
        return 0
