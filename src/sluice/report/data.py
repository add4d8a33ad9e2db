"""The data part of a run report: schema validation results and drift, with plots.

Validation ran as ``validate-<dataset>`` check stages; their results come back
from the validation cache (keyed by the data's content hash), so the report
reads no data again. Drift was computed before the stages ran
(:mod:`sluice.data.drift_check`); its histograms are drawn into the report folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sluice.config.builtin_stages import dataset_of
from sluice.errors import SluiceError
from sluice.workspace.project import Project

_VALIDATED = ("ran", "cached", "failed")


def data_section(project: Project, result: Any, folder: Path) -> dict[str, Any] | None:
    """JSON and Markdown of the run's validations and drift; None when it had neither."""
    names = [d for o in result.outcomes
             if o.status in _VALIDATED and (d := dataset_of(o.stage)) is not None
             and d in project.config.datasets]
    if not names and not result.drift:
        return None
    from sluice.data.validation import validate_dataset
    from sluice.data.validation.render import render_markdown as validation_markdown

    validations, notes = [], []
    for name in names:
        try:
            validations.append(validate_dataset(project, name))
        except SluiceError as exc:
            notes.append(f"dataset `{name}`: {exc.message}")
    lines = []
    if validations:
        lines += [validation_markdown(validations), ""]
    lines += [f"- {note}" for note in notes]
    images: list[str] = []
    if result.drift:
        from sluice.data.drift_render import render_markdown as drift_markdown

        for item in result.drift:
            if item.report is None:
                lines += [f"### Drift of `{item.dataset}`", "", f"_{item.note}_", ""]
                continue
            before = {p.name for p in folder.glob("*.png")}
            text = drift_markdown(item.report, folder)
            lines += [text.replace("### Data drift",
                                   f"### Drift of `{item.dataset}` against {item.reference}", 1),
                      ""]
            images += sorted({p.name for p in folder.glob("*.png")} - before)
    return {"validation": [v.to_json() for v in validations],
            "drift": [d.to_json() for d in result.drift],
            "notes": notes, "images": images, "markdown": "\n".join(lines).rstrip() + "\n"}
