"""End-to-end: the churn example's gates on evidence, in a fresh clone, with and without a store.

A pull request that changes only ``train.gbm.learning_rate`` runs the `pr` tier
against main: ``evaluate_baseline`` is not affected, so its predictions are not
in the fresh clone. Without a store every configured gate of `churn` for the
tier is still listed, the baseline gate INCONCLUSIVE with the reason (exit 4).
With a shared S3 store (moto) that a `pr` run on main filled, the same run
computes the gate against the baseline's predictions restored by fingerprint,
and the JSON report names the hashes it used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import git, sluice

if TYPE_CHECKING:
    from tests.s3 import S3Bucket

pytest_plugins = ["tests.s3"]
pytestmark = pytest.mark.slow

IDENTITY = ("-c", "user.email=a@b", "-c", "user.name=n")


def _churn_gates(report: dict[str, Any]) -> dict[str, Any]:
    return next(m for m in report["models"] if m["model"] == "churn")


def _recorded(project: Path, stage: str) -> str:
    """The predictions hash a stage's last run recorded in this checkout."""
    record = json.loads((project / f".sluice/stages/{stage}.json").read_text())
    return str(record["outs"]["predictions"]["hash"])


def test_pr_tier_gates_use_restored_baseline_evidence_or_say_why_not(
        tmp_path: Path, s3: S3Bucket) -> None:
    origin = tmp_path / "origin"
    sluice(tmp_path, "init", "--example", "churn", str(origin))
    git(origin, "init", "-q", "-b", "main")
    git(origin, "add", "-A")
    git(origin, *IDENTITY, "commit", "-q", "-m", "churn")

    # A fresh clone, a branch that changes only the GBM's learning rate, no store at all.
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    git(clone, "checkout", "-q", "-b", "faster")
    params = clone / "params.yaml"
    params.write_text(params.read_text().replace("learning_rate: 0.1", "learning_rate: 0.12"))
    git(clone, *IDENTITY, "commit", "-q", "-am", "learning rate 0.12")
    alone = {"SLUICE_CACHE_URL": "none"}
    first = sluice(clone, "run", "--tier", "pr", "--base", "main", check=4, timeout=900,
                   env=alone)
    assert "model churn: INCONCLUSIVE" in first.stdout
    report = json.loads(sluice(clone, "report", "--json", env=alone).stdout)
    assert "evaluate_baseline" not in {s["stage"] for s in report["stages"]}
    churn = _churn_gates(report)
    # Every gate of `churn` that applies to `pr` is listed (the slice gate is merge/nightly).
    assert sorted(g["rule"] for g in churn["gates"]) == ["max_regression 0.01", "min 0.75"]
    paired = next(g for g in churn["gates"] if g["rule"] == "max_regression 0.01")
    assert paired["verdict"] == "INCONCLUSIVE" and not paired["evaluated"]
    assert "in no readable store" in paired["reason"]
    assert "run the baseline stage or add it to the tier" in paired["reason"]
    assert churn["gates_evaluated"] == 1 and churn["evidence"]["baseline"]["hash"] is None
    markdown = sluice(clone, "report", "--format", "markdown", env=alone).stdout
    assert "1 of 2 gates evaluated" in markdown

    # The same tier on main fills the shared store (the job can read and write it).
    shared = {"SLUICE_CACHE_URL": s3.url()}
    sluice(origin, "run", "--tier", "pr", timeout=900, env=shared)
    baseline_hash = _recorded(origin, "evaluate_baseline")

    # The pull request's run again, now with read access to that store: the baseline's
    # evidence is restored by its fingerprint under the pr tier's fraction and seed.
    second = sluice(clone, "run", "--tier", "pr", "--base", "main", "--json", check=None,
                    timeout=900, env=shared)
    assert second.returncode in (0, 1, 4), second.stderr
    assert "evaluate_baseline" not in {s["stage"] for s in json.loads(second.stdout)["stages"]}
    report = json.loads(sluice(clone, "report", "--json", env=shared).stdout)
    churn = _churn_gates(report)
    assert sorted(g["rule"] for g in churn["gates"]) == ["max_regression 0.01", "min 0.75"]
    assert churn["gates_evaluated"] == 2
    paired = next(g for g in churn["gates"] if g["rule"] == "max_regression 0.01")
    assert paired["evaluated"] and paired["point"] is not None and paired["baseline"] > 0.5
    evidence = churn["evidence"]
    assert evidence["baseline"]["hash"] == baseline_hash
    assert evidence["baseline"]["source"] == "store"
    assert evidence["baseline"]["stage"] == "evaluate_baseline"
    assert evidence["baseline"]["fingerprint"] == json.loads(
        (origin / ".sluice/stages/evaluate_baseline.json").read_text())["fingerprint"]
    assert evidence["candidate"]["hash"] == _recorded(clone, "evaluate_churn")
    assert paired["evidence"] == {"candidate": evidence["candidate"]["hash"],
                                  "baseline": baseline_hash}
    # Restored to a scratch folder only: the workspace never got the baseline's file.
    assert not (clone / "reports/baseline/predictions.parquet").exists()
    assert second.returncode == {"PASS": 0, "FAIL": 1, "INCONCLUSIVE": 4}[churn["verdict"]]
