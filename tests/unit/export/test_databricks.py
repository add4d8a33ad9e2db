"""`sluice export databricks`: job settings from databricks-sdk, read back by its models."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from sluice.export.generate import generate
from sluice.workspace.project import Project
from tests.unit.export.conftest import IMAGE

pytest.importorskip("databricks.sdk")


def _settings(project: Project) -> tuple[str, dict[str, Any]]:
    from databricks.sdk.service import jobs

    text = generate(project, "databricks", "merge", IMAGE)
    data = json.loads(text)
    # The SDK's own models read it back to the same settings.
    assert jobs.JobSettings.from_dict(data).as_dict() == data
    return text, data


def test_tasks_deps_finish_all_done_and_timeouts(project: Project) -> None:
    text, data = _settings(project)
    tasks = {t["task_key"]: t for t in data["tasks"]}
    assert list(tasks) == ["tier-start", *project.graph.order, "tier-finish"]
    for name in project.graph.order:
        deps = {d["task_key"] for d in tasks[name]["depends_on"]}
        assert "tier-start" in deps and set(project.graph.upstream[name]) <= deps
        if name.startswith(("train", "evaluate")):
            assert {"unit", "validate-regions"} <= deps
    finish = tasks["tier-finish"]
    assert finish["run_if"] == "ALL_DONE"
    assert {d["task_key"] for d in finish["depends_on"]} == set(project.graph.order)
    assert finish["python_wheel_task"]["parameters"] == [
        "tier", "finish", "--run-id", "{{job.run_id}}", "--json"]
    start = tasks["tier-start"]["python_wheel_task"]["parameters"]
    assert start[start.index("--commit") + 1] == "{{job.parameters.commit}}"
    assert data["parameters"] == [{"name": "commit", "default": ""}]
    assert data["timeout_seconds"] == 3600 + 1800
    assert tasks["train_churn"]["timeout_seconds"] == 600
    assert tasks["train_churn"]["max_retries"] == 3
    assert set(re.findall(r"[0-9a-f]{40,}", text)) == {"ab" * 32}


def test_existing_cluster_and_secret_references(project: Project) -> None:
    _, data = _settings(project)
    tasks = {t["task_key"]: t for t in data["tasks"]}
    # `cluster:` (cpu-cluster; gpu-cluster for the gpu executor) names existing clusters.
    assert tasks["train_churn"]["existing_cluster_id"] == "gpu-cluster"
    assert tasks["unit"]["existing_cluster_id"] == "cpu-cluster"
    assert data["run_as"] == {"service_principal_name": "sluice-runner"}


def test_job_clusters_with_image_gpu_runtime_and_secrets(tmp_path: Any) -> None:
    from sluice.workspace.project import load_project
    from tests.unit.export.conftest import EXPORT_SECTION, copy_example

    section = EXPORT_SECTION.replace("  cluster: cpu-cluster\n", "").replace(
        ", cluster: gpu-cluster", "")
    project = load_project(copy_example(tmp_path, section))
    _, data = _settings(project)
    clusters = {c["job_cluster_key"]: c["new_cluster"] for c in data["job_clusters"]}
    gpu = clusters["gpu-ml-p4d-24xlarge"]
    assert gpu["node_type_id"] == "ml.p4d.24xlarge" and "gpu-ml" in gpu["spark_version"]
    cpu = clusters["cpu-ml-m5-xlarge"]
    assert cpu["docker_image"] == {"url": IMAGE}
    assert cpu["spark_env_vars"]["SLUICE_DATABASE_URL"] == "{{secrets/sluice-db/url}}"
    tasks = {t["task_key"]: t for t in data["tasks"]}
    assert tasks["train_churn"]["job_cluster_key"] == "gpu-ml-p4d-24xlarge"
