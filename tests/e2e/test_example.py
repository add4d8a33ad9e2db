"""End-to-end: the churn example project through its tiers, as a new user runs it."""

from __future__ import annotations

import json
import re
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

    # pr: a smoke training on 2 % of the data, evaluated on the full test set. (How fast
    # is benchmarks/' business: tests must pass on a loaded machine.)
    statuses = _run(churn, "--tier", "pr")
    assert set(statuses.values()) == {"ran"}
    metrics = json.loads((churn / "reports/churn/metrics.json").read_text())
    assert metrics["n"] > 30_000

    # merge: full data; the data steps and the checks are reused. Its wall estimate
    # scales the pr training up 50×: on a loaded machine that can pass the 1 h budget.
    statuses = _run(churn, "--tier", "merge", "--allow-over-budget")
    assert statuses["train_churn"] == "ran" and statuses["generate"] == "cached"
    assert statuses["unit"] == "cached"
    ledger = json.loads(sluice(churn, "budget", "--json").stdout)
    assert set(ledger["tiers"]) >= {"pr", "merge"}

    # The merge tier's report: metrics, intervals, verdicts per model, and plots.
    report = json.loads(sluice(churn, "report", "--json").stdout)
    churn_model = next(m for m in report["models"] if m["model"] == "churn")
    assert churn_model["verdict"] == "PASS"
    assert {g["slice"] for g in churn_model["gates"]} >= {None, "region=north"}
    auc = next(r for r in churn_model["metrics"] if r["metric"] == "roc_auc")
    assert auc["low"] < auc["delta"] < auc["high"]
    folder = churn / ".sluice/reports" / report["run_id"]
    assert {"churn-deltas.png", "churn-roc.png", "churn-slices.png"} <= \
        {p.name for p in folder.glob("*.png")}
    markdown = sluice(churn, "report", "--format", "markdown").stdout
    assert "### Model `churn`: ✅ PASS" in markdown and "region=west" in markdown
    assert "Reported by the stage (point values, no interval)" in markdown
    assert {r["metric"] for r in churn_model["reported"]} >= {"roc_auc", "log_loss"}

    # The merge tier registered both models and moved staging; production needs approval.
    models = {m["model"]: m for m in json.loads(sluice(churn, "models", "list",
                                                       "--json").stdout)}
    assert models["churn"]["aliases"] == {"staging": 1}
    asked = sluice(churn, "promote", "churn", "--to", "production", "--actor", "alice")
    assert "request 1 needs 1 approval(s): `sluice approve 1`" in asked.stdout
    sluice(churn, "approve", "1", "--actor", "bob")
    history = sluice(churn, "models", "history", "churn").stdout
    assert re.search(r"production +\(none\) → v1 +approve +by bob", history)

    # A deliberately degraded model (trained on shuffled labels) fails its gates.
    params = churn / "params.yaml"
    params.write_text(params.read_text().replace("shuffle_labels: false",
                                                 "shuffle_labels: true"))
    degraded = sluice(churn, "run", "--tier", "merge", check=1, timeout=600)
    assert "model churn: FAIL" in degraded.stdout
    assert re.search(r"FAIL +roc_auc max_regression 0.01", degraded.stdout)
    params.write_text(params.read_text().replace("shuffle_labels: true",
                                                 "shuffle_labels: false"))

    # A broken unit test stops the pr tier before any training starts.
    test_file = next((churn / "tests").glob("test_*.py"))
    test_file.write_text(test_file.read_text() + "\n\ndef test_broken() -> None:\n"
                                                 "    assert 1 == 2\n")
    result = sluice(churn, "run", "--tier", "pr", check=1, timeout=600)
    assert re.search(r"FAILED +unit", result.stderr)
    assert re.search(r"gated +train_churn +gated by failing check `unit`", result.stderr)
    assert "did not start because a check failed" in result.stdout
    assert not re.search(r"running +train_churn", result.stderr)
    test_file.write_text(test_file.read_text().replace(
        "\n\ndef test_broken() -> None:\n    assert 1 == 2\n", ""))

    # A pull request that corrupts the data (a renamed column, a negative density)
    # stops the pr tier at the schema check, before any training.
    git(churn, "checkout", "-q", "-b", "corrupt-data")
    regions = churn / "data/regions.csv"
    regions.write_text(regions.read_text().replace("region,", "area,", 1)
                       .replace("north,85.2", "north,-85.2"))
    git(churn, "-c", "user.email=a@b", "-c", "user.name=n", "commit", "-q", "-am",
        "corrupt the regions")
    result = sluice(churn, "run", "--tier", "pr", "--base", "main", check=1, timeout=600)
    assert re.search(r"FAILED +validate-regions", result.stderr)
    assert "population_density [min] 1 row: values below min 0" in result.stderr
    assert "region [required]" in result.stderr
    assert re.search(r"gated +train_churn +gated by failing check `validate-regions`",
                     result.stderr)
    assert "drift warning against base" in result.stderr + result.stdout
    report = json.loads(sluice(churn, "report", "--json").stdout)
    assert report["data"]["validation"][0]["ok"] is False


def test_example_ships_current_ci_files(tmp_path: Path) -> None:
    churn = tmp_path / "churn"
    sluice(tmp_path, "init", "--example", "churn", str(churn))
    for path in (".github/workflows/sluice.yml", ".gitlab-ci.yml", "Jenkinsfile",
                 ".circleci/config.yml", "schemas/regions.yaml"):
        assert (churn / path).is_file(), path
    sluice(churn, "ci", "check")
    workflow = churn / ".github/workflows/sluice.yml"
    workflow.write_text(workflow.read_text().replace("timeout-minutes: 20", "timeout-minutes: 5"))
    drifted = sluice(churn, "ci", "check", check=1)
    assert ".github/workflows/sluice.yml" in drifted.stdout + drifted.stderr
    # Deleting the "Generated by" line does not make a file someone else's.
    circle = churn / ".circleci/config.yml"
    circle.write_text(circle.read_text().split("\n", 1)[1])
    drifted = sluice(churn, "ci", "check", check=1)
    assert "DRIFTED  .circleci/config.yml" in drifted.stdout
