"""The static command table (sluice.cli.commands) and the lazily loaded commands."""

from __future__ import annotations

import ast
from pathlib import Path

import click
import pytest
import typer

from sluice.cli.app import app
from sluice.cli.commands import COMMANDS
from sluice.cli.lazy import LazyGroup, load_command
from tests.unit._util import cli_imports

CLI_DIR = Path(__file__).resolve().parents[3] / "src" / "sluice" / "cli"


def first_paragraph(text: str | None) -> str:
    return " ".join((text or "").strip().split("\n\n")[0].split())


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_row_names_the_module_that_makes_it_with_its_help(name: str) -> None:
    command = load_command(name)
    assert command.name == name
    assert first_paragraph(command.help) == COMMANDS[name][1], \
        f"update the help of `{name}` in sluice/cli/commands.py"


def test_every_command_a_module_registers_is_in_the_table() -> None:
    holder = typer.Typer()
    for module in sorted({m for m, _ in COMMANDS.values()}):
        __import__(module, fromlist=["register"]).register(holder)
    made = set(typer.main.get_group(holder).commands)
    assert made == set(COMMANDS), "sluice/cli/commands.py and the modules disagree"


def test_every_command_module_is_reachable_from_the_table() -> None:
    # A new cli/*_cmd.py is either a row of the table or registered by one (as
    # drift_cmd and validate_cmd are, into `sluice data`).
    listed = {m.rsplit(".", 1)[1] for m, _ in COMMANDS.values()}
    imported: set[str] = set()
    for name in listed:
        tree = ast.parse((CLI_DIR / f"{name}.py").read_text())
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                     for alias in node.names}
        imported |= {node.module.rsplit(".", 1)[-1] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module}
    for path in CLI_DIR.glob("*_cmd.py"):
        assert path.stem in listed | imported, f"{path.name} is not reachable from COMMANDS"


def test_help_lists_every_command_without_importing_one() -> None:
    shown, modules = cli_imports(CLI_DIR, "--help")
    assert [m for m in modules if m.startswith("sluice.cli.") and m.endswith("_cmd")] == []
    commands = shown.split("Commands:\n", 1)[1]
    assert [line.split()[0] for line in commands.splitlines() if line.strip()] == list(COMMANDS)


# What `sluice --help` needs is typer and click and the table; never a command's part
# of the core, the config, the database, nor rich (typer is told it is absent).
NOT_FOR_HELP = ("rich", "pydantic", "sqlalchemy", "yaml", "xxhash", "sluice.config",
                "sluice.workspace", "sluice.pipeline", "sluice.db", "sluice.registry",
                "sluice.data", "sluice.orchestrate", "sluice.util")


def test_help_with_ten_more_commands_imports_none_of_them_nor_the_core() -> None:
    # The open issues add about ten commands: the table grows, what --help imports does not.
    extra = {f"extra{i}": (f"sluice.cli.extra{i}_cmd", f"Extra command {i}.") for i in range(10)}
    setup = f"import sluice.cli.commands as table\ntable.COMMANDS.update({extra!r})"
    shown, modules = cli_imports(CLI_DIR, "--help", setup=setup)
    commands = shown.split("Commands:\n", 1)[1]
    assert [line.split()[0] for line in commands.splitlines() if line.strip()] == \
        [*COMMANDS, *extra]
    assert [m for m in modules if m.startswith("sluice.cli.") and m.endswith("_cmd")] == []
    assert [m for m in modules if m.split(".")[0] in NOT_FOR_HELP
            or any(m == p or m.startswith(p + ".") for p in NOT_FOR_HELP)] == []


def test_the_help_line_of_a_loaded_command_is_the_same_as_from_the_table() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, LazyGroup)
    before = group.get_help(click.Context(group, info_name="sluice"))
    for name in COMMANDS:
        group.get_command(click.Context(group), name)
    after = group.get_help(click.Context(group, info_name="sluice"))
    assert before == after
