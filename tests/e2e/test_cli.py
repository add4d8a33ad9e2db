"""End-to-end: the command line itself — help, exit codes, errors, init."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import git, sluice


def test_help_lists_commands_with_examples(tmp_path: Path) -> None:
    # How fast it starts is measured in benchmarks/, never asserted here; that --help
    # imports no command module is tested in tests/unit/cli/test_commands.py.
    result = sluice(tmp_path, "--help")
    for command in ("init", "plan", "run", "status", "stage"):
        assert command in result.stdout
    assert "Examples:" in result.stdout


@pytest.mark.parametrize("command", ["init", "plan", "run", "status"])
def test_each_command_help_has_examples(tmp_path: Path, command: str) -> None:
    result = sluice(tmp_path, command, "--help")
    assert "Examples:" in result.stdout and f"sluice {command}" in result.stdout


def test_no_config_is_a_clear_error_with_exit_code_2(tmp_path: Path) -> None:
    result = sluice(tmp_path, "run", check=2)
    assert result.stderr.startswith("error: no sluice.yaml in ")
    assert "sluice init" in result.stderr and "Traceback" not in result.stderr


def test_config_error_names_file_line_and_fix(repo: Path) -> None:
    (repo / "sluice.yaml").write_text("stages:\n  train:\n    cmd: echo\n    deps_on: [x]\n")
    result = sluice(repo, "status", check=2)
    assert result.stderr == (
        "error: unknown key `deps_on` in stage `train`; did you mean `deps`? "
        "(sluice.yaml:4:5)\n  hint: valid keys: cmd, deps, description, discover_imports, "
        "entry_point, env, executor, flow, inputs, kind, outs, parameters, params, project, "
        "resources, timeout, uses\n")


def test_unknown_target_suggests_the_closest(repo: Path) -> None:
    (repo / "sluice.yaml").write_text("stages:\n  train:\n    cmd: echo\n")
    result = sluice(repo, "run", "trian", check=2)
    assert "no stage or model named `trian`; did you mean `train`?" in result.stderr


def test_bad_option_is_usage_error(repo: Path) -> None:
    (repo / "sluice.yaml").write_text("stages:\n  train:\n    cmd: echo\n")
    result = sluice(repo, "run", "--jobs", "0", check=2)
    assert "--jobs" in result.stderr and "Traceback" not in result.stderr


def test_resources_beyond_the_machine_are_refused_before_running(repo: Path) -> None:
    (repo / "sluice.yaml").write_text(
        "stages:\n  train:\n    cmd: touch ran\n    resources: {gpus: 4}\n")
    result = sluice(repo, "run", check=2, env={"SLUICE_GPUS": "0"})
    assert "stage `train` needs 4 GPU(s) but 0 are available" in result.stderr
    assert not (repo / "ran").exists()


def test_init_writes_a_valid_starter_and_refuses_to_overwrite(repo: Path) -> None:
    assert "and" in sluice(repo, "init").stdout  # sluice.yaml and the params.yaml it names
    text = (repo / "sluice.yaml").read_text()
    assert text.startswith("# sluice.yaml")
    assert "already exists" in sluice(repo, "init", check=2).stderr
    # The starter is valid as written: plan only complains about the files it names.
    assert (repo / "params.yaml").read_text().startswith("# Values")
    (repo / "params.yaml").write_text("train:\n  lr: 0.1\n")
    sluice(repo, "init", "--force")
    assert (repo / "params.yaml").read_text() == "train:\n  lr: 0.1\n"  # never overwritten
    plan = sluice(repo, "plan")
    assert "will fail: dependency `src/features.py` of stage `features` does not exist" \
        in plan.stdout


def test_init_example_copies_a_runnable_project(tmp_path: Path) -> None:
    target = tmp_path / "churn"
    sluice(tmp_path, "init", "--example", "churn", str(target))
    assert (target / "sluice.yaml").is_file() and (target / "params.yaml").is_file()
    git(target, "init", "-q")
    plan = sluice(target, "plan", "--json")
    assert '"action": "run"' in plan.stdout
    assert "not empty" in sluice(tmp_path, "init", "--example", "churn", str(target),
                                 check=2).stderr
    assert "did you mean `churn`" in sluice(tmp_path, "init", "--example", "chrun",
                                            str(tmp_path / "x"), check=2).stderr


def test_keyboard_interrupt_exits_130(repo: Path) -> None:
    import signal

    (repo / "sluice.yaml").write_text("stages:\n  hang:\n    cmd: touch started; sleep 30\n")
    # As in a terminal: a shell running us in the background may have set SIGINT to
    # "ignore", which the child would inherit.
    proc = subprocess.Popen([sys.executable, "-m", "sluice", "run"], cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120  # a loaded machine may take its time to get there
    while not (repo / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err


def test_plan_explain_prints_words_not_python_reprs(repo: Path) -> None:
    (repo / "sluice.yaml").write_text("stages:\n  s:\n    cmd: echo > ${outs.o}\n"
                                      "    outs: {o: build/o.txt, p: build/p.txt}\n")
    text = sluice(repo, "plan", "--explain", "s").stdout
    assert "outs:                o: build/o.txt, p: build/p.txt\n" in text
    assert "discover_imports:    yes\n" in text and "upstream:            -\n" in text
    assert "{'" not in text and "True" not in text
