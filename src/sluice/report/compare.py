"""`sluice plots diff`: one HTML page with two revisions' plots overlaid, per model.

The sides and their evidence come from :mod:`sluice.evaluate.compare` (the same
ones `sluice metrics diff` prints): predictions fetched by hash, never whatever
the workspace happens to hold. Per model the page has the metric table with
paired intervals, ROC and calibration curves of both sides on one plot each
(binary models with scores), and per-slice values of the model's first metric
side by side. A side without predictions is named with the reason.
"""

from __future__ import annotations

import base64
import html
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluice.evaluate.compare import ModelComparison
from sluice.report.run import calibration_plot, roc_plot, save_figure
from sluice.util.fs import atomic_write_bytes
from sluice.workspace.project import Project


@dataclass
class PlotsDiff:
    page: Path
    plots: dict[str, list[str]] = field(default_factory=dict)  # model → image files drawn
    comparisons: list[ModelComparison] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"page": str(self.page), "plots": self.plots,
                "models": [c.to_json() for c in self.comparisons]}


def _slices_plot(series: list[tuple[str, Any]], metric: str, model: str,
                 folder: Path) -> str | None:
    """``metric`` per value of the first slice column both sides have, bars side by side."""
    import matplotlib.pyplot as plt
    import numpy as np

    from sluice.stats.metrics import metrics_by_slice

    columns = set.intersection(*(set(p.slices) for _, p in series))
    if not columns:
        return None
    column = sorted(columns)[0]
    values: dict[str, dict[str, float]] = {}
    for label, preds in series:
        for part in metrics_by_slice(preds, column, metrics=[metric]):
            if metric in part.metrics:
                values.setdefault(part.value, {})[label] = part.metrics[metric]
    if not values:
        return None
    names = sorted(values)
    fig, ax = plt.subplots(figsize=(6, 0.6 + 0.5 * len(names)))
    y = np.arange(len(names))
    height = 0.8 / len(series)
    for i, (label, _) in enumerate(series):
        ax.barh(y + i * height, [values[n].get(label, np.nan) for n in names], height,
                label=label)
    ax.set_yticks(y + height * (len(series) - 1) / 2, names)
    ax.set_xlabel(metric)
    ax.set_title(f"{model}: {metric} by {column}")
    ax.legend()
    return save_figure(fig, folder, f"{model}-slices.png")


def _draw(comparison: ModelComparison, folder: Path) -> list[str]:
    series = comparison.series  # the predictions the comparison read, not read again
    files: list[str] = []
    binary = [p for _, p in series if p.task == "binary" and p.y_score is not None]
    if binary:
        files.append(roc_plot(series, comparison.model, folder, f"{comparison.model}-roc.png"))
        if all(p.scores_are_probabilities for p in binary):
            files.append(calibration_plot(series, comparison.model, folder,
                                          f"{comparison.model}-calibration.png"))
    if series and comparison.rows:
        drawn = _slices_plot(series, comparison.rows[0].metric, comparison.model, folder)
        files += [drawn] if drawn else []
    return files


def _table(comparison: ModelComparison) -> str:
    def num(v: float | None) -> str:
        return "–" if v is None else f"{v:.4f}"

    rows = "".join(
        f"<tr><td>{html.escape(r.metric)}</td><td>{num(r.old)}</td><td>{num(r.new)}</td>"
        f"<td>{num(r.delta)}</td><td>"
        + ("" if r.low is None else f"[{num(r.low)}, {num(r.high)}]") + "</td></tr>"
        for r in comparison.rows)
    return ("<table><tr><th>metric</th><th>old</th><th>new</th><th>delta</th>"
            f"<th>interval</th></tr>{rows}</table>")


def plots_diff(project: Project, old_rev: str | None, new_rev: str | None,
               out: Path) -> PlotsDiff:
    """Write the page to ``out`` (atomically) for every model; what was drawn."""
    import matplotlib

    matplotlib.use("Agg")
    from sluice.db import open_project_database
    from sluice.evaluate.compare import check_revisions, compare_sides, model_sides

    old_rev = old_rev or project.config.spec.ci.default_branch
    check_revisions(project, old_rev, new_rev)
    db = open_project_database(project)
    result = PlotsDiff(out)
    body = [f"<h1>sluice plots diff: {html.escape(old_rev)} → "
            f"{html.escape(new_rev or 'the working tree')}</h1>"]
    with tempfile.TemporaryDirectory(dir=project.state_dir) as images:
        folder = Path(images)
        for model in project.config.models:
            comparison = compare_sides(project, model,
                                       *model_sides(project, db, model, old_rev, new_rev))
            result.comparisons.append(comparison)
            files = result.plots[model] = _draw(comparison, folder)
            body.append(f"<h2>{html.escape(model)}: {html.escape(comparison.old.label)} → "
                        f"{html.escape(comparison.new.label)}</h2>"
                        f"<p>{html.escape(comparison.method)}</p>{_table(comparison)}")
            body += [f"<p>{html.escape(side.label)}: {html.escape(side.reason)}</p>"
                     for side in (comparison.old, comparison.new) if side.reason]
            body += [f"<p>note: {html.escape(n)}</p>" for n in comparison.notes]
            for name in files:
                data = base64.b64encode((folder / name).read_bytes()).decode()
                body.append(f'<figure><img alt="{html.escape(name)}" '
                            f'src="data:image/png;base64,{data}"></figure>')
    style = ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;}"
             "td,th{border:1px solid #ccc;padding:.2rem .5rem;}table{border-collapse:collapse;}"
             "img{max-width:100%;}")
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>sluice plots diff"
            f"</title><style>{style}</style></head><body>" + "\n".join(body) + "</body></html>")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, page.encode())
    return result
