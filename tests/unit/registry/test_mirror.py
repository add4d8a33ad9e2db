"""The MLflow mirror's pieces that need no server: the tracking URI, tags, the hook.

Syncing against a real MLflow server is tested end to end (tests/e2e/test_mlflow_mirror.py).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from sluice.config.schema import ConfigSpec, MlflowMirrorSpec
from sluice.db import open_database
from sluice.errors import ConfigError
from sluice.registry.mirror import Mirror, _AfterChange, notices, pending, version_tags
from sluice.registry.mlflow_client import tracking_uri
from sluice.registry.versions import Version, register


def test_the_tracking_uri_comes_from_the_config_else_mlflows_variable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env:5000/")
    assert tracking_uri(None) == "http://env:5000"
    assert tracking_uri("https://mine:443") == "https://mine:443"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    with pytest.raises(ConfigError, match="has no tracking server"):
        tracking_uri(None)
    with pytest.raises(ConfigError, match="not an http"):
        tracking_uri("databricks")


def test_a_tracking_uri_with_a_password_is_refused_masked() -> None:
    with pytest.raises(ConfigError) as caught:
        tracking_uri("http://me:hunter2secret@mlflow:5000")
    assert "hunter2secret" not in str(caught.value)
    assert "MLFLOW_TRACKING_PASSWORD" in str(caught.value)


def test_the_config_section_and_its_defaults() -> None:
    spec = ConfigSpec.model_validate({"mirror": {"mlflow": {"timeout": "1m"}}})
    assert spec.mirror.mlflow == MlflowMirrorSpec(timeout=60.0)
    assert spec.mirror.mlflow.experiment == "sluice" and spec.mirror.mlflow.retries == 3
    assert ConfigSpec.model_validate({}).mirror.mlflow is None


def _version(**changes: Any) -> Version:
    fields: dict[str, Any] = dict(
        model="churn", version=3, artifact_hash="ab" * 16, artifact_path="build/model.pkl",
        verdict="PASS", lineage={"commit": "c" * 40, "branch": "main", "tier": "merge",
                                 "run_id": "r1", "fingerprints": {"train": "f1"},
                                 "data": {"data/raw (1).csv": {"hash": "h1"}}},
        metrics={"roc_auc": 0.912345678}, creator="ci", created_at=0.0, tags={},
        gates=[{"metric": "roc_auc", "rule": "min 0.6", "slice": None, "verdict": "PASS"},
               {"metric": "roc_auc", "rule": "max_regression 0.01", "slice": "region=EU",
                "verdict": "INCONCLUSIVE"}])
    fields.update(changes)
    return Version(**fields)


def test_version_tags_carry_lineage_and_verdicts_with_keys_mlflow_accepts() -> None:
    tags = version_tags(_version())
    assert tags["sluice.version"] == "3" and tags["sluice.verdict"] == "PASS"
    assert tags["sluice.fingerprint.train"] == "f1"
    assert tags["sluice.data.data/raw _1_.csv"] == "h1"  # parentheses are not allowed
    assert tags["sluice.metric.roc_auc"] == "0.912346"
    assert tags["sluice.gate.roc_auc min 0.6"] == "PASS"
    assert tags["sluice.gate.roc_auc.region_EU max_regression 0.01"] == "INCONCLUSIVE"
    assert "sluice.predictions_hash" not in tags  # none: no tag rather than "None"
    assert version_tags(_version(verdict=None))["sluice.verdict"] == "none"


def test_a_failed_mirror_never_fails_the_change_and_is_recorded_pending(
        tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'sluice.db'}", tmp_path)
    tried: list[str] = []

    class Down(Mirror):
        def sync(self, db: Any, model: str) -> list[str]:
            tried.append(model)
            raise ConnectionRefusedError("connection refused")

    project = cast(Any, SimpleNamespace(state_dir=tmp_path))
    hook = _AfterChange(Down(project, MlflowMirrorSpec(tracking_uri="http://x:1")), db)
    db.after_registry_change.append(hook)
    for _ in range(2):
        register(db, "churn", artifact_hash="ab" * 16, artifact_path="m", verdict=None,
                 lineage={}, metrics={}, gates=[], creator="me")
    assert tried == ["churn"]  # once the server failed, the next minute skips it
    assert notices(db) == ["MLflow mirror of `churn` pending (ConnectionRefusedError: "
                           "connection refused); `sluice models mirror` catches up"]
    assert pending(db) == {"churn": "the server failed moments ago; not tried"}


def test_mirroring_an_unknown_model_is_a_usage_error_before_any_request(
        tmp_path: Path) -> None:
    from sluice.errors import UsageError
    from sluice.registry.mirror import check_all

    db = open_database(f"sqlite:///{tmp_path / 'sluice.db'}", tmp_path)
    register(db, "churn", artifact_hash="ab" * 16, artifact_path="m", verdict=None,
             lineage={}, metrics={}, gates=[], creator="me")
    spec = ConfigSpec.model_validate({"mirror": {"mlflow": {"tracking_uri": "http://x:1"}}})
    project = cast(Any, SimpleNamespace(config=SimpleNamespace(spec=spec)))
    with pytest.raises(UsageError, match=r"no model `chrun`.*churn"):
        check_all(project, db, "chrun")
