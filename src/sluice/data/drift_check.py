"""Drift of a tier's datasets against their reference, checked before the stages run.

For every dataset with a ``drift:`` section that the run reads, the data in
the workspace is compared with its reference (``sluice.data.drift``): the same
dataset at the run's base revision, or at the commit the model behind an alias
was trained from. A breach of a ``fail`` threshold gates the expensive stages
like a failing check; ``warn`` breaches are reported only. A dataset whose
reference cannot be had (no base revision, no version at the alias) is noted,
not failed: drift needs something to compare with.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sluice.errors import SluiceError, UsageError
from sluice.workspace.datasets import datasets_read
from sluice.workspace.project import Project

if TYPE_CHECKING:
    from sluice.data.drift import DriftReport

STAGE_PREFIX = "drift-"


@dataclass
class DatasetDrift:
    """One dataset's drift, or why it was not computed."""

    dataset: str
    reference: str  # e.g. "base 3f2a9c1b2e4d" or "churn@production (v3, 3f2a9c1b2e4d)"
    report: DriftReport | None = None
    note: str | None = None

    @property
    def failed(self) -> bool:
        return self.report is not None and bool(self.report.failed)

    def summary(self) -> str:
        """One line for the run's output."""
        if self.report is None:
            return f"dataset `{self.dataset}`: {self.note}"
        drifted = self.report.drifted
        notes = "".join(f" (note: {note})" for note in self.report.notes)
        if not drifted:
            return f"dataset `{self.dataset}`: no drift against {self.reference}{notes}"
        level = "FAIL" if self.failed else "warning"
        names = ", ".join(f"{c.name} ({', '.join(c.breaches)})" for c in drifted[:3])
        more = f" and {len(drifted) - 3} more" if len(drifted) > 3 else ""
        return (f"dataset `{self.dataset}`: drift {level} against {self.reference}: "
                f"{names}{more}{notes}")

    def to_json(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "reference": self.reference, "note": self.note,
                "failed": self.failed,
                "report": None if self.report is None else self.report.to_json()}


def _reader_format(project: Project, name: str) -> str:
    return str(project.config.datasets[name].format)


def _training_model(project: Project, dataset: str) -> str | None:
    """The model whose training reads ``dataset`` (directly or upstream), if exactly one."""
    found = [model for model, spec in project.config.models.items()
             if dataset in datasets_read(project, [spec.train])]
    return found[0] if len(found) == 1 else None


def reference_revision(project: Project, dataset: str, spec: Any,
                       base: str | None) -> tuple[str, str]:
    """(revision, description) of the dataset's reference; UsageError when there is none."""
    if spec.reference == "base":
        if base is None:
            raise UsageError(f"drift of dataset `{dataset}` needs a base revision",
                             hint="pass --base REV (in CI: --base auto)")
        return base, f"base {base[:10]}"
    model = spec.model or _training_model(project, dataset)
    if model is None:
        raise UsageError(f"drift of dataset `{dataset}`: which model's training data is the "
                         "reference?", hint=f"set `drift: model:` of dataset `{dataset}`")
    from sluice.db import open_project_database
    from sluice.registry.versions import get_version

    version = get_version(open_project_database(project), model, alias=spec.alias)
    commit = version.lineage.get("commit")
    if not commit:
        raise UsageError(f"version {version.version} of `{model}` records no commit",
                         hint="register it from a git checkout")
    return str(commit), f"{model}@{spec.alias} (v{version.version}, {str(commit)[:12]})"


def dataset_drift(project: Project, dataset: str, base: str | None) -> DatasetDrift:
    """Compare ``dataset`` in the workspace with its reference (see module docstring)."""
    datasets = project.config.datasets
    if dataset not in datasets:
        from sluice.util.suggest import did_you_mean

        raise UsageError(f"no dataset named `{dataset}`" + did_you_mean(dataset, list(datasets)),
                         hint="datasets are declared under `datasets:` in sluice.yaml")
    spec = datasets[dataset].drift
    if spec is None:  # asked for by name: the documented defaults
        from sluice.config.schema import DriftSpec

        spec = DriftSpec()
    revision, described = reference_revision(project, dataset, spec, base)
    # pandas and friends only once there is something to compare with.
    from sluice.data.drift import compute_drift
    from sluice.data.reference import dataset_at
    from sluice.data.validation.readers import iter_chunks

    fmt = _reader_format(project, dataset)
    current = project.root / posixpath.normpath(project.config.datasets[dataset].path.strip())
    with dataset_at(project, dataset, revision) as reference:
        report = compute_drift(iter_chunks(reference, fmt), iter_chunks(current, fmt), spec)
    return DatasetDrift(dataset, described, report)


def drifted_datasets(project: Project, stages: list[str]) -> list[str]:
    """Datasets with a ``drift:`` section that ``stages`` (or their upstream) read."""
    return datasets_read(project, stages, lambda dataset: dataset.drift is not None)


def check_drift(project: Project, stages: list[str], base: str | None) -> list[DatasetDrift]:
    """Drift of every dataset ``stages`` read that asks for it; never raises for one dataset."""
    results = []
    for dataset in drifted_datasets(project, stages):
        try:
            results.append(dataset_drift(project, dataset, base))
        except SluiceError as exc:
            results.append(DatasetDrift(dataset, "", note=f"drift not checked: {exc.message}"))
    return results

