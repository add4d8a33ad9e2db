"""sluice.cli.fast: the command lines answered without typer, parsed as typer would."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from pathlib import Path
from typing import Any

import pytest

from sluice.cli import models_cmd, run_cmd
from sluice.cli.app import app
from sluice.cli.fast import fast_command
from tests.unit._util import cli_imports


def _calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    signature = inspect.signature(run_cmd.run_stages)

    def record(*args: Any, **kwargs: Any) -> int:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        arguments["targets"] = list(arguments["targets"] or [])  # typer: [] or None
        calls.append(arguments)
        return 0

    monkeypatch.setattr(run_cmd, "run_stages", record)
    return calls


@pytest.mark.parametrize("argv", [["run"], ["run", "train"], ["run", "a", "b", "c"]])
def test_a_fast_form_runs_what_typer_would_run(monkeypatch: pytest.MonkeyPatch,
                                               argv: list[str]) -> None:
    calls = _calls(monkeypatch)
    command = fast_command(argv)
    assert command is not None and command() == 0
    assert app(argv, standalone_mode=False) == 0
    assert len(calls) == 2 and calls[0] == calls[1]


@pytest.mark.parametrize("argv", [
    ["models", "show", "m"], ["models", "show", "m@production", "--json"],
    ["models", "show", "--json", "m:3"],
])
def test_models_show_runs_what_typer_would_run(monkeypatch: pytest.MonkeyPatch,
                                               argv: list[str]) -> None:
    calls: list[tuple[str, bool]] = []

    def record(ref: str, as_json: bool = False) -> int:
        calls.append((ref, as_json))
        return 0

    monkeypatch.setattr(models_cmd, "show_version", record)
    command = fast_command(argv)
    assert command is not None and command() == 0
    assert app(argv, standalone_mode=False) == 0
    assert len(calls) == 2 and calls[0] == calls[1]


@pytest.mark.parametrize("argv", [
    [], ["--help"], ["run", "--help"], ["run", "-h"], ["run", "--tier", "pr"],
    ["run", "train", "-j", "2"], ["run", "--", "train"], ["run", ""], ["plan"],
    ["status"], ["runs"], ["run", "--json"], ["models", "show"], ["models", "show", "a", "b"],
    ["models", "show", "m", "--json", "--json"], ["models", "show", "-h"], ["models", "list"],
    ["models", "history", "m"], ["models", "show", "m", "--jso"],
])
def test_anything_else_goes_through_typer(argv: list[str]) -> None:
    assert fast_command(argv) is None


def test_a_plain_run_with_its_config_cached_imports_no_typer_click_or_yaml(
        tmp_path: Path) -> None:
    (tmp_path / "sluice.yaml").write_text("stages:\n  s:\n    cmd: echo hi\n")
    shown, _ = cli_imports(tmp_path, "run")  # runs the stage; caches the config
    assert "(run " in shown
    shown, modules = cli_imports(tmp_path, "run")  # the no-op
    assert "(run " in shown
    assert [m for m in modules if m.split(".")[0] in ("typer", "click", "yaml")] == []


# Modules a no-op `sluice run` has no use for: the CLI framework, the full config
# validation, the database and the ledger (nothing executed, nothing recorded), budgets,
# change impact (no base revision), reports and evidence (no model evaluated), remote
# hosts, thread pools and did-you-mean matching. A test by module names, never by time.
NOT_ON_A_NOOP_RUN = (
    "typer", "click", "yaml", "pydantic", "sqlalchemy", "statistics", "socket", "difflib",
    "hashlib", "concurrent.futures", "sluice.db", "sluice.pipeline.ledger",
    "sluice.pipeline.budget", "sluice.pipeline.changes", "sluice.report.run",
    "sluice.evaluate.evidence", "sluice.store.layered", "shutil", "tempfile",
    # Nothing starts (issue 15): no executor, no job, no prices, no identity, no remote
    # hosts, no report reuse (no model is evaluated).
    "sluice.execute", "sluice.execute.base", "sluice.execute.local", "queue",
    "sluice.pipeline.costs", "sluice.util.identity", "getpass", "sluice.pipeline.remote",
    "sluice.report", "sluice.report.reuse", "sluice.ci.revision", "sluice.data.fetch",
)


def test_a_noop_run_imports_only_what_a_noop_needs(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "helpers.py").write_text("VALUE = 1\n")
    (tmp_path / "src" / "make.py").write_text(
        "import sys\nfrom helpers import VALUE\nopen(sys.argv[1], 'w').write(str(VALUE))\n")
    (tmp_path / "sluice.yaml").write_text(
        "stages:\n"
        "  a: {cmd: python3 src/make.py a.txt, outs: {o: a.txt}}\n"
        "  b: {cmd: 'cat ${stages.a.outs.o} > b.txt', inputs: [stages.a.outs.o],"
        " outs: {o: b.txt}}\n")
    shown, _ = cli_imports(tmp_path, "run")  # runs both stages; caches the config
    assert "2 ran" in shown
    shown, modules = cli_imports(tmp_path, "run")  # the no-op
    assert "2 cached" in shown
    loaded = set(modules)
    assert sorted(m for m in NOT_ON_A_NOOP_RUN if m in loaded) == []
    # A dataclass without a docstring gets one made by inspect.signature at import.
    undocumented = []
    for name in sorted(m for m in loaded if m.startswith("sluice")):
        for value in vars(importlib.import_module(name)).values():
            if dataclasses.is_dataclass(value) and isinstance(value, type) and \
                    value.__module__ == name and \
                    (value.__doc__ or "").startswith(f"{value.__name__}("):
                undocumented.append(f"{name}.{value.__qualname__}")
    assert undocumented == []
