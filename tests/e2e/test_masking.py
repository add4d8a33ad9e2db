"""End-to-end: a stage that prints a credential leaves it in no output, log or report."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import sluice

SECRET = "s3cr3t-value-7f4e1d"


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
