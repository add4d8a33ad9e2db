"""Azure ML: a pipeline job built from ``azure-ai-ml`` entities (``az ml job create -f FILE``).

One command node per stage, in the team's image (an environment named after the
pipeline, versioned by the sluice version: no anonymous environment's content hash).
Azure ML orders nodes by data only, so every node writes an empty ``done`` folder and
takes each upstream node's as an input (``after_<step>``): the DAG, and the checks
before every expensive node. ``tier-finish`` is the pipeline's ``on_finalize`` node,
which Azure ML runs after the pipeline completed, failed or was cancelled.

The run id and the commit are pipeline inputs (``--set inputs.run_id=...``): Azure ML
has no expression for the pipeline run's own name inside a node. A stage's ``timeout``
(capped by the tier's wall budget) is the node's ``limits.timeout``; Azure ML has no
pipeline-level deadline. Placement: ``cluster`` is the compute target, ``instance_type``
the instance type on it. Azure ML gives a node's environment no secret references:
credentials come from the compute's managed identity, so ``export: secrets:`` is not
placed in this file (its header says so).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from sluice.errors import UsageError
from sluice.export.model import COMMIT, FINISH, RUN_ID, Export, Step

RENDER = {RUN_ID: "${{inputs.run_id}}", COMMIT: "${{inputs.commit}}"}


def _node_name(step: str) -> str:
    return re.sub(r"\W", "_", step)


def _command(export: Export, step: Step, environment: Any) -> Any:
    from azure.ai.ml import Input, Output, command

    if not step.placement.cluster:
        raise UsageError(f"step `{step.name}` has no Azure ML compute target",
                         hint="set `export: cluster:` (a compute cluster's name; GPU stages "
                              "under `export: executors: NAME: cluster:`)")
    inputs: dict[str, Any] = {RUN_ID: Input(type="string"), COMMIT: Input(type="string")}
    # The finalize node must have no data edge (Azure ML runs it however the run ended).
    for dep in step.deps if step.name != FINISH else ():
        inputs[f"after_{_node_name(dep)}"] = Input(type="uri_folder")
    # `done` is what downstream nodes wait for; it is written only when the step passed.
    line = " ".join(step.argv(RENDER)) + " && touch ${{outputs.done}}/done"
    resources = {"instance_count": 1}
    if step.placement.instance_type:
        resources["instance_type"] = step.placement.instance_type  # type: ignore[assignment]
    return command(
        name=_node_name(step.name), display_name=step.name, command=line,
        environment=environment, inputs=inputs, outputs={"done": Output(type="uri_folder")},
        environment_variables=dict(export.env), compute=step.placement.cluster,
        resources=resources, is_deterministic=False)


PREVIEW_ENV = "AZURE_ML_CLI_PRIVATE_FEATURES_ENABLED"


def _sdk() -> None:
    """Import azure-ai-ml with its preview features on: its YAML schema has the pipeline
    setting ``on_finalize`` only then (decided when the schema module is imported)."""
    import logging
    import os
    import sys

    # Its notes on experimental classes are not the user's business (and not stdout's).
    logging.getLogger("azure.ai.ml").setLevel(logging.ERROR)
    loaded = "azure.ai.ml._schema.pipeline.settings" in sys.modules
    os.environ[PREVIEW_ENV] = "true"
    if loaded:
        from azure.ai.ml._schema.pipeline.settings import PipelineJobSettingsSchema

        if "on_finalize" not in PipelineJobSettingsSchema._declared_fields:
            raise UsageError("azure-ai-ml was imported before `sluice export azureml` could "
                             f"turn on its preview features ({PREVIEW_ENV})",
                             hint=f"set {PREVIEW_ENV}=true in the environment")


def build(export: Export) -> Any:
    """The ``PipelineJob``."""
    _sdk()
    from azure.ai.ml import dsl
    from azure.ai.ml.entities import Environment

    environment = Environment(name=f"{export.name}-image", version=export.sluice_version,
                              image=export.image)
    commands = {step.name: _command(export, step, environment) for step in export.steps}

    def pipeline(run_id: str, commit: str) -> None:
        nodes: dict[str, Any] = {}
        for step in (export.start, *export.stages):
            node = commands[step.name](
                run_id=run_id, commit=commit,
                **{f"after_{_node_name(d)}": nodes[d].outputs.done for d in step.deps})
            _limit(export, node, step)
            nodes[step.name] = node
        finish = commands[FINISH](run_id=run_id, commit=commit)
        _limit(export, finish, export.finish)

    pipeline.__annotations__ = {RUN_ID: str, COMMIT: str, "return": None}
    settings: dict[str, Any] = {"continue_on_step_failure": True, "force_rerun": True,
                                "on_finalize": _node_name(FINISH)}
    build_job = dsl.pipeline(pipeline, name=export.name.replace("-", "_"),
                             description=export.description, display_name=export.name,
                             **settings)
    # No defaults: every submission names its run id and commit (`--set inputs.…`).
    job = build_job(run_id=None, commit=None)  # type: ignore[arg-type]
    job.tags = {"sluice-tier": export.tier, "sluice-version": export.sluice_version,
                "sluice-image": export.image}
    return job


def _limit(export: Export, node: Any, step: Step) -> None:
    node.name = _node_name(step.name)
    timeout = step.timeout
    if export.deadline and step.kind not in ("start", "finish"):
        timeout = min(timeout or export.deadline, export.deadline)
    if timeout:
        node.set_limits(timeout=timeout)


def render(export: Export) -> str:
    """The pipeline job's YAML, as ``azure-ai-ml`` dumps it."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pipeline.yaml"
        build(export).dump(path)
        text = path.read_text(encoding="utf-8")
    if export.secrets:
        names = ", ".join(name for name, _ in export.secrets)
        text = (f"# export.secrets ({names}) are not in this file: Azure ML nodes get "
                "credentials from the compute's managed identity (docs/platforms.md).\n" + text)
    return text


def stamp(text: str) -> tuple[str | None, str | None]:
    """(sluice version, image) recorded in an exported pipeline job."""
    import yaml

    tags = (yaml.safe_load(text) or {}).get("tags") or {}
    return tags.get("sluice-version"), tags.get("sluice-image")
