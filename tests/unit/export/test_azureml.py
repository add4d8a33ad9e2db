"""`sluice export azureml`: a pipeline job from azure-ai-ml entities, loaded back by `load_job`."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from sluice.export.generate import generate
from sluice.workspace.project import Project
from tests.unit.export.conftest import IMAGE

# Not importorskip: the export imports azure-ai-ml itself, with its preview features on.
try:
    _FOUND = importlib.util.find_spec("azure.ai.ml") is not None
except ModuleNotFoundError:
    _FOUND = False
pytestmark = pytest.mark.skipif(not _FOUND, reason="azure-ai-ml is not installed")


def _job(project: Project, tmp_path: Path) -> tuple[str, dict[str, Any], Any]:
    text = generate(project, "azureml", "merge", IMAGE)
    from azure.ai.ml import load_job

    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    job = load_job(path)  # the SDK's own loader, and its validation
    assert job._validate().passed
    return text, yaml.safe_load(text), job


def test_nodes_data_edges_finalize_and_limits(project: Project, tmp_path: Path) -> None:
    _, data, job = _job(project, tmp_path)
    assert job.settings.on_finalize == "tier_finish"
    jobs = data["jobs"]
    node = {n.replace("_", "-") if n.startswith("validate") else n: n for n in jobs}
    assert set(node) == {"tier_start", "tier_finish", *project.graph.order}
    for stage in project.graph.order:
        inputs = jobs[node[stage]]["inputs"]
        after = {k.removeprefix("after_") for k in inputs if k.startswith("after_")}
        assert "tier_start" in after
        assert {u.replace("-", "_") for u in project.graph.upstream[stage]} <= after
        if stage.startswith(("train", "evaluate")):
            assert {"unit", "validate_regions"} <= after
        assert inputs["run_id"] == {"path": "${{parent.inputs.run_id}}"}
    # The finalize node has no data edge: Azure ML runs it however the pipeline ended.
    assert not [k for k in jobs["tier_finish"]["inputs"] if k.startswith("after_")]
    train = jobs["train_churn"]
    assert train["limits"]["timeout"] == 600
    assert train["compute"] == "azureml:gpu-cluster"
    assert train["resources"]["instance_type"] == "ml.p4d.24xlarge"
    assert train["environment"]["image"] == IMAGE
    assert "sluice stage exec --run ${{inputs.run_id}} --stage train_churn" in \
        train["component"]["command"]
    assert data["settings"]["continue_on_step_failure"] is True
    assert data["tags"]["sluice-version"] == train["environment_variables"][
        "SLUICE_EXPORT_VERSION"]


def test_secrets_stay_out_of_the_file(project: Project, tmp_path: Path) -> None:
    text, _, _ = _job(project, tmp_path)
    assert "sluice-db/url" not in text and "store-creds" not in text
    assert text.startswith("# export.secrets (AWS_SECRET_ACCESS_KEY, SLUICE_DATABASE_URL)")
    assert set(re.findall(r"[0-9a-f]{40,}", text)) == {"ab" * 32}
