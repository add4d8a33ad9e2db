"""`sluice export sagemaker`: a pipeline definition whose arguments are sagemaker-core models."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from sluice.errors import UsageError
from sluice.export.generate import generate
from sluice.workspace.project import Project, load_project
from tests.unit.export.conftest import EXPORT_SECTION, IMAGE, copy_example

pytest.importorskip("sagemaker.core")
ROLE = "arn:aws:iam::123456789012:role/sluice-runner"


def _definition(project: Project) -> tuple[str, dict[str, Any]]:
    from sagemaker.core.shapes import (
        AlgorithmSpecification,
        OutputDataConfig,
        ResourceConfig,
        StoppingCondition,
    )
    from sagemaker.core.utils.utils import pascal_to_snake

    text = generate(project, "sagemaker", "merge", IMAGE)
    data = json.loads(text)
    assert data["Version"] == "2020-12-01"

    def snake(value: Any) -> Any:
        if isinstance(value, dict) and "Get" not in value:
            return {pascal_to_snake(k): snake(v) for k, v in value.items()}
        return value if not isinstance(value, list) else [snake(v) for v in value]

    for step in data["Steps"]:
        assert step["Type"] == "Training"
        args = step["Arguments"]
        # Each argument is a valid API model of the SDK (unknown keys fail).
        for model, key in ((AlgorithmSpecification, "AlgorithmSpecification"),
                           (ResourceConfig, "ResourceConfig"),
                           (StoppingCondition, "StoppingCondition"),
                           (OutputDataConfig, "OutputDataConfig")):
            spec = snake(args[key])
            if key == "AlgorithmSpecification":  # pipeline variables are not strings
                spec["container_arguments"] = [a for a in spec["container_arguments"]
                                               if isinstance(a, str)]
            model.model_validate(spec)
        assert args["RoleArn"] == ROLE
    return text, data


@pytest.fixture
def sm_project(tmp_path: Any) -> Project:
    return load_project(copy_example(
        tmp_path, EXPORT_SECTION.replace("service_account: sluice-runner",
                                         f"service_account: {ROLE}")))


def test_steps_deps_parameters_and_runtime(sm_project: Project) -> None:
    text, data = _definition(sm_project)
    steps = {s["Name"]: s for s in data["Steps"]}
    order = sm_project.graph.order
    assert list(steps) == ["tier-start", *order, "tier-finish"]
    for name in order:
        deps = set(steps[name]["DependsOn"])
        assert "tier-start" in deps and set(sm_project.graph.upstream[name]) <= deps
        if name.startswith(("train", "evaluate")):
            assert {"unit", "validate-regions"} <= deps
    assert set(steps["tier-finish"]["DependsOn"]) == set(order)
    algo = steps["train_churn"]["Arguments"]["AlgorithmSpecification"]
    assert algo["TrainingImage"] == IMAGE and algo["ContainerEntrypoint"] == ["sluice"]
    assert algo["ContainerArguments"] == ["stage", "exec", "--run",
                                          {"Get": "Execution.PipelineExecutionId"},
                                          "--stage", "train_churn"]
    start = steps["tier-start"]["Arguments"]["AlgorithmSpecification"]["ContainerArguments"]
    assert start[start.index("--commit") + 1] == {"Get": "Parameters.Commit"}
    assert data["Parameters"] == [{"Name": "Commit", "Type": "String"}]
    train = steps["train_churn"]["Arguments"]
    assert train["ResourceConfig"]["InstanceType"] == "ml.p4d.24xlarge"
    assert train["StoppingCondition"]["MaxRuntimeInSeconds"] == 600
    assert steps["unit"]["Arguments"]["ResourceConfig"]["InstanceType"] == "ml.m5.xlarge"
    assert steps["train_churn"]["RetryPolicies"][0]["MaxAttempts"] == 3
    assert train["OutputDataConfig"]["S3OutputPath"] == "s3://team-cache/sluice/sagemaker-output"
    # Credentials: the role only; secret references are not in the file.
    assert "sluice-db" not in text and "store-creds" not in text
    assert set(re.findall(r"[0-9a-f]{40,}", text)) == {"ab" * 32}


def test_role_and_instance_type_are_required(project: Project, tmp_path: Any) -> None:
    no_role = EXPORT_SECTION.replace("  service_account: sluice-runner\n", "")
    with pytest.raises(UsageError, match="execution role"):
        generate(load_project(copy_example(tmp_path / "a", no_role)), "sagemaker", "merge",
                 IMAGE)
    no_type = EXPORT_SECTION.replace("  instance_type: ml.m5.xlarge\n", "")
    with pytest.raises(UsageError, match="step `tier-start` has no SageMaker instance type"):
        generate(load_project(copy_example(tmp_path / "b", no_type)), "sagemaker", "merge",
                 IMAGE)
