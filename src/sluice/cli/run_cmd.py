"""``sluice run``: run the stale stages of the pipeline."""

from __future__ import annotations

from typing import Annotated

import typer

from sluice.cli.output import echo, print_json, seconds


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        targets: Annotated[list[str] | None, typer.Argument(
            help="Stages or models to run (with everything upstream). Default: all.")] = None,
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
        as_json: Annotated[bool, typer.Option(
            "--json", help="Print the result as JSON on stdout (progress goes to stderr).")
        ] = False,
    ) -> int:
        """Run every stale stage (or TARGETS and their upstream), reusing cached results.

        Exit code 1 if a stage failed or timed out.

        Examples:

          sluice run

          sluice run train_churn --jobs 2

          sluice run --force features

          sluice run --dry-run --json
        """
        from sluice.cli.plan_cmd import print_plan
        from sluice.cli.progress import Progress
        from sluice.fingerprint import RunContext
        from sluice.plan import make_plan, select_stages
        from sluice.project import load_project
        from sluice.run import RunOptions, run_pipeline

        project = load_project()
        if dry_run:
            plans = make_plan(project, targets, RunContext(), force=force)
            if as_json:
                print_json({"stages": [p.to_json() for p in plans]})
            else:
                print_plan(list(plans), header="dry run; nothing will be executed:")
            return 0
        options = RunOptions(targets=targets, jobs=jobs or 0, force=force, keep_going=keep_going)
        names = select_stages(project, targets)
        with Progress(names) as progress:
            result = run_pipeline(project, options, progress)
        if as_json:
            print_json(result.to_json())
        counts: dict[str, int] = {}
        for outcome in result.outcomes:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in counts.items())
        restored = sum(1 for o in result.outcomes if o.restored)
        if restored:
            summary += f" ({restored} restored from the cache)"
        echo(f"{summary} in {seconds(result.wall_s)} (run {result.run_id})", err=as_json)
        return 0 if result.ok else 1
