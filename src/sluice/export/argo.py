"""Argo Workflows: a ``Workflow`` built with hera's models (``sluice export argo``).

One DAG task per stage (one container template each), ``tier-start`` first and
``tier-finish`` as the workflow's ``onExit`` handler, which Argo runs whether the DAG
succeeded, failed or ran out of time. The run id is ``{{workflow.name}}``; the commit is
the workflow parameter ``commit``. Deadlines: a stage's ``timeout`` is its template's
``activeDeadlineSeconds``; the tier's wall budget is the workflow's, plus the finish
step's own time so that the exit handler can still write the verdicts.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sluice.export.model import COMMIT, FINISH, RUN_ID, Export, Step

if TYPE_CHECKING:
    from hera.workflows import Container

GPU_RESOURCE = "nvidia.com/gpu"
GPU_TYPE_LABEL = "nvidia.com/gpu.product"  # NVIDIA GPU feature discovery's node label
ENTRYPOINT = "tier"
RENDER = {RUN_ID: "{{workflow.name}}", COMMIT: "{{workflow.parameters.commit}}"}


def secret_key_ref(ref: str, variable: str) -> tuple[str, str]:
    """``secret/key`` (or ``secret``, whose key is the variable's name) of a Kubernetes secret."""
    name, _, key = ref.partition("/")
    return name, key or variable


def memory_quantity(size: int) -> str:
    """Bytes as a Kubernetes quantity, in whole MiB (rounded up)."""
    return f"{-(-size // 2**20)}Mi"


def template_names(export: Export) -> dict[str, str]:
    """Step -> its template and task name: Argo's names allow letters, digits and `-`
    only (``train_churn`` becomes ``train-churn``; a clash gets a number)."""
    names: dict[str, str] = {}
    for step in export.steps:
        base = re.sub(r"[^a-zA-Z0-9-]", "-", step.name).strip("-") or "stage"
        name, n = base, 2
        while name in names.values() or name == ENTRYPOINT:
            name, n = f"{base}-{n}", n + 1
        names[step.name] = name
    return names


def _container(export: Export, step: Step, name: str) -> Container:
    from hera.workflows import Container, Env, Resources, RetryStrategy, SecretEnv

    env: list[Any] = [Env(name=k, value=v) for k, v in export.env]
    for variable, ref in export.secrets:
        secret, key = secret_key_ref(ref, variable)
        env.append(SecretEnv(name=variable, secret_name=secret, secret_key=key))
    selector = dict(step.placement.node_selector)
    if step.gpus and step.placement.gpu_type:
        selector.setdefault(GPU_TYPE_LABEL, step.placement.gpu_type)
    deadline = step.timeout
    if export.deadline and step.kind not in ("start", "finish"):
        deadline = min(deadline or export.deadline, export.deadline)
    return Container(
        name=name, image=export.image, command=step.argv(RENDER), env=env,
        resources=Resources(cpu_request=step.cpus,
                            memory_request=memory_quantity(step.memory) if step.memory else None,
                            gpus=step.gpus or None, gpu_flag=GPU_RESOURCE),
        # OnError: a lost or preempted pod, not a failing command (capsules are idempotent).
        retry_strategy=RetryStrategy(limit=step.retries, retry_policy="OnError")
        if step.retries else None,
        active_deadline_seconds=deadline, node_selector=selector or None,
        labels={"sluice.dev/stage": step.name} if step.kind not in ("start", "finish")
        else None)


def build(export: Export) -> Any:
    """The hera ``Workflow``."""
    from hera.workflows import DAG, Parameter, Task, Workflow

    names = template_names(export)
    with Workflow(
        generate_name=f"{export.name}-", entrypoint=ENTRYPOINT, on_exit=names[FINISH],
        arguments=[Parameter(name=COMMIT)],  # required: `argo submit -p commit=SHA`
        service_account_name=export.service_account,
        # The wall budget, plus the exit handler's time to compute the verdicts.
        active_deadline_seconds=export.deadline + (export.finish.timeout or 0)
        if export.deadline else None,
        labels={"sluice.dev/tier": export.tier},
        annotations={"sluice.dev/version": export.sluice_version,
                     "sluice.dev/image": export.image,
                     "workflows.argoproj.io/description": export.description},
    ) as workflow:
        templates = {step.name: _container(export, step, names[step.name])
                     for step in export.steps}
        with DAG(name=ENTRYPOINT):
            for step in (export.start, *export.stages):
                Task(name=names[step.name], template=templates[step.name],
                     dependencies=[names[d] for d in step.deps] or None)
    return workflow


def render(export: Export) -> str:
    import yaml

    model = build(export).build()
    for template in model.spec.templates:
        if template.container is not None:
            # The Kubernetes Container schema requires a name; Argo's own is `main`.
            template.container.name = "main"
    return yaml.safe_dump(model.dict(exclude_none=True, by_alias=True), sort_keys=False,
                          default_flow_style=False)


def stamp(text: str) -> tuple[str | None, str | None]:
    """(sluice version, image) recorded in an exported workflow."""
    import yaml

    data = yaml.safe_load(text) or {}
    notes = (data.get("metadata") or {}).get("annotations") or {}
    return notes.get("sluice.dev/version"), notes.get("sluice.dev/image")
