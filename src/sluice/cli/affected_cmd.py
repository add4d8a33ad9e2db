"""``sluice affected``: which stages and models a change affects, and why."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from sluice.cli.output import echo, print_json


def print_impact(impact: Any) -> None:
    echo(f"comparing {impact.head} with {impact.base}")
    if impact.note:
        echo(f"note: {impact.note}")
    affected = [m for m in impact.models.values() if m.affected]
    for model in affected:
        echo(f"model {model.name}: affected")
        for chain in model.chains:
            echo("    " + " ← ".join(chain))
    for model in impact.models.values():
        if not model.affected:
            echo(f"model {model.name}: not affected")
    for stage in impact.stages.values():
        if stage.affected:
            echo(f"stage {stage.name}: affected")
            for chain in stage.chains:
                echo("    " + " ← ".join(chain))
    untouched = [s.name for s in impact.stages.values() if not s.affected]
    if untouched:
        echo("not affected: " + ", ".join(untouched))
    echo(f"{len(impact.affected_stages)} of {len(impact.stages)} stages and "
         f"{len(affected)} of {len(impact.models)} models affected")


def register(app: typer.Typer) -> None:
    @app.command("affected")
    def affected(
        base: Annotated[str, typer.Option(
            help="Compare with the merge base of this revision (like `git diff BASE...`); "
                 "`auto`: the pull request's base or the pushed range, from the CI "
                 "environment.")],
        head: Annotated[str | None, typer.Option(
            help="Revision to inspect [default: the working tree, uncommitted changes "
                 "included].")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> int:
        """List the stages and models a change affects, with the chain of reasons.

        Computed from git alone: nothing is checked out or run.

        Examples:

          sluice affected --base main

          sluice affected --base origin/main --head HEAD --json

          sluice affected --base auto   # in CI: what this pull request or push changed
        """
        from sluice.ci.revision import resolve_base
        from sluice.pipeline.changes import compute_impact
        from sluice.util.git import Repo
        from sluice.workspace.project import find_root, load_project

        root = find_root()
        if base == "auto":
            base = resolve_base(root, base,
                                default_branch=load_project().config.spec.ci.default_branch)
        impact = compute_impact(Repo.open(root), base, head)
        if as_json:
            print_json(impact.to_json())
        else:
            print_impact(impact)
        return 0
