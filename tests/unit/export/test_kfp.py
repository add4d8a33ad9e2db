"""`sluice export kfp`: a spec compiled by kfp, loaded back and checked structurally."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from sluice.export.generate import generate
from sluice.workspace.project import Project
from tests.unit.export.conftest import IMAGE

pytest.importorskip("kfp")


def _spec(project: Project) -> tuple[str, dict[str, Any], dict[str, Any]]:
    from google.protobuf import json_format
    from kfp import components
    from kfp.pipeline_spec import pipeline_spec_pb2

    text = generate(project, "kfp", "merge", IMAGE)
    components.load_component_from_text(text)  # kfp's own loader accepts it
    pipeline, platform = yaml.safe_load_all(text)
    # Both documents are valid protos of the pipeline spec (unknown fields fail).
    json_format.ParseDict(pipeline, pipeline_spec_pb2.PipelineSpec())
    json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
    return text, pipeline, platform


def test_exit_handler_dag_and_check_gate(project: Project) -> None:
    _, pipeline, _ = _spec(project)
    root = pipeline["root"]["dag"]["tasks"]
    finish = root["tier-finish"]
    assert finish["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    assert finish["dependentTasks"] == ["exit-handler-1"]
    inner = pipeline["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    names = {t["taskInfo"]["name"]: t for t in inner.values()}
    assert set(names) == {"tier-start", *project.graph.order}
    for name, task in names.items():
        if name == "tier-start":
            continue
        deps = {inner[d]["taskInfo"]["name"] for d in task["dependentTasks"]}
        assert "tier-start" in deps
        assert set(project.graph.upstream[name]) <= deps
        if name.startswith(("train", "evaluate")):
            assert {"unit", "validate-regions"} <= deps
        assert task["retryPolicy"]["maxRetryCount"] in (2, 3)
        assert task["inputs"]["parameters"]["run_id"]["runtimeValue"]["constant"] == \
            "{{$.pipeline_job_uuid}}"


def test_resources_secrets_timeouts(project: Project) -> None:
    text, pipeline, platform = _spec(project)
    executors = pipeline["deploymentSpec"]["executors"]
    train = executors["exec-train-churn"]["container"]
    assert train["image"] == IMAGE
    assert train["command"][:4] == ["sluice", "stage", "exec", "--run"]
    accelerator = train["resources"]["accelerator"]
    assert accelerator["resourceType"] == "nvidia-tesla-a100"
    assert accelerator["resourceCount"] == "1"
    assert train["resources"]["resourceCpuRequest"] == "2"
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert k8s["exec-train-churn"]["activeDeadlineSeconds"] == "600"
    secrets = k8s["exec-train-churn"]["secretAsEnv"]
    assert {"secretName": "sluice-db", "keyToEnv": [{"secretKey": "url",
            "envVar": "SLUICE_DATABASE_URL"}]} in [
        {k: v for k, v in s.items() if k in ("secretName", "keyToEnv")} for s in secrets]
    assert k8s["exec-train-churn"]["nodeSelector"]["labels"]["pool"] == "ml"
    commit = pipeline["root"]["inputDefinitions"]["parameters"]["commit"]
    assert "defaultValue" not in commit and not commit.get("isOptional")
    assert set(re.findall(r"[0-9a-f]{40,}", text)) == {"ab" * 32}
