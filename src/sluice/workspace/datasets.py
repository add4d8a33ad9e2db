"""Which datasets a set of stages reads, directly or through their upstream stages.

Validation checks, drift and the drift reference's model all start from this: a
dataset is read by a stage that names it under ``inputs`` or lists a dep inside its
path (:func:`sluice.config.builtin_stages.consumed_datasets`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable
from typing import Any

from sluice.config.builtin_stages import consumed_datasets
from sluice.workspace.project import Project


def datasets_read(project: Project, stages: Iterable[str],
                  which: Callable[[Any], bool] = lambda dataset: True) -> list[str]:
    """The datasets (those ``which`` accepts) that ``stages`` or their upstream read."""
    config = project.config
    paths = {name: posixpath.normpath(d.path.strip()) for name, d in config.datasets.items()
             if which(d)}
    if not paths:
        return []
    found: list[str] = []
    for name in project.graph.with_upstream(stages):
        stage = config.stages[name]
        found += consumed_datasets(stage.deps, [(i.ref, i.path) for i in stage.inputs], paths)
    return list(dict.fromkeys(found))
