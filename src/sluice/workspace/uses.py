"""The Python files a ``uses:`` stage runs that its command does not name.

A Metaflow stage runs its flow file; an MLflow Project stage runs whatever its
entry point's ``command`` in the ``MLproject`` file starts (``python train.py
--alpha {alpha}``), in the project's folder. These files, and the local modules
they import (:mod:`sluice.workspace.imports`), are deps of the stage: editing a
flow's helper module or the entry script makes the stage affected. The
``MLproject`` file is read here, when the stage is fingerprinted, not when the
config is loaded, so a config from the cache never holds a stale entry point.
"""

from __future__ import annotations

import contextlib
import posixpath
import re
from collections.abc import Callable
from pathlib import Path

from sluice.config.base import Stage
from sluice.config.uses import (
    DEFAULT_ENTRY_POINT,
    METAFLOW,
    MLFLOW_PROJECT,
    MLPROJECT_FILE,
    entry_script,
    project_dir,
    run_id_file,
)
from sluice.errors import ConfigError, Location
from sluice.util.suggest import did_you_mean
from sluice.util.yamlsource import parse_yaml_bytes
from sluice.workspace.imports import entries


def uses_scripts(stage: Stage, read: Callable[[str], bytes | None]) -> list[str]:
    """Repo-relative Python files the stage's project or flow runs (none for other stages)."""
    spec = stage.spec
    if spec.uses is None:
        return []
    script = entry_script(spec)
    if script is not None:
        return [script]
    if spec.uses != MLFLOW_PROJECT:
        return []
    folder = project_dir(spec)
    file = posixpath.join(folder, MLPROJECT_FILE) if folder != "." else MLPROJECT_FILE
    raw = read(file)
    if raw is None:
        return []  # a missing MLproject is a missing dependency, reported as one
    source = parse_yaml_bytes(raw, file)
    data = source.data
    name = spec.entry_point or DEFAULT_ENTRY_POINT
    points = data.get("entry_points") if isinstance(data, dict) else None
    if not isinstance(points, dict) or name not in points:
        if name.endswith((".py", ".sh")):
            # MLflow runs a file named as the entry point without declaring it.
            return [posixpath.normpath(posixpath.join(folder, name))] \
                if name.endswith(".py") else []
        known = tuple(points) if isinstance(points, dict) else ()
        raise ConfigError(
            f"{file} has no entry point `{name}` (stage `{stage.name}`)"
            + did_you_mean(name, known),
            location=source.locate(("entry_points",)) if known else Location(file, 1, 1),
            hint="fix `entry_point:` of the stage, or add the entry point under "
                 "`entry_points:` in " + file)
    point = points[name]
    command = point.get("command") if isinstance(point, dict) else None
    if not isinstance(command, str):
        raise ConfigError(f"entry point `{name}` in {file} has no `command`",
                          location=source.locate(("entry_points", name)),
                          hint="give it `command: python your_script.py …`")
    # `{alpha}` placeholders are MLflow's; the words naming the script never hold one.
    return [posixpath.normpath(posixpath.join(folder, e.script))
            for e in entries(command) if e.script is not None]


_MLFLOW_RUN = re.compile(rb"=== Run \(ID '([0-9a-f]{8,64})'\) succeeded ===")


def run_metadata(kind: str | None, stage: str, root: Path, log: Path) -> dict[str, str] | None:
    """``{"uses": KIND, "run_id": ID}`` after a ``uses: KIND`` stage succeeded in ``root``,
    kept in its run record: Metaflow's run id from its ``--run-id-file``, MLflow's from
    ``mlflow run``'s closing line in the stage's log. None for other stages, or when no
    id is found."""
    found: str | None = None
    if kind == METAFLOW:
        with contextlib.suppress(OSError):
            found = (root / run_id_file(stage)).read_text().strip() or None
    elif kind == MLFLOW_PROJECT:
        with contextlib.suppress(OSError):
            matches = _MLFLOW_RUN.findall(log.read_bytes())
            found = matches[-1].decode() if matches else None
    return {"uses": kind, "run_id": found} if kind is not None and found else None
