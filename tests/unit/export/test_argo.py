"""`sluice export argo`: a Workflow built with hera, parsed back and checked structurally."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from sluice.export.generate import generate
from sluice.workspace.project import Project
from tests.unit.export.conftest import IMAGE

pytest.importorskip("hera")


def _workflow(project: Project, tier: str = "merge") -> dict[str, Any]:
    text = generate(project, "argo", tier, IMAGE)
    from hera.workflows import Workflow
    from hera.workflows.models import Workflow as WorkflowModel

    # Both hera's own loader and Argo's Workflow model (pydantic) accept it.
    Workflow.from_yaml(text)
    data = yaml.safe_load(text)
    WorkflowModel.model_validate(data)
    assert isinstance(data, dict)
    return data


def test_dag_edges_finish_on_exit_and_deadlines(project: Project) -> None:
    data = _workflow(project)
    spec = data["spec"]
    templates = {t["name"]: t for t in spec["templates"]}
    tasks = {t["name"]: t.get("dependencies", []) for t in templates["tier"]["dag"]["tasks"]}
    assert list(tasks) == ["tier-start", *project.graph.order]
    for name, deps in tasks.items():
        if name != "tier-start":
            assert "tier-start" in deps
            assert set(project.graph.upstream[name]) <= set(deps)
    for expensive in ("train_churn", "train_baseline", "evaluate_churn", "evaluate_baseline"):
        assert {"unit", "validate-regions"} <= set(tasks[expensive])
    # tier-finish runs whatever happened: the exit handler, not a task of the DAG.
    assert spec["onExit"] == "tier-finish" and "tier-finish" not in tasks
    finish = templates["tier-finish"]["container"]["command"]
    assert finish == ["sluice", "tier", "finish", "--run-id", "{{workflow.name}}", "--json"]
    assert spec["activeDeadlineSeconds"] == 3600 + 1800  # wall budget + the finish step
    assert templates["train_churn"]["activeDeadlineSeconds"] == 600
    assert spec["arguments"]["parameters"] == [{"name": "commit"}]  # required
    start = templates["tier-start"]["container"]["command"]
    assert start[start.index("--commit") + 1] == "{{workflow.parameters.commit}}"
    assert start[start.index("--run-id") + 1] == "{{workflow.name}}"


def test_resources_secrets_by_reference_and_no_hash(project: Project) -> None:
    data = _workflow(project)
    spec = data["spec"]
    assert spec["serviceAccountName"] == "sluice-runner"
    train = next(t for t in spec["templates"] if t["name"] == "train_churn")
    container = train["container"]
    assert container["image"] == IMAGE
    assert container["resources"]["requests"] == {"cpu": "2", "memory": "1908Mi",
                                                  "nvidia.com/gpu": "1"}
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert train["nodeSelector"] == {"pool": "ml", "nvidia.com/gpu.product": "nvidia-tesla-a100"}
    assert train["retryStrategy"] == {"limit": 3, "retryPolicy": "OnError"}
    env = {e["name"]: e for e in container["env"]}
    assert env["SLUICE_DATABASE_URL"]["valueFrom"] == {
        "secretKeyRef": {"name": "sluice-db", "key": "url"}}
    assert "value" not in env["SLUICE_DATABASE_URL"]
    assert env["SLUICE_CACHE_URL"]["value"] == "s3://team-cache/sluice"
    assert env["SLUICE_EXPORT_VERSION"]["value"] == data["metadata"]["annotations"][
        "sluice.dev/version"]
    text = yaml.safe_dump(data)
    # The only 64-hex string is the image digest given: no content hash, no commit.
    import re

    assert set(re.findall(r"[0-9a-f]{40,}", text)) == {"ab" * 32}
