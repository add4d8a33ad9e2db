"""Drift references: the base revision, and the commit the model at an alias was trained from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sluice.data.drift_check import check_drift, dataset_drift
from sluice.db import open_project_database
from sluice.errors import UsageError
from sluice.registry.promotion import move_alias
from sluice.registry.versions import register
from sluice.workspace.project import load_project
from tests.conftest import git

CONFIG = """\
datasets:
  customers:
    path: data/customers.csv
    drift: {{reference: {reference}, on_drift: fail}}
stages:
  train:
    kind: train
    cmd: cp data/customers.csv ${{outs.model}}
    inputs: [datasets.customers]
    outs: {{model: model.csv}}
models:
  churn: {{train: train, artifact: model}}
"""


def _write(repo: Path, mean: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    (repo / "data").mkdir(exist_ok=True)
    pd.DataFrame({"income": rng.normal(mean, 10, 3000)}).to_csv(
        repo / "data/customers.csv", index=False)


def _commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def test_model_reference_is_the_data_of_the_commit_behind_the_alias(
        repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    (repo / "sluice.yaml").write_text(CONFIG.format(reference="model"))
    _write(repo, 50, 0)
    trained_on = _commit(repo, "data the production model saw")
    _write(repo, 65, 1)
    _commit(repo, "data moved on since")
    project = load_project(repo)
    with pytest.raises(UsageError, match="has no alias `production`"):
        dataset_drift(project, "customers", None)
    db = open_project_database(project)
    version = register(db, "churn", artifact_hash="0" * 32, artifact_path="model.csv",
                       verdict="PASS", lineage={"commit": trained_on}, metrics={}, gates=[],
                       creator="test")
    move_alias(db, "churn", "production", version.version, None, "test", "promote", None)
    # The model is inferred: it is the only one whose training reads the dataset.
    found = dataset_drift(project, "customers", None)
    assert found.reference == f"churn@production (v1, {trained_on[:12]})"
    assert found.failed and found.report is not None
    assert found.report.drifted[0].name == "income"
    # Once the data is back to what the model was trained on, nothing drifts.
    _write(repo, 50, 2)
    assert not dataset_drift(project, "customers", None).failed


def test_base_reference_needs_a_base_and_is_noted_not_failed(
        repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    (repo / "sluice.yaml").write_text(CONFIG.format(reference="base"))
    _write(repo, 50, 0)
    base = _commit(repo, "base")
    project = load_project(repo)
    [noted] = check_drift(project, ["train"], None)
    assert noted.report is None and not noted.failed
    assert noted.note == "drift not checked: drift of dataset `customers` needs a base revision"
    [same] = check_drift(project, ["train"], base)
    assert same.report is not None and not same.failed
    assert check_drift(project, [], base) == []  # nothing reads the dataset
