"""End-to-end: the churn example project through its tiers, as a new user runs it."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.conftest import git, sluice

pytestmark = pytest.mark.slow


def _run(project: Path, *args: str, check: int = 0) -> dict[str, str]:
    result = sluice(project, "run", "--json", *args, check=check, timeout=600)
    return {s["stage"]: s["status"] for s in json.loads(result.stdout)["stages"]}


def test_churn_example_through_pr_and_merge_tiers(tmp_path: Path) -> None:
    churn = tmp_path / "churn"
    sluice(tmp_path, "init", "--example", "churn", str(churn))
    git(churn, "init", "-q", "-b", "main")
    git(churn, "add", "-A")
    git(churn, "-c", "user.email=a@b", "-c", "user.name=n", "commit", "-q", "-m", "churn")

    # pr: a smoke training on 2 % of the data, evaluated on the full test set, in < 1 min.
    started = time.monotonic()
    statuses = _run(churn, "--tier", "pr")
    assert time.monotonic() - started < 60
    assert set(statuses.values()) == {"ran"}
    metrics = json.loads((churn / "reports/churn/metrics.json").read_text())
    assert metrics["n"] > 30_000

    # merge: full data; the data steps and the checks are reused.
    statuses = _run(churn, "--tier", "merge")
    assert statuses["train_churn"] == "ran" and statuses["generate"] == "cached"
    assert statuses["unit"] == "cached"
    ledger = json.loads(sluice(churn, "budget", "--json").stdout)
    assert set(ledger["tiers"]) >= {"pr", "merge"}

    # A broken unit test stops the pr tier before any training starts.
    test_file = next((churn / "tests").glob("test_*.py"))
    test_file.write_text(test_file.read_text() + "\n\ndef test_broken() -> None:\n"
                                                 "    assert 1 == 2\n")
    result = sluice(churn, "run", "--tier", "pr", check=1, timeout=600)
    assert re.search(r"FAILED +unit", result.stderr)
    assert re.search(r"gated +train_churn +gated by failing check `unit`", result.stderr)
    assert "did not start because a check failed" in result.stdout
    assert not re.search(r"running +train_churn", result.stderr)
