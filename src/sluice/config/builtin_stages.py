"""Check stages sluice adds by itself: one ``validate-<dataset>`` per dataset with a schema.

A schema is a cheap check like a unit test, so it runs as one: a ``check``
stage whose dependencies are the data and the schema file. It is fingerprinted
and cached like any stage (a validation is redone only when the data or the
schema changed), and a failure gates every expensive stage of the run.

The command runs the same Python that runs sluice (``$SLUICE_PYTHON``, set in
every stage's environment) rather than a ``sluice`` found on ``PATH``; the
variable, not its value, is in the command, so the fingerprint is the same on
every machine.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sluice.config.resolve import Resolver

PREFIX = "validate-"
PYTHON_ENV = "SLUICE_PYTHON"


def stage_name(dataset: str) -> str:
    return PREFIX + dataset


def dataset_of(stage: str) -> str | None:
    """The dataset a synthesised validation stage checks, or None for other stages."""
    return stage[len(PREFIX):] if stage.startswith(PREFIX) else None


def stage_fields(dataset: str, data_path: str, schema_path: str,
                 data_format: str = "auto") -> dict[str, Any]:
    """The fields of the ``StageSpec`` of a dataset's validation stage."""
    return {
        "cmd": f'"${PYTHON_ENV}" -m sluice data validate {dataset}',
        "kind": "check",
        "description": f"validate dataset `{dataset}` against {schema_path}",
        "deps": [data_path, schema_path],
        # How the data is read is part of the result: in the environment, it is part
        # of the fingerprint, so changing `format:` reruns the check.
        "env": {"SLUICE_DATA_FORMAT": data_format},
        "discover_imports": False,
    }


def consumed_datasets(deps: Iterable[str], inputs: Iterable[tuple[str, str]],
                      dataset_paths: dict[str, str]) -> list[str]:
    """Datasets a stage reads: through ``inputs: [datasets.X]`` or a dep inside X's path."""
    found = [ref.removeprefix("datasets.") for ref, _ in inputs if ref.startswith("datasets.")]
    for dep in deps:
        for name, path in dataset_paths.items():
            if dep == path or dep.startswith(path.rstrip("/") + "/") or \
                    path.startswith(dep.rstrip("/") + "/"):
                found.append(name)
    return list(dict.fromkeys(found))



def add_validation_stages(resolver: Resolver) -> None:
    """Add a `validate-<dataset>` check for each dataset with a schema, while loading.

    A schema file that does not exist yet is no error here (`sluice data infer`
    writes it); the check's plan says it is missing.
    """
    from sluice.config.base import Stage
    from sluice.config.schema import StageSpec

    config = resolver.config
    for name, dataset in config.spec.datasets.items():
        data_path = resolver.dataset_paths[name]
        if dataset.schema is None or data_path is None:
            continue
        at = ("datasets", name, "schema")
        schema = resolver.path(dataset.schema, f"schema file {{path}} of dataset `{name}`", at)
        stage = stage_name(name)
        if stage in config.spec.stages:
            resolver.fail(f"stage `{stage}` clashes with the validation stage sluice adds for "
                          f"dataset `{name}`", ("stages", stage), "rename the stage", key=True)
            continue
        if schema is None:
            continue
        spec = StageSpec.model_validate(stage_fields(name, data_path, schema, dataset.format))
        config.stages[stage] = Stage(stage, spec, tuple(spec.deps), (), {})
