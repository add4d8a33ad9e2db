"""``sluice init``: write a starter sluice.yaml, or copy an example project."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sluice.cli.output import echo


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init(
        example: Annotated[str | None, typer.Option(
            help="Copy this example project (e.g. `churn`) into the folder, which must be empty.")
        ] = None,
        force: Annotated[bool, typer.Option(help="Overwrite an existing sluice.yaml.")] = False,
        path: Annotated[Path, typer.Argument(help="Folder to initialise.")] = Path("."),
    ) -> int:
        """Create sluice.yaml (a commented starter) or a whole example project.

        Examples:

          sluice init

          sluice init --example churn my-project
        """
        from sluice.orchestrate.init import copy_example, write_starter

        if example:
            written = copy_example(example, path)
            echo(f"copied example `{example}` into {path} ({len(written)} files)")
            echo("next: cd into it, `git init`, then `sluice run`")
        else:
            written = write_starter(path, force=force)
            echo(f"wrote {' and '.join(str(p) for p in written)}; edit the stages, then run "
                 "`sluice plan`")
        echo("stage outputs and pinned data are git-ignored for you (lines added to "
             ".gitignore when they are first written); commit .gitignore")
        return 0
