"""End-to-end: a stage that prints a credential leaves it in no output, log or report."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import sluice
from tests.e2e.pipelines import MODEL_PIPELINE, PREDICT, bootstrap_first_version, write_project
from tests.processes import wait_for

SECRET = "s3cr3t-value-7f4e1d"
CONFIG = MODEL_PIPELINE + """\
    gates:
      - {metric: roc_auc, min: 0.55}
      - {metric: roc_auc, max_regression: 0.01}
    baseline: {alias: staging}
tiers:
  merge: {select: all, register: true, promote: staging}
promotion:
  staging: {gates: pass}
"""


def test_a_leaked_secret_is_masked_in_output_logs_and_reports(repo: Path) -> None:
    (repo / "sluice.yaml").write_text(
        "stages:\n  leak:\n    kind: check\n"
        "    cmd: echo \"token is $MY_API_TOKEN\"; exit 1\n"
        "tiers:\n  pr: {trigger: pull_request, select: all}\n")
    result = sluice(repo, "run", "--tier", "pr", check=1, env={"MY_API_TOKEN": SECRET})
    assert "token is ***" in result.stdout + result.stderr
    assert SECRET not in result.stdout + result.stderr
    log = (repo / ".sluice/logs/leak.log").read_text()
    assert "token is ***" in log
    for path in (repo / ".sluice").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    report = sluice(repo, "report", "--format", "markdown", env={"MY_API_TOKEN": SECRET})
    assert SECRET not in report.stdout


DB_PASS = "db-pass-3c9a51"
HOOK = "hook-value-8d2e77"
# A stage that prints two secrets: one named like a secret (`*_PASS`), one that only
# `ci.secrets` names; then it says it is ready and sleeps until stopped.
LEAKY = """\
stages:
  leak:
    cmd: echo "MY_DB_PASS=$MY_DB_PASS hook=$DEPLOY_HOOK"; echo ready; sleep 120
ci:
  secrets: [DEPLOY_HOOK]
"""


def _start_run(repo: Path) -> subprocess.Popen[str]:
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    return subprocess.Popen(
        [sys.executable, "-m", "sluice", "run"], cwd=repo, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PATH": path, "MY_DB_PASS": DB_PASS, "DEPLOY_HOOK": HOOK},
        # As in a terminal: SIGINT may be ignored where the tests run (in the background).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_until_ready(log: Path, proc: subprocess.Popen[str]) -> None:
    def ready() -> bool:
        assert proc.poll() is None, proc.communicate()
        return log.exists() and b"ready" in log.read_bytes()

    wait_for(ready, timeout=120, what="for the stage to get going")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_a_run_stopped_mid_stage_leaves_a_masked_log(repo: Path, sig: signal.Signals) -> None:
    (repo / "sluice.yaml").write_text(LEAKY)
    log = repo / ".sluice/logs/leak.log"
    proc = _start_run(repo)
    _wait_until_ready(log, proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    if sig != signal.SIGKILL:
        assert proc.returncode == 130, (out, err)
        assert "interrupted" in err
    text = log.read_text()
    assert text.startswith("MY_DB_PASS=*** hook=***\n"), text
    assert DB_PASS not in text and HOOK not in text
    for path in (repo / ".sluice").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert DB_PASS.encode() not in data and HOOK.encode() not in data, path


def test_the_baseline_re_evaluation_log_is_masked(repo: Path) -> None:
    config = CONFIG.replace("    cmd: python3 predict.py",
                            '    cmd: echo "pass=$MY_DB_PASS"; python3 predict.py')
    write_project(repo, config, files={"predict.py": PREDICT,
                                       "params.yaml": "quality: 0.3\nrows: 600\n"})
    env = {"MY_DB_PASS": DB_PASS}
    bootstrap_first_version(repo, env)
    # A new test set: the baseline's artifact is run through `evaluate` again.
    (repo / "params.yaml").write_text("quality: 0.3\nrows: 700\n")
    result = sluice(repo, "run", "--tier", "merge", env=env, check=None)
    assert "the test set changed since version 1 was evaluated" in result.stdout
    log = repo / ".sluice/logs/evaluate-baseline.log"
    assert log.read_text() == "pass=***\n"
    assert DB_PASS not in (repo / ".sluice/logs/evaluate.log").read_text()
