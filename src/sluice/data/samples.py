"""Smoke-run samples of datasets that declare ``sample:``, drawn by sluice itself.

For a tier with ``fraction < 1``, each such dataset is sampled once per content
and fraction into ``.sluice/data/samples/`` and stages see the sample instead of the
full data (through ``${datasets.NAME}`` and their inputs), so training code
needs no change; evaluate stages always see the full data. The rule is
:func:`sluice.sample`'s: stable across runs and a subset of the next sample when data
is appended, so samples cache well.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from sluice.config.base import UNSAMPLED_KINDS
from sluice.util.hashing import hash_bytes
from sluice.workspace.project import STATE_DIR, Project


def prepare_samples(project: Project, fraction: float,
                    stages: list[str]) -> tuple[tuple[str, str], ...]:
    """(dataset, sample path) for every sampled dataset the given stages read."""
    if fraction >= 1.0:
        return ()
    used: set[str] = set()
    for name in stages:
        stage = project.config.stages[name]
        if stage.kind in UNSAMPLED_KINDS:
            continue  # they read the full dataset (RunContext.dataset_path)
        used.update(i.ref.removeprefix("datasets.") for i in stage.inputs
                    if i.stage is None and i.ref.startswith("datasets."))
    found = []
    for name in sorted(used):
        spec = project.config.datasets[name]
        if spec.sample is None:
            continue
        source = posixpath.normpath(spec.path.strip())
        content = project.hasher.path(project.root / source)
        key = hash_bytes(f"{content}|{fraction!r}|{spec.sample.key}|{spec.sample.stratify}"
                         .encode())[:16]
        target = f"{STATE_DIR}/samples/{name}-{key}/{posixpath.basename(source)}"
        if not (project.root / target).exists():
            from sluice.data.sampling import materialise_sample

            materialise_sample(project.root / source, Path(project.root / target), fraction,
                               spec.sample.key, spec.sample.stratify, fmt=str(spec.format))
        found.append((name, target))
    project.stat_cache.flush()
    return tuple(found)
