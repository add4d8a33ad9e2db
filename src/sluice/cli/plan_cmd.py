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
        as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    ) -> int:
        """Show what `sluice run` would do and why, without running anything.

        Examples:

          sluice plan

          sluice plan train_churn --json
        """
        from sluice.fingerprint import RunContext
        from sluice.plan import make_plan
        from sluice.project import load_project

        project = load_project()
        plans = make_plan(project, targets, RunContext(), force=force)
        if as_json:
            print_json({"stages": [p.to_json() for p in plans]})
        else:
            print_plan(list(plans), header=f"plan for {project.root.name}:")
        return 0
