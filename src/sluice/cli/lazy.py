"""A command group that imports a command's module only when that command is used.

`sluice --help` lists the commands from the static table in sluice.cli.commands;
`sluice run ...` (or `sluice run --help`) imports sluice.cli.run_cmd and nothing
of the other commands. Each command module keeps its `register(app)` function;
this group calls it on a throw-away Typer app and takes the command it made.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import MutableMapping
from typing import Any

import click
import typer
from typer.core import TyperGroup

from sluice.cli.commands import COMMANDS
from sluice.cli.completion import COMPLETE_VAR, completion_options, enable_completion_classes


def load_command(name: str) -> click.Command:
    """The click command ``name``, built by its module's ``register``."""
    module = importlib.import_module(COMMANDS[name][0])
    holder = typer.Typer(rich_markup_mode=None, add_completion=False)
    module.register(holder)
    group = typer.main.get_group(holder)
    command = group.commands.get(name)
    if command is None:  # the table names a module that does not make the command
        raise LookupError(f"{COMMANDS[name][0]} does not register the command {name!r}")
    return command


class LazyGroup(TyperGroup):
    """sluice's top-level group: commands come from the table, loaded on first use."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.extend(completion_options())

    def _main_shell_completion(self, ctx_args: MutableMapping[str, Any], prog_name: str,
                               complete_var: str | None = None) -> None:
        if os.environ.get(complete_var or COMPLETE_VAR):  # a shell asks: typer's protocol
            enable_completion_classes()
        super()._main_shell_completion(ctx_args, prog_name, complete_var)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *(n for n in super().list_commands(ctx) if n not in COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.commands[cmd_name] = load_command(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # As click's own, but an unloaded command is shown from its table row: a bare
        # click.Command with that help gives the same shortened line, without the import.
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            command = self.commands.get(name) or click.Command(name, help=COMMANDS[name][1])
            if not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)
