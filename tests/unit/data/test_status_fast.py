"""`sluice data status` on its fast path: sluice.lock read without yaml, the same answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sluice.config import lockfile
from sluice.config.lockfile import DataPin, parse_lock, render_lock
from sluice.util.yamlsource import parse_yaml

H = "0123456789abcdef" * 2


@pytest.mark.parametrize("paths", [
    [], ["data/small", "data/large"], ["raw.csv"], ["a/b-c_d.e/f", "Z"],
])
def test_a_lock_as_sluice_writes_it_is_read_without_yaml(paths: list[str]) -> None:
    pins = {p: DataPin(p, H + (".dir" if i % 2 else ""), 10 ** i, i + 1)
            for i, p in enumerate(paths)}
    text = render_lock(pins)
    assert lockfile._parse_plain_lock(text) == pins
    assert parse_lock(text) == pins


@pytest.mark.parametrize("path", [
    "yes", "No", "null", "on", "1e3", "0x10", "2024-01-01", ".inf", "with space",
    "data/ünï", "a:b", "#x", "-a",
])
def test_keys_yaml_reads_otherwise_go_through_yaml(path: str) -> None:
    text = render_lock({path: DataPin(path, H, 1, 1)})
    assert lockfile._parse_plain_lock(text) is None
    data = parse_yaml(text, "sluice.lock").data
    assert parse_lock(text) == {str(k): DataPin(str(k), H, 1, 1) for k in data["data"]}


@pytest.mark.parametrize("text", [
    f"version: 1\ndata:\n  a:\n    hash: {H}\n    size: 01\n    nfiles: 1\n",
    f"version: 1\ndata:\n  a:\n    hash: {H} # c\n    size: 1\n    nfiles: 1\n",
    f"version: 1\ndata:\n  a:\n    size: 1\n    hash: {H}\n    nfiles: 1\n",
    "version: 1\r\ndata: {}\r\n",
    "version: 2\ndata: {}\n",
    f"version: 1\ndata:\n  a:\n    hash: {H}\n    size: 1\n",
    "data: {}\nversion: 1\n",
    "",
])
def test_anything_else_is_left_to_yaml(text: str) -> None:
    assert lockfile._parse_plain_lock(text) is None


def _sluice(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    code = ("import sys, json\n"
            f"sys.argv = ['sluice', *{list(args)!r}]\n"
            "from sluice.cli.main import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
            "print('--- modules ---')\n"
            "print(json.dumps([code, sorted(sys.modules)]))\n")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def _run(cwd: Path, *args: str) -> tuple[str, int, list[str]]:
    proc = _sluice(cwd, *args)
    out, tail = proc.stdout.rsplit("--- modules ---\n", 1)
    code, modules = json.loads(tail)
    return out, code, modules


@pytest.fixture
def pinned(tmp_path: Path) -> Path:
    root = tmp_path / "p"
    (root / "data" / "d").mkdir(parents=True)
    (root / "sluice.yaml").write_text("version: 1\nstages: {}\n")
    for i in range(5):
        (root / "data" / "d" / f"f{i}").write_text(str(i))
    (root / "data" / "one.csv").write_text("x\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    assert _run(root, "data", "add", "data/d", "data/one.csv")[1] == 0
    return root


HEAVY = ("typer", "click", "yaml", "pydantic", "sqlalchemy")
# Light, but each costs milliseconds a warm status spends mostly on stat calls: no git
# process outside a DVC repository, and no dataclasses (inspect comes with it).
STARTUP = ("subprocess", "dataclasses", "inspect")


@pytest.mark.parametrize("edit", ["none", "modified", "missing"])
@pytest.mark.parametrize("as_json", [False, True])
def test_fast_status_answers_as_the_typer_path(pinned: Path, edit: str, as_json: bool,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    if edit == "modified":
        (pinned / "data" / "d" / "f3").write_text("changed")
    elif edit == "missing":
        (pinned / "data" / "one.csv").unlink()
    args = ["data", "status", *(["--json"] if as_json else [])]
    _run(pinned, *args)  # caches the config
    out, code, modules = _run(pinned, *args)
    assert code == (0 if edit == "none" else 1)
    assert [m for m in modules if m.split(".")[0] in HEAVY] == []
    assert [m for m in modules if m in STARTUP] == []

    from sluice.cli.app import app
    from sluice.cli.fast import fast_command

    assert fast_command(args) is not None
    monkeypatch.chdir(pinned)
    import io
    from contextlib import redirect_stdout

    buffer = io.StringIO()
    with redirect_stdout(buffer):
        typer_code = app(args, standalone_mode=False)
    assert (buffer.getvalue(), typer_code) == (out, code)


@pytest.mark.parametrize("argv", [["data", "status", "-h"], ["data", "status", "x"],
                                  ["data", "status", "--json", "--json"], ["data", "add"]])
def test_other_data_commands_go_through_typer(argv: list[str]) -> None:
    from sluice.cli.fast import fast_command

    assert fast_command(argv) is None


def test_a_fresh_status_hashes_all_pins_together(pinned: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from sluice.data.status import data_status
    from sluice.util import hashing
    from sluice.workspace.project import load_project

    (pinned / ".sluice" / "stat-index").unlink(missing_ok=True)  # as in a fresh clone
    calls: list[list[str]] = []
    real = hashing.hash_files

    def noting(paths: list[str], sizes: list[int]) -> list[str]:
        calls.append([os.path.relpath(p, pinned) for p in paths])
        return real(paths, sizes)

    monkeypatch.setattr(hashing, "hash_files", noting)
    states = data_status(load_project(pinned))
    assert [(s.path, s.state) for s in states] == [("data/d", "unchanged"),
                                                   ("data/one.csv", "unchanged")]
    assert len(calls) == 1 and sorted(calls[0]) == ["data/d/f0", "data/d/f1", "data/d/f2",
                                                     "data/d/f3", "data/d/f4", "data/one.csv"]
    (pinned / "data" / "d" / "f1").unlink()
    (pinned / "data" / "one.csv").unlink()
    assert [(s.path, s.state) for s in data_status(load_project(pinned))] == [
        ("data/d", "modified"), ("data/one.csv", "missing")]


def test_a_fresh_clone_is_checked_without_loading_the_config(pinned: Path) -> None:
    import shutil

    shutil.rmtree(pinned / ".sluice")  # no config cache, no stat index
    out, code, modules = _run(pinned, "data", "status", "--json")
    assert code == 0 and {r["state"] for r in json.loads(out)} == {"unchanged"}
    assert [m for m in modules if m.split(".")[0] in HEAVY] == []
    assert [m for m in modules if m in STARTUP] == []
    assert (pinned / ".sluice" / ".gitignore").is_file()  # its state stays out of git


def test_the_root_is_found_by_the_config_file_name() -> None:
    from sluice.config.base import CONFIG_FILE
    from sluice.workspace import root

    assert root.CONFIG_FILE == CONFIG_FILE
