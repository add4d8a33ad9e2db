"""Per-stage records of the last successful run or restore in this checkout.

``.sluice/stages/<stage>.json`` keeps the fingerprint, the components it was
made of (so ``status`` can say *what* changed) and the output hashes.
"""

from __future__ import annotations

from typing import Any

from sluice.util.fs import atomic_write_json, read_json
from sluice.workspace.project import Project


def read_record(project: Project, stage: str) -> dict[str, Any] | None:
    record = read_json(project.record_path(stage))
    if not isinstance(record, dict) or "fingerprint" not in record or "outs" not in record:
        return None  # missing or damaged: the stage simply counts as never run
    return record


def write_record(project: Project, stage: str, fingerprint: str, components: dict[str, Any],
                 outs: dict[str, dict[str, str]], wall_s: float | None,
                 meta: dict[str, Any] | None = None) -> None:
    """``meta``: what the run says about itself beyond sluice's own fields (a ``uses:``
    stage's MLflow or Metaflow run id); kept as is, never part of the fingerprint."""
    record: dict[str, Any] = {
        "fingerprint": fingerprint, "components": components, "outs": outs, "wall_s": wall_s,
    }
    if meta:
        record["meta"] = meta
    atomic_write_json(project.record_path(stage), record)
