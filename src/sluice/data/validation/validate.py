"""The core API: validate a project's datasets against their schema files, with a cache.

A result is cached under ``.sluice/data/validation/`` by the dataset's content hash,
the schema file's bytes and the sluice version, so unchanged data is never read
again to be re-validated.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from sluice.config.schema import DatasetSpec
from sluice.data.validation.engine import validate_path
from sluice.data.validation.readers import CHUNK_ROWS, partitions
from sluice.data.validation.result import DatasetValidation
from sluice.data.validation.schema_file import Schema, load_schema
from sluice.errors import UsageError
from sluice.util.fs import atomic_write_json, read_json
from sluice.util.hashing import hash_bytes
from sluice.util.suggest import did_you_mean
from sluice.workspace.project import Project

CACHE_DIR = "validation"


def sluice_version() -> str:
    from sluice.util.version import installed_version

    return installed_version() or "unknown"


def dataset_spec(project: Project, name: str) -> DatasetSpec:
    """The dataset ``name`` of sluice.yaml; UsageError (with a suggestion) if there is none."""
    datasets = project.config.spec.datasets
    if name not in datasets:
        known = ", ".join(sorted(datasets)) or "none"
        raise UsageError(f"unknown dataset `{name}`{did_you_mean(name, list(datasets))}",
                         hint=f"datasets in sluice.yaml: {known}")
    return datasets[name]


def dataset_schema(project: Project, name: str) -> Schema:
    """The parsed schema file of dataset ``name``; UsageError if it names none."""
    spec = dataset_spec(project, name)
    if spec.schema is None:
        raise UsageError(f"dataset `{name}` has no schema",
                         hint=f"write one with `sluice data infer {name}`, then add "
                              f"`schema: schemas/{name}.yaml` to datasets.{name} in sluice.yaml")
    return load_schema(project.root / spec.schema, spec.schema)


def cache_key(content_hash: str, schema: Schema, fmt: str) -> str:
    return hash_bytes("\0".join([content_hash, hash_bytes(schema.raw), sluice_version(),
                                 fmt]).encode())


def validate_dataset(project: Project, name: str, *, use_cache: bool = True,
                     chunk_rows: int = CHUNK_ROWS) -> DatasetValidation:
    """Validate dataset ``name`` against its schema file.

    Raises UsageError (unknown dataset, no schema), ConfigError (a broken schema
    file) or DataInvalid (data missing or unreadable); failing checks are in the result.
    """
    spec = dataset_spec(project, name)
    schema = dataset_schema(project, name)
    path = project.root / spec.path
    _, fmt = partitions(path, spec.format)  # fails early on missing or unknown data
    cache_file: Path | None = None
    if use_cache:
        key = cache_key(project.hasher.path(path), schema, fmt)
        cache_file = project.state_dir / CACHE_DIR / f"{key}.json"
        cached = read_json(cache_file)
        if isinstance(cached, dict):
            with contextlib.suppress(KeyError, TypeError, ValueError):
                result = DatasetValidation.from_json(cached)
                result.cached = True
                return result
    start = time.perf_counter()
    rows, files, failures = validate_path(path, fmt, schema, chunk_rows=chunk_rows)
    result = DatasetValidation(dataset=name, path=spec.path, schema=spec.schema or "",
                               rows=rows, files=files, failures=failures,
                               seconds=time.perf_counter() - start)
    if cache_file is not None:
        with contextlib.suppress(OSError):  # a read-only checkout still validates
            atomic_write_json(cache_file, result.to_json())
    return result


def validate_datasets(project: Project, names: list[str] | None = None, *,
                      use_cache: bool = True) -> list[DatasetValidation]:
    """Validate ``names`` (None or empty: every dataset that has a schema), in order."""
    if not names:
        names = [n for n, spec in project.config.spec.datasets.items() if spec.schema]
    return [validate_dataset(project, name, use_cache=use_cache) for name in names]
