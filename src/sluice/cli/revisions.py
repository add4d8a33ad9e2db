"""What the ``metrics``, ``plots`` and ``params`` diff commands share: their arguments and group.

Each is a one-command group (``sluice metrics diff``), as in DVC, so later
subcommands (``metrics show``) have a place to go.
"""

from __future__ import annotations

from typing import Annotated

import typer

OldRevision = Annotated[str | None, typer.Argument(
    help="The older revision [default: the base branch, `ci.default_branch`].")]
NewRevision = Annotated[str | None, typer.Argument(
    help="The newer revision [default: the working tree's last run].")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def command_group(app: typer.Typer, name: str, help_text: str) -> typer.Typer:
    """A sub-app ``sluice NAME`` added to ``app``; its commands are registered on it."""
    group = typer.Typer(help=help_text, no_args_is_help=True)
    app.add_typer(group, name=name)
    return group
