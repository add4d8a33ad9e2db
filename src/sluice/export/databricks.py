"""Databricks Jobs: job settings built with ``databricks-sdk``'s models (JSON for the Jobs API).

One task per stage, each a ``python_wheel_task`` running sluice's ``sluice`` entry point
with the step's arguments on a single-node job cluster whose Databricks Container
Services image is the team's image. ``tier-finish`` depends on every stage with
``run_if: ALL_DONE``, so it runs whether they succeeded or not. The run id is
``{{job.run_id}}``; the commit is the job parameter ``commit``.

Placement: ``instance_type`` is the clusters' node type (``executors``' overrides give
GPU stages their GPU node type; a GPU stage gets the ML GPU runtime); ``cluster`` names an
existing cluster instead (configured with the image and the secrets itself). Databricks
has no CPU or memory requests: the node type is the request. Secrets are
``{{secrets/SCOPE/KEY}}`` references in the clusters' environment.
"""

from __future__ import annotations

import json
from typing import Any

from sluice.errors import UsageError
from sluice.export.model import COMMIT, FINISH, RUN_ID, Export, Step

RENDER = {RUN_ID: "{{job.run_id}}", COMMIT: "{{job.parameters.commit}}"}
SPARK_VERSION = "15.4.x-scala2.12"  # an LTS runtime; a GPU stage gets its ML GPU variant
GPU_SPARK_VERSION = "15.4.x-gpu-ml-scala2.12"
DISTRIBUTION = "sluice-ml"  # the wheel whose `sluice` entry point the tasks run


def _cluster_key(step: Step) -> str:
    node = step.placement.instance_type or "default"
    return ("gpu-" if step.gpus else "cpu-") + "".join(c if c.isalnum() else "-" for c in node)


def _cluster(export: Export, step: Step) -> Any:
    from databricks.sdk.service import compute

    if not step.placement.instance_type:
        raise UsageError(f"step `{step.name}` has no Databricks node type",
                         hint="set `export: instance_type:` (e.g. i3.xlarge, or "
                              "Standard_DS3_v2 on Azure) or `export: cluster:` (an existing "
                              "cluster's id); GPU stages under `export: executors: NAME:`")
    env = dict(export.env)
    env.update({variable: "{{secrets/" + ref + "}}" for variable, ref in export.secrets})
    return compute.ClusterSpec(
        spark_version=GPU_SPARK_VERSION if step.gpus else SPARK_VERSION,
        node_type_id=step.placement.instance_type, num_workers=0,
        # A single node: a capsule is one process, not a Spark application.
        spark_conf={"spark.databricks.cluster.profile": "singleNode",
                    "spark.master": "local[*]"},
        custom_tags={"ResourceClass": "SingleNode"},
        docker_image=compute.DockerImage(url=export.image), spark_env_vars=env)


def build(export: Export) -> Any:
    """The ``JobSettings``."""
    from databricks.sdk.service import jobs

    clusters: dict[str, Any] = {}
    tasks: list[Any] = []
    for step in export.steps:
        placement: dict[str, Any] = {}
        if step.placement.cluster:
            placement["existing_cluster_id"] = step.placement.cluster
        else:
            key = _cluster_key(step)
            if key not in clusters:
                clusters[key] = jobs.JobCluster(job_cluster_key=key,
                                                new_cluster=_cluster(export, step))
            placement["job_cluster_key"] = key
        finish = step.name == FINISH
        timeout = step.timeout
        if export.deadline and step.kind not in ("start", "finish"):
            timeout = min(timeout or export.deadline, export.deadline)
        argv = step.argv(RENDER)
        tasks.append(jobs.Task(
            task_key=step.name, description=f"sluice {' '.join(argv[1:3])}",
            depends_on=[jobs.TaskDependency(task_key=d) for d in step.deps] or None,
            run_if=jobs.RunIf.ALL_DONE if finish else None,
            python_wheel_task=jobs.PythonWheelTask(package_name=DISTRIBUTION,
                                                   entry_point="sluice", parameters=argv[1:]),
            timeout_seconds=timeout, max_retries=step.retries or None,
            retry_on_timeout=False, **placement))
    return jobs.JobSettings(
        name=export.name, description=export.description,
        # Databricks needs a default; every run names its commit (`--job-parameters`).
        parameters=[jobs.JobParameterDefinition(name=COMMIT, default="")],
        # The wall budget, plus the finish task's time to write the verdicts.
        timeout_seconds=export.deadline + (export.finish.timeout or 0)
        if export.deadline else None,
        max_concurrent_runs=1, job_clusters=list(clusters.values()) or None, tasks=tasks,
        tags={"sluice-tier": export.tier, "sluice-version": export.sluice_version,
              "sluice-image": export.image},
        run_as=jobs.JobRunAs(service_principal_name=export.service_account)
        if export.service_account else None)


def render(export: Export) -> str:
    """The job settings as JSON (``databricks jobs create --json @FILE``)."""
    return json.dumps(build(export).as_dict(), indent=2) + "\n"


def stamp(text: str) -> tuple[str | None, str | None]:
    """(sluice version, image) recorded in exported job settings."""
    from databricks.sdk.service import jobs

    tags = jobs.JobSettings.from_dict(json.loads(text)).tags or {}
    return tags.get("sluice-version"), tags.get("sluice-image")
