"""``sluice status``: which stages are stale and why."""

from __future__ import annotations

from typing import Annotated

import typer

from sluice.cli.output import echo, print_json


def register(app: typer.Typer) -> None:
    @app.command("status")
    def status(
        targets: Annotated[list[str] | None, typer.Argument(
            help="Stages or models to check (with everything upstream). Default: all.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
    ) -> int:
        """List stale stages with the reasons, and pinned data not as pinned; exit 0 either way.

        Examples:

          sluice status

          sluice status --json | jq '.stale'
        """
        from sluice.cli.plan_cmd import print_data_problems
        from sluice.data.pins import check_pins
        from sluice.pipeline.fingerprint import RunContext
        from sluice.pipeline.plan import make_plan
        from sluice.workspace.project import load_project

        project = load_project()
        plans = make_plan(project, targets, RunContext())
        data = check_pins(project, [p.stage for p in plans])
        stale = [p for p in plans if p.action == "run"]
        cached = [p for p in plans if p.action == "restore"]
        if as_json:
            print_json({"stale": [p.to_json() for p in stale],
                        "cached": [p.to_json() for p in cached],
                        "up_to_date": [p.stage for p in plans if p.action == "up-to-date"],
                        "data": [d.to_json() for d in data]})
            return 0
        print_data_problems(data)
        if not stale and not cached:
            echo(f"all {len(plans)} stages up to date")
            return 0
        for plan in stale:
            echo(f"{plan.stage}: stale")
            for reason in plan.reasons:
                echo(f"    {reason}")
        for plan in cached:
            echo(f"{plan.stage}: in cache ({'; '.join(plan.reasons)})")
        echo(f"{len(stale)} stale, {len(cached)} restorable from cache, "
             f"{len(plans) - len(stale) - len(cached)} up to date")
        return 0
