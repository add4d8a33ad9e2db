"""``sluice plan`` and ``sluice status``'s shared view of what would run and why."""

from __future__ import annotations

from typing import Annotated

import typer

from sluice.cli.output import echo, print_json, seconds

ACTION_WORDS = {"run": "run", "restore": "restore", "up-to-date": "up to date"}


def print_plan(plans: list[object], *, header: str) -> None:
    from sluice.plan import StagePlan

    echo(header)
    width = max((len(p.stage) for p in plans if isinstance(p, StagePlan)), default=5)
    for plan in plans:
        assert isinstance(plan, StagePlan)
        last = f"  (last {seconds(plan.last_wall_s)})" if plan.action == "run" and \
            plan.last_wall_s is not None else ""
        why = "; ".join(plan.reasons)
        echo(f"  {ACTION_WORDS[plan.action]:<11} {plan.stage:<{width}}  {why}{last}")
    counts = {a: sum(1 for p in plans if isinstance(p, StagePlan) and p.action == a)
              for a in ACTION_WORDS}
    echo(f"{counts['run']} to run, {counts['restore']} to restore from cache, "
         f"{counts['up-to-date']} up to date")


def register(app: typer.Typer) -> None:
    @app.command("plan")
    def plan(
        targets: Annotated[list[str] | None, typer.Argument(
            help="Stages or models to plan (with everything upstream). Default: all.")] = None,
        force: Annotated[bool, typer.Option(help="Plan as if every stage were forced.")] = False,
        base: Annotated[str | None, typer.Option(
            help="Plan only what changed since the merge base with this revision.")] = None,
        head: Annotated[str | None, typer.Option(
            help="With --base: the revision to inspect [default: the working tree].")] = None,
        explain: Annotated[str | None, typer.Option(
            help="Show what one stage depends on, discovered Python imports included.")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    ) -> int:
        """Show what `sluice run` would do and why, without running anything.

        Examples:

          sluice plan

          sluice plan train_churn --json

          sluice plan --base main            # only what this branch affects

          sluice plan --explain train_churn  # deps, inputs and discovered imports
        """
        from sluice.cli.affected_cmd import print_impact
        from sluice.fingerprint import RunContext
        from sluice.plan import explain_stage, make_plan
        from sluice.project import load_project

        project = load_project()
        if explain:
            details = explain_stage(project, explain, RunContext())
            if as_json:
                print_json(details)
            else:
                for key, value in details.items():
                    shown = ", ".join(value) if isinstance(value, list) else value
                    echo(f"{key + ':':<20} {shown if shown not in ('', None) else '-'}")
            return 0
        impact = None
        if base is not None:
            from sluice.changes import compute_impact
            from sluice.gitrepo import Repo

            impact = compute_impact(Repo.open(project.root), base, head)
            targets = [s for s in impact.affected_stages if not targets or s in targets]
        plans = make_plan(project, targets, RunContext(), force=force) \
            if targets or impact is None else []
        if as_json:
            value = {"stages": [p.to_json() for p in plans]}
            if impact is not None:
                value["impact"] = impact.to_json()
            print_json(value)
            return 0
        if impact is not None:
            print_impact(impact)
            echo()
        print_plan(list(plans), header=f"plan for {project.root.name}:")
        return 0
