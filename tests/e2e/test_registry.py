"""End-to-end: registry versions, policies, approvals, rollback, history and races."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import git, sluice
from tests.e2e.pipelines import (
    GATED_TO_STAGING,
    MODEL_PIPELINE,
    PREDICT,
    bootstrap_first_version,
    write_project,
)

pytest_plugins = ["tests.postgres"]

CONFIG = MODEL_PIPELINE + GATED_TO_STAGING + """\
  production: {gates: pass, after: staging, approvals: 1, distinct_approver: true}
"""
FILES = {"predict.py": PREDICT, "params.yaml": "quality: 0.3\nrows: 600\n"}
# CONFIG whose gate also compares each version with the one `staging` holds.
NO_REGRESSION = CONFIG.replace("      - {metric: roc_auc, min: 0.6}\n",
                               "      - {metric: roc_auc, min: 0.55}\n"
                               "      - {metric: roc_auc, max_regression: 0.01}\n"
                               "    baseline: {alias: staging}\n")


def _version(repo: Path, quality: float) -> None:
    (repo / "params.yaml").write_text(f"quality: {quality}\nrows: 600\n")
    sluice(repo, "run", "--tier", "merge", check=None)


@pytest.fixture
def project(repo: Path) -> Path:
    write_project(repo, CONFIG, files=FILES)
    return repo


@pytest.fixture
def bootstrapped(repo: Path) -> Path:
    """NO_REGRESSION with its first version promoted to `staging` by hand."""
    write_project(repo, NO_REGRESSION, files=FILES)
    bootstrap_first_version(repo)
    return repo


def _json(repo: Path, *args: str, check: int = 0) -> object:
    return json.loads(sluice(repo, *args, "--json", check=check).stdout)


def test_merge_registers_and_moves_staging(project: Path) -> None:
    result = sluice(project, "run", "--tier", "merge")
    assert "registered churn version 1 (PASS)" in result.stdout
    assert "`staging` of `churn`: (none) → 1" in result.stdout
    listing = _json(project, "models", "list")
    assert listing == [{"model": "churn", "latest": 1, "versions": 1,
                        "aliases": {"staging": 1}}]
    shown = _json(project, "models", "show", "churn@staging")
    assert shown["verdict"] == "PASS" and shown["lineage"]["tier"] == "merge"
    assert shown["lineage"]["commit"] == git(project, "rev-parse", "HEAD").strip()
    assert shown["gates"][0]["verdict"] == "PASS"


def test_failed_gates_and_skipped_staging_are_refused(project: Path) -> None:
    _version(project, 0.3)   # v1: passes, staging
    _version(project, 0.0)   # v2: AUC 0.5, fails its gate: not promoted
    assert _json(project, "models", "show", "churn")["verdict"] == "FAIL"
    refused = sluice(project, "promote", "churn", "2", "--to", "staging", check=1)
    assert "version 2 did not pass its gates (FAIL)" in refused.stderr
    _version(project, 0.25)  # v3: passes, staging
    skipped = sluice(project, "promote", "churn", "1", "--to", "production", "--actor",
                     "alice", check=0)
    assert "request 1 needs 1 approval" in skipped.stdout  # v1 held staging before
    direct = sluice(project, "promote", "churn", "2", "--to", "production", check=1)
    assert "has not been `staging` yet" in direct.stderr


def test_approval_rejection_and_rollback_with_history(project: Path) -> None:
    _version(project, 0.3)
    _version(project, 0.25)
    ci_actor = {"GITHUB_ACTOR": ""}
    request = _json(project, "promote", "churn", "1", "--to", "production", "--actor", "alice")
    assert request["request_id"] == 1 and request["moved"] is False  # type: ignore[index]
    self_approval = sluice(project, "approve", "1", "--actor", "alice", check=1, env=ci_actor)
    assert "`alice` asked for request 1 and may not approve it" in self_approval.stderr
    approved = sluice(project, "approve", "1", "--actor", "bob", env=ci_actor)
    assert "`production` of `churn`: (none) → 1 (approved by bob)" in approved.stdout
    again = sluice(project, "approve", "1", "--actor", "carol", check=1)
    assert "request 1 is already approved (by bob)" in again.stderr
    second = _json(project, "promote", "churn", "2", "--to", "production", "--actor", "alice")
    sluice(project, "reject", str(second["request_id"]), "--actor", "bob",  # type: ignore[index]
           "--reason", "not now")
    _json(project, "promote", "churn", "2", "--to", "production", "--actor", "alice")
    sluice(project, "approve", "3", "--actor", "bob")
    assert _json(project, "models", "show", "churn@production")["version"] == 2  # type: ignore
    rolled = sluice(project, "rollback", "churn", "--alias", "production", "--actor", "bob",
                    "--reason", "latency")
    assert "rolled back: 2 → 1" in rolled.stdout
    # A second rollback goes further back (v1 had no predecessor), not back to v2.
    again = sluice(project, "rollback", "churn", "--alias", "production", check=1)
    assert "has no previous version to go back to" in again.stderr
    events = _json(project, "models", "history", "churn", "--alias", "production")
    assert [(e["from"], e["to"], e["kind"], e["actor"]) for e in events] == [  # type: ignore
        (None, 1, "approve", "bob"), (1, 2, "approve", "bob"), (2, 1, "rollback", "bob")]
    text = sluice(project, "models", "history", "churn").stdout
    assert "staging" in text and "rollback  by bob: latency" in text


def test_pull_checks_the_artifact_hash(project: Path, tmp_path: Path) -> None:
    sluice(project, "run", "--tier", "merge")
    sluice(project, "models", "pull", "churn@staging", "-o", str(tmp_path / "m.txt"))
    assert (tmp_path / "m.txt").read_text() == "model 0.3\n"
    digest = _json(project, "models", "show", "churn:1")["artifact_hash"]  # type: ignore
    stored = project / ".sluice/cache/objects" / digest[:2] / digest[2:]
    os.chmod(stored, 0o644)
    stored.write_text("tampered\n")
    bad = sluice(project, "models", "pull", "churn:1", "-o", str(tmp_path / "x.txt"), check=1)
    assert "is corrupt" in bad.stderr and not (tmp_path / "x.txt").exists()


def test_unknown_model_version_and_alias(project: Path) -> None:
    sluice(project, "run", "--tier", "merge")
    assert "no model `chrun` in the registry; did you mean `churn`?" in sluice(
        project, "models", "show", "chrun", check=2).stderr
    assert "has no version 9" in sluice(project, "models", "show", "churn:9", check=2).stderr
    assert "has no alias `canary`" in sluice(project, "models", "show", "churn@canary",
                                             check=2).stderr


def test_sixteen_concurrent_promotions_exactly_one_wins(project: Path) -> None:
    _race(project)


def test_sixteen_concurrent_promotions_on_postgresql(
        project: Path, fresh_postgres_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_DATABASE_URL", fresh_postgres_db)
    _race(project)


def _race(project: Path) -> None:
    for quality in (0.3, 0.31, 0.32, 0.33):
        _version(project, quality)
    # staging holds v4 now; 16 processes race to move it, each expecting v4.
    procs = [subprocess.Popen(
        [sys.executable, "-m", "sluice", "promote", "churn", str(1 + i % 3), "--to",
         "staging", "--expect", "4", "--actor", f"racer{i}", "--json"],
        cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(16)]
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read())  # type: ignore[union-attr]
               for p in procs]
    winners = [r for r in results if r[0] == 0]
    losers = [r for r in results if r[0] != 0]
    assert len(winners) == 1, results
    winner = json.loads(winners[0][1])
    for code, _, err in losers:
        assert code == 1 and "conflict: `staging` of `churn` was moved to version " \
            f"{winner['version']} by racer" in err, err
    events = _json(project, "models", "history", "churn", "--alias", "staging")
    moves = [e for e in events if e["from"] == 4]  # type: ignore
    assert len(moves) == 1 and moves[0]["to"] == winner["version"]  # type: ignore



def test_baseline_comes_from_the_alias_and_its_stored_predictions(bootstrapped: Path) -> None:
    repo = bootstrapped
    (repo / "params.yaml").write_text("quality: 0.12\nrows: 600\n")  # worse than version 1
    second = sluice(repo, "run", "--tier", "merge", check=1)
    assert "model churn: FAIL" in second.stdout
    assert "FAIL         roc_auc max_regression 0.01" in second.stdout
    # Registered (its verdict is part of the record), but not promoted.
    assert "registered churn version 2 (FAIL)" in second.stdout
    assert "version 2 did not pass its gates (FAIL)" in second.stdout
    report = json.loads(sluice(repo, "report", "--json").stdout)
    assert report["models"][0]["baseline"] == "churn@staging (version 1)"


def test_changed_test_set_re_evaluates_the_baseline_artifact(bootstrapped: Path) -> None:
    repo = bootstrapped
    # A new test set (more rows) and a worse model: the baseline's stored predictions
    # no longer fit, so its artifact is run through the evaluate stage again.
    (repo / "params.yaml").write_text("quality: 0.12\nrows: 700\n")
    result = sluice(repo, "run", "--tier", "merge", check=1)
    assert "the test set changed since version 1 was evaluated" in result.stdout
    assert "model churn: FAIL" in result.stdout
    report = json.loads(sluice(repo, "report", "--json").stdout)
    auc = next(r for r in report["models"][0]["metrics"] if r["metric"] == "roc_auc")
    assert auc["baseline"] > auc["candidate"] + 0.1


def test_expect_guards_the_move_and_requests_are_listed(project: Path) -> None:
    _version(project, 0.3)
    _version(project, 0.31)   # staging: v2
    stale = sluice(project, "promote", "churn", "1", "--to", "staging", "--expect", "1",
                   check=1)
    assert "conflict: `staging` of `churn` was moved to version 2" in stale.stderr
    sluice(project, "promote", "churn", "1", "--to", "production", "--actor", "alice")
    pending = _json(project, "models", "requests")
    assert [(r["id"], r["version"], r["alias"]) for r in pending] == [(1, 1, "production")]  # type: ignore
    assert "no alias" not in sluice(project, "models", "history", "nope", check=2).stderr


def test_an_alias_that_looks_like_a_slip_needs_new_alias(project: Path) -> None:
    sluice(project, "run", "--tier", "merge")   # v1, `staging` exists now
    slip = sluice(project, "promote", "churn", "1", "--to", "prod", check=2)
    assert "did you mean `production`?" in slip.stderr
    assert "--new-alias" in slip.stderr
    typo = sluice(project, "promote", "churn", "1", "--to", "stagin", check=2)
    assert "did you mean `staging`?" in typo.stderr
    assert _json(project, "models", "list")[0]["aliases"] == {"staging": 1}  # type: ignore[index]
    sluice(project, "promote", "churn", "1", "--to", "prod", "--new-alias")
    assert _json(project, "models", "list")[0]["aliases"] == {  # type: ignore[index]
        "prod": 1, "staging": 1}
    sluice(project, "promote", "churn", "1", "--to", "canary")   # nothing like it: created
