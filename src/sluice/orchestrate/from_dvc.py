"""``sluice init --from-dvc``: a DVC project's pipeline and pinned data, in sluice's terms.

Three steps, each in its own layer: :mod:`sluice.config.from_dvc` reads
``dvc.yaml`` and ``params.yaml`` into stages, :mod:`sluice.config.from_dvc_render`
writes the commented ``sluice.yaml``, and :mod:`sluice.data.dvc_import` pins the
data of the ``.dvc`` files in ``sluice.lock``. DVC's files are left in place:
removing them is the user's step, once the converted pipeline runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluice.config.base import CONFIG_FILE
from sluice.config.from_dvc import Conversion, Note, convert_dvc_yaml
from sluice.config.from_dvc_render import render_sluice_yaml
from sluice.data.dvc_import import DvcDataImport, import_dvc_data
from sluice.errors import ConfigError, UsageError
from sluice.util.fs import atomic_write_bytes


@dataclass
class Migration:
    """What ``init --from-dvc`` wrote and what it could not carry over."""

    config: Path
    conversion: Conversion
    data: DvcDataImport

    @property
    def notes(self) -> list[Note]:
        return [*self.conversion.notes, *self.data.notes]

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config.name,
            "stages": {s.name: {"dvc_stage": s.dvc_name,
                                "from": f"{s.origin.file}:{s.origin.line}"}
                       for s in self.conversion.stages},
            "imported": [{"path": p.path, "hash": p.hash, "size": p.size, "nfiles": p.nfiles}
                         for p in self.data.imported],
            "remote": [{"path": p.path, "hash": p.hash, "dvc_remote": p.remote}
                       for p in self.data.remote],
            "notes": [n.to_json() for n in self.notes],
        }


def migrate_from_dvc(folder: Path, *, force: bool = False) -> Migration:
    """Write ``sluice.yaml`` from ``folder/dvc.yaml`` and pin the DVC-tracked data."""
    target = folder / CONFIG_FILE
    if target.exists() and not force:
        raise UsageError(f"{target} already exists",
                         hint="pass --force to overwrite it with the converted pipeline")
    conversion = convert_dvc_yaml(folder)
    atomic_write_bytes(target, render_sluice_yaml(conversion).encode())
    from sluice.workspace.project import load_project

    try:
        project = load_project(folder.resolve())
    except ConfigError as exc:  # a construct the conversion let through: say what to do next
        raise ConfigError(f"the converted {CONFIG_FILE} does not load: {exc.message}",
                          location=exc.location,
                          hint=f"fix {CONFIG_FILE} there (it was written; DVC's data was not "
                               "imported yet), then pin the data with `sluice data add PATH`"
                          ) from None
    return Migration(target, conversion, import_dvc_data(project))
