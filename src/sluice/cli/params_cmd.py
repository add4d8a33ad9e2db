"""``sluice params diff``: what the params file says at two revisions, and who reads it."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from sluice.cli.output import echo, print_json
from sluice.cli.revisions import JsonFlag, command_group


def _value(row: Any, side: str) -> str:
    from sluice.config.interpolate import format_value

    if (side == "old" and row.state == "added") or (side == "new" and row.state == "removed"):
        return "—"
    return format_value(getattr(row, side)) or "null"


def print_diff(diff: Any, show_all: bool) -> None:
    rows = diff.rows if show_all else diff.changed
    echo(f"params ({diff.params_file or 'no params file'}): {diff.old_label} → {diff.new_label}")
    if not rows:
        echo("no params changed")
        return
    width = max(len(r.key) for r in rows)
    for row in rows:
        readers = f"  (read by {', '.join(row.stages)})" if row.stages else "  (no stage reads it)"
        echo(f"  {row.key:<{width}}  {row.state:<9}  {_value(row, 'old')} → "
             f"{_value(row, 'new')}{readers}")
    echo(f"{len(diff.changed)} of {len(diff.rows)} params changed")


def register(app: typer.Typer) -> None:
    params_app = command_group(app, "params", "Params: compare the params file between revisions.")

    @params_app.command("diff")
    def diff(
        old: Annotated[str, typer.Argument(help="The older revision.")] = "HEAD",
        new: Annotated[str | None, typer.Argument(
            help="The newer revision [default: the working tree].")] = None,
        show_all: Annotated[bool, typer.Option("--all", help="List unchanged params too.")
                            ] = False,
        as_json: JsonFlag = False,
    ) -> int:
        """Compare params leaf by leaf between two revisions, with the stages that read each.

        Read from git alone; nothing is checked out. Exit 0 whether or not anything changed.

        Examples:

          sluice params diff                    # HEAD against the working tree

          sluice params diff main HEAD --json

          sluice params diff v1.2 --all
        """
        from sluice.pipeline.params_diff import params_diff
        from sluice.util.git import Repo
        from sluice.workspace.project import find_root

        result = params_diff(Repo.open(find_root()), old, new)
        if as_json:
            print_json(result.to_json(show_all))
        else:
            print_diff(result, show_all)
        return 0

