"""Kubeflow Pipelines v2 (and Vertex AI Pipelines): a spec compiled by the ``kfp`` compiler.

One container component per step; the stages inside a ``dsl.ExitHandler`` whose exit
task is ``tier-finish``, so it runs whether the stages succeeded or not. The run id is
the pipeline job's own id (``dsl.PIPELINE_JOB_ID_PLACEHOLDER``); the commit is the
pipeline parameter ``commit``. KFP's own cache is off: sluice's run cache decides.

What is enforced where (docs/platforms.md): resources, accelerator type, retries and
node selectors on both; secrets as environment variables and stage timeouts (the pod's
``activeDeadlineSeconds``) through ``kfp-kubernetes``, which Kubeflow Pipelines applies
and Vertex AI ignores; the tier's wall budget has no pipeline-level deadline in KFP v2
(``tier start`` checks the estimate and ``tier finish`` records the overrun).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sluice.export.argo import GPU_TYPE_LABEL, secret_key_ref
from sluice.export.model import COMMIT, RUN_ID, Export, Step


def _component(export: Export, step: Step) -> Callable[..., Any]:
    """A container component running ``step``'s command (built by kfp's decorator)."""
    from kfp import dsl

    def body(run_id: str, commit: str) -> dsl.ContainerSpec:
        return dsl.ContainerSpec(image=export.image,
                                 command=step.argv({RUN_ID: run_id, COMMIT: commit}))

    # kfp reads the signature: real types (not this module's string annotations), and
    # a component name per step.
    body.__annotations__ = {"run_id": str, "commit": str, "return": dsl.ContainerSpec}
    body.__name__ = body.__qualname__ = re.sub(r"\W", "_", step.name)
    return dsl.container_component(body)  # type: ignore[no-any-return]


def _configure(export: Export, task: Any, step: Step) -> None:
    from kfp import kubernetes

    task.set_display_name(step.name)
    task.set_caching_options(False)
    task.set_cpu_request(str(step.cpus))
    if step.memory:
        task.set_memory_request(f"{-(-step.memory // 2**20)}Mi")
    if step.gpus:
        task.set_accelerator_limit(step.gpus)
        if step.placement.gpu_type:
            task.set_accelerator_type(step.placement.gpu_type)
    if step.retries:
        task.set_retry(num_retries=step.retries)
    for name, value in export.env:
        task.set_env_variable(name, value)
    selector = dict(step.placement.node_selector)
    if step.gpus and step.placement.gpu_type:
        selector.setdefault(GPU_TYPE_LABEL, step.placement.gpu_type)
    for label, value in sorted(selector.items()):
        kubernetes.add_node_selector(task, label_key=label, label_value=value)
    for variable, ref in export.secrets:
        name, key = secret_key_ref(ref, variable)
        kubernetes.use_secret_as_env(task, secret_name=name, secret_key_to_env={key: variable})
    timeout = step.timeout
    if export.deadline and step.kind not in ("start", "finish"):
        timeout = min(timeout or export.deadline, export.deadline)
    if timeout:
        kubernetes.set_timeout(task, timeout)


def build(export: Export) -> Callable[..., Any]:
    """The ``@dsl.pipeline`` function."""
    from kfp import dsl

    components = {step.name: _component(export, step) for step in export.steps}

    def pipeline(commit: str) -> None:  # required: each run names its commit
        run_id = dsl.PIPELINE_JOB_ID_PLACEHOLDER
        finish = components[export.finish.name](run_id=run_id, commit=commit)
        _configure(export, finish, export.finish)
        tasks: dict[str, Any] = {}
        with dsl.ExitHandler(finish, name="stages"):
            for step in (export.start, *export.stages):
                task = components[step.name](run_id=run_id, commit=commit)
                _configure(export, task, step)
                for dep in step.deps:
                    task.after(tasks[dep])
                tasks[step.name] = task

    pipeline.__annotations__ = {"commit": str, "return": None}
    return dsl.pipeline(name=export.name, description=export.description,  # type: ignore[no-any-return]
                        display_name=f"sluice {export.project} {export.tier} "
                                     f"(sluice {export.sluice_version}, {export.image})")(pipeline)


def render(export: Export) -> str:
    """The compiled pipeline spec (YAML), as the kfp compiler writes it."""
    from kfp import compiler

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pipeline.yaml"
        compiler.Compiler().compile(build(export), str(path))
        return path.read_text(encoding="utf-8")


def stamp(text: str) -> tuple[str | None, str | None]:
    """(sluice version, image) recorded in a compiled spec."""
    import yaml

    docs = [d for d in yaml.safe_load_all(text) if d]
    version = image = None
    for executor in ((docs[0].get("deploymentSpec") or {}).get("executors") or {}).values():
        container = executor.get("container") or {}
        image = container.get("image", image)
        for entry in container.get("env") or []:
            if entry.get("name") == "SLUICE_EXPORT_VERSION":
                version = entry.get("value")
    return version, image
