"""SageMaker Pipelines: a pipeline definition whose steps are training jobs running capsules.

Built with the SageMaker Python SDK 3.x family's ``sagemaker-core`` (docs/platforms.md
says why not 2.x, nor 3.x's ``sagemaker-mlops``): each step's arguments are a
``CreateTrainingJob`` request made of its API models (``AlgorithmSpecification`` with the
sluice command as the container entrypoint, ``ResourceConfig``, ``StoppingCondition``),
retried by the step's ``RetryPolicies`` on capacity and internal errors; the runtime
values are its workflow primitives: the run id is
``ExecutionVariables.PIPELINE_EXECUTION_ID``, the commit the parameter ``Commit``.

SageMaker Pipelines has no exit handler: ``tier-finish`` is the last step, run when every
stage succeeded; an EventBridge rule on failed or stopped executions runs it otherwise
(docs/platforms.md). The wall budget caps every step's ``MaxRuntimeInSeconds``; there is
no pipeline-level deadline.
"""

from __future__ import annotations

import json
from typing import Any

from sluice.errors import UsageError
from sluice.export.model import COMMIT, RUN_ID, VERSION_ENV, Export, Step

DEFINITION_VERSION = "2020-12-01"
VOLUME_GB = 30
RETRIED_ERRORS = ["SageMaker.JOB_INTERNAL_ERROR", "SageMaker.CAPACITY_ERROR"]
OUTPUT_PARAMETER = "OutputS3Uri"
COMMIT_PARAMETER = "Commit"


def _arguments(export: Export, step: Step, values: dict[str, Any], output: Any) -> Any:
    from sagemaker.core.shapes import (
        AlgorithmSpecification,
        OutputDataConfig,
        ResourceConfig,
        StoppingCondition,
    )
    from sagemaker.core.utils.utils import serialize

    if not step.placement.instance_type:
        raise UsageError(f"step `{step.name}` has no SageMaker instance type",
                         hint="set `export: instance_type:` (e.g. ml.m5.xlarge; GPU stages "
                              "under `export: executors: NAME: instance_type:`)")
    argv = [a if isinstance(a, str) else values[a.name] for a in step.args]
    runtime = step.timeout or 86400
    if export.deadline and step.kind not in ("start", "finish"):
        runtime = min(runtime, export.deadline)
    request = {
        "AlgorithmSpecification": serialize(AlgorithmSpecification(
            training_input_mode="File", training_image=export.image,
            container_entrypoint=argv[:1], container_arguments=argv[1:])),
        "OutputDataConfig": serialize(OutputDataConfig(s3_output_path=output)),
        "ResourceConfig": serialize(ResourceConfig(
            instance_type=step.placement.instance_type, instance_count=1,
            volume_size_in_gb=VOLUME_GB)),
        "RoleArn": export.service_account,
        "StoppingCondition": serialize(StoppingCondition(max_runtime_in_seconds=runtime)),
        "Environment": dict(export.env),
    }
    return request


def build(export: Export) -> dict[str, Any]:
    """The pipeline definition, as a dict of the SDK's values (pipeline variables)."""
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.parameters import ParameterString

    if not export.service_account:
        raise UsageError("a SageMaker pipeline's training jobs need an execution role",
                         hint="set `export: service_account:` to the role's ARN (it also "
                              "grants the steps the store)")
    commit = ParameterString(name=COMMIT_PARAMETER)  # required: each execution names it
    parameters = [commit]
    store = dict(export.env).get("SLUICE_CACHE_URL", "")
    if store.startswith("s3://"):
        output: Any = f"{store.rstrip('/')}/sagemaker-output"
    else:
        output = ParameterString(name=OUTPUT_PARAMETER)
        parameters.append(output)
    values = {RUN_ID: ExecutionVariables.PIPELINE_EXECUTION_ID, COMMIT: commit}
    steps = []
    for step in export.steps:
        body: dict[str, Any] = {
            "Name": step.name, "Type": "Training",
            "Arguments": _arguments(export, step, values, output)}
        if step.deps:
            body["DependsOn"] = list(step.deps)
        if step.retries:
            body["RetryPolicies"] = [{"ExceptionType": RETRIED_ERRORS,
                                      "MaxAttempts": step.retries,
                                      "IntervalSeconds": 30, "BackoffRate": 2.0}]
        steps.append(body)
    return {"Version": DEFINITION_VERSION,
            "Metadata": {"sluice": {"tier": export.tier, "version": export.sluice_version,
                                    "image": export.image}},
            "Parameters": [p.to_request() for p in parameters], "Steps": steps}


def render(export: Export) -> str:
    """The definition's JSON (``aws sagemaker create-pipeline --pipeline-definition``)."""
    return json.dumps(build(export), indent=2, default=lambda value: value.expr) + "\n"


def stamp(text: str) -> tuple[str | None, str | None]:
    """(sluice version, image) recorded in an exported definition."""
    data = json.loads(text)
    meta = (data.get("Metadata") or {}).get("sluice") or {}
    version = meta.get("version")
    for step in data.get("Steps") or []:
        version = version or step["Arguments"].get("Environment", {}).get(VERSION_ENV)
    return version, meta.get("image")
