"""Run reports: what changed, what ran, what it cost, and each model's verdicts, with plots.

One report per run, written to ``.sluice/reports/RUN_ID/`` as JSON (the data),
Markdown (for a pull-request comment or ``$GITHUB_STEP_SUMMARY``; readable
without its images), a self-contained HTML page (plots embedded), and PNG plots
drawn with matplotlib's Agg backend.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
from pathlib import Path
from typing import Any

from sluice.util.credentials import mask
from sluice.util.fs import atomic_write_bytes, read_json
from sluice.workspace.project import Project

REPORTS_DIR = "reports"


def build_report(plan: Any, result: Any, evaluations: list[Any]) -> dict[str, Any]:
    """The report's data: plain JSON."""
    impact = plan.tier.impact
    return {
        "run_id": result.run_id, "tier": plan.tier.name, "fraction": plan.tier.fraction,
        "seeds": len(plan.tier.seeds), "ok": result.ok, "wall_s": result.wall_s,
        "notes": plan.tier.notes, "warnings": plan.warnings,
        "changes": None if impact is None else {
            "base": impact.base, "affected_models": [m for m, i in impact.models.items()
                                                     if i.affected],
            "chains": {s.name: [" ← ".join(c) for c in s.chains]
                       for s in impact.stages.values() if s.affected}},
        "stages": [{"stage": o.stage, "status": o.status, "reason": o.reason,
                    "wall_s": o.wall_s, "cpu_s": o.cpu_s, "restored": o.restored}
                   for o in result.outcomes],
        "budget": None if plan.budget is None else {
            "estimate": vars(plan.budget.total), "over": plan.budget.over},
        "models": [e.to_json() for e in evaluations],
    }


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "–"
    if float(value).is_integer() and abs(value) < 1e12:
        return f"{int(value):,}"  # counts such as `n`: 39,930, not 3.993e+04
    return f"{value:.{digits}g}"


def _plots(report: dict[str, Any], project: Project, evaluations: list[Any],
           folder: Path) -> dict[str, list[str]]:
    """PNG files per model: metric deltas, ROC, calibration, per-slice deltas."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np


    made: dict[str, list[str]] = {}
    for evaluation in evaluations:
        if not evaluation.candidate:
            continue  # it could not be evaluated: its notes say why, there is nothing to draw
        files: list[str] = []
        rows = [m for m in evaluation.metrics if m.delta is not None]
        if rows:
            fig, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * len(rows)))
            y = np.arange(len(rows))
            deltas = [r.delta for r in rows]
            low = [r.delta - (r.low if r.low is not None else r.delta) for r in rows]
            high = [(r.high if r.high is not None else r.delta) - r.delta for r in rows]
            ax.errorbar(deltas, y, xerr=[low, high], fmt="o", capsize=4)
            ax.axvline(0, color="grey", lw=1)
            ax.set_yticks(y, [r.metric for r in rows])
            ax.set_xlabel("candidate − baseline (95 % interval)")
            ax.set_title(f"{evaluation.model}: metric deltas")
            files.append(save_figure(fig, folder, f"{evaluation.model}-deltas.png"))
        # Drawn from the bytes the verdict used, never from whatever the workspace holds.
        candidate = _evidence_predictions(project, evaluation.evidence.get("candidate"), folder)
        baseline = _evidence_predictions(project, evaluation.evidence.get("baseline"), folder)
        if candidate is not None and candidate.task == "binary" and \
                candidate.y_score is not None:
            series = [("candidate", candidate), ("baseline", baseline)]
            files.append(roc_plot(series, evaluation.model, folder,
                                  f"{evaluation.model}-roc.png"))
            if candidate.scores_are_probabilities:
                files.append(calibration_plot(series, evaluation.model, folder,
                                              f"{evaluation.model}-calibration.png"))
        slice_gates = [g for g in evaluation.gates if g.slice and g.point is not None]
        if slice_gates:
            fig, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * len(slice_gates)))
            for i, gate in enumerate(slice_gates):
                color = {"PASS": "tab:green", "FAIL": "tab:red"}.get(gate.verdict, "tab:orange")
                lo = gate.point - (gate.low if gate.low is not None else gate.point)
                hi = (gate.high if gate.high is not None else gate.point) - gate.point
                ax.errorbar([gate.point], [i], xerr=[[lo], [hi]], fmt="o", color=color,
                            capsize=4)
            ax.axvline(0, color="grey", lw=1)
            ax.set_yticks(range(len(slice_gates)),
                          [f"{g.slice} {g.metric}" for g in slice_gates])
            ax.set_title(f"{evaluation.model}: per-slice deltas")
            files.append(save_figure(fig, folder, f"{evaluation.model}-slices.png"))
        made[evaluation.model] = files
    return made


def _evidence_predictions(project: Project, evidence: dict[str, Any] | None,
                          folder: Path) -> Any:
    """The predictions a verdict used (sluice.evaluate.evidence), to plot; None if they are gone."""
    import tempfile

    from sluice.errors import SluiceError
    from sluice.evaluate.evidence import Evidence, materialize
    from sluice.evaluate.predictions import read_predictions

    if not evidence or not evidence.get("hash"):
        return None
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        try:
            return read_predictions(materialize(project, Evidence(**evidence), Path(scratch)))
        except SluiceError:
            return None


def save_figure(fig: Any, folder: Path, name: str) -> str:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    partial = folder / f".{name}.part"
    fig.savefig(partial, dpi=110, format="png")
    plt.close(fig)
    os.replace(partial, folder / name)  # atomic, like every other write
    return name


def roc_plot(series: list[tuple[str, Any]], model: str, folder: Path, name: str) -> str:
    """ROC curves of several labelled predictions (binary, with scores) on one plot."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for label, preds in series:
        if preds is None or preds.y_score is None:
            continue
        order = np.argsort(-preds.y_score, kind="stable")
        positive = preds.y_true[order] == 1
        tpr = np.concatenate([[0], np.cumsum(positive) / max(positive.sum(), 1)])
        fpr = np.concatenate([[0], np.cumsum(~positive) / max((~positive).sum(), 1)])
        ax.plot(fpr, tpr, label=label)
    return _diagonal_plot(fig, ax, ("false positive rate", "true positive rate"),
                          f"{model}: ROC", folder, name)


def calibration_plot(series: list[tuple[str, Any]], model: str, folder: Path,
                     name: str) -> str:
    """Reliability curves (10 bins) of several labelled predictions on one plot."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    edges = np.linspace(0, 1, 11)
    for label, preds in series:
        if preds is None or preds.y_score is None:
            continue
        bins = np.clip(np.digitize(preds.y_score, edges) - 1, 0, 9)
        mean_score = [preds.y_score[bins == b].mean() for b in range(10) if (bins == b).any()]
        observed = [(preds.y_true[bins == b] == 1).mean() for b in range(10) if (bins == b).any()]
        ax.plot(mean_score, observed, marker="o", label=label)
    return _diagonal_plot(fig, ax, ("mean predicted probability", "observed frequency"),
                          f"{model}: calibration", folder, name)


def _diagonal_plot(fig: Any, ax: Any, labels: tuple[str, str], title: str, folder: Path,
                   name: str) -> str:
    """Finish a plot whose ideal is the diagonal (ROC's chance line, perfect calibration)."""
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--")
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(title)
    ax.legend()
    return save_figure(fig, folder, name)


def markdown(report: dict[str, Any], plots: dict[str, list[str]] | None = None) -> str:
    lines = [f"## sluice · tier `{report['tier']}` · run {report['run_id']}", ""]
    status = "✅ all stages succeeded" if report["ok"] else "❌ some stages did not succeed"
    lines += [f"{status} in {report['wall_s']:.1f} s (fraction {report['fraction']:g}, "
              f"{report['seeds']} seed(s))", ""]
    lines += [f"⚠️ **warning:** {w}\n" for w in report.get("warnings", [])]
    if report.get("changes"):
        changes = report["changes"]
        lines += [f"**What changed** since {changes['base']}:", ""]
        for chains in changes["chains"].values():
            lines += [f"- {chain}" for chain in chains[:2]]
        lines.append("")
    lines += ["| stage | status | time | why |", "| --- | --- | --- | --- |"]
    for stage in report["stages"]:
        took = f"{stage['wall_s']:.1f} s" if stage["wall_s"] else "–"
        lines.append(f"| {stage['stage']} | {stage['status']} | {took} | {stage['reason']} |")
    if report.get("budget"):
        estimate = report["budget"]["estimate"]
        lines += ["", f"Estimated cost {estimate['wall']:.0f} s wall, ${estimate['usd']:.2f}."]
        lines += [f"- ⚠️ {over}" for over in report["budget"]["over"]]
    for model in report["models"]:
        verdict = model["verdict"] or "no gates"
        icon = {"PASS": "✅", "FAIL": "❌", "INCONCLUSIVE": "⚠️"}.get(verdict, "")
        lines += ["", f"### Model `{model['model']}`: {icon} {verdict}", ""]
        lines += [f"_{note}_" for note in model["notes"]]
        lines += _evidence_lines(model)
        seeded = model.get("seeds", 1) > 1
        lines += ["", "| metric | candidate | baseline | delta | 95 % interval |"
                  + (" seeds (min–max) |" if seeded else ""),
                  "| --- | --- | --- | --- | --- |" + (" --- |" if seeded else "")]
        for row in model["metrics"]:
            interval = f"[{_fmt(row['low'])}, {_fmt(row['high'])}]" \
                if row["low"] is not None else "–"
            spread = f" {_fmt(min(row['seeds']))}–{_fmt(max(row['seeds']))} |" \
                if seeded and row["seeds"] else ""
            lines.append(f"| {row['metric']} | {_fmt(row['candidate'])} | "
                         f"{_fmt(row['baseline'])} | {_fmt(row['delta'])} | {interval} |{spread}")
        if model.get("reported"):
            lines += ["", "Reported by the stage (point values, no interval):", "",
                      "| metric | candidate | baseline | delta |", "| --- | --- | --- | --- |"]
            lines += [f"| {r['metric']} | {_fmt(r['candidate'])} | {_fmt(r['baseline'])} | "
                      f"{_fmt(r['delta'])} |" for r in model["reported"]]
        if model["gates"]:
            lines += ["", "| gate | slice | verdict | why |", "| --- | --- | --- | --- |"]
            for gate in model["gates"]:
                lines.append(f"| {gate['metric']} {gate['rule']} | {gate['slice'] or 'all'} | "
                             f"**{gate['verdict']}** | {gate['reason']} |")
            regressed = [g for g in model["gates"] if g["slice"] and g["verdict"] != "PASS"]
            if regressed:
                lines += ["", "Slices that regressed or are unclear: " +
                          ", ".join(f"{g['slice']} ({g['verdict']})" for g in regressed)]
        for name in (plots or {}).get(model["model"], []):
            lines += ["", f"![{name}]({name})"]
    if report.get("data"):
        lines += ["", report["data"]["markdown"]]
    return "\n".join(lines) + "\n"


_SOURCES = {"store": "the store (restored by fingerprint)", "file": "the committed file",
            "": "the workspace", None: "the workspace"}


def _evidence_lines(model: dict[str, Any]) -> list[str]:
    """"n of m gates evaluated" and the hashes the verdict was computed from."""
    from sluice.evaluate.evidence import short

    gates = model.get("gates", [])
    evaluated = model.get("gates_evaluated", len(gates))
    lines = ["", f"{evaluated} of {len(gates)} gates evaluated."] if gates else []
    evidence = model.get("evidence") or {}
    for role in ("candidate", "baseline"):
        item = evidence.get(role)
        if not item:
            continue
        if item.get("hash"):
            made = f", fingerprint `{short(item['fingerprint'])}`" \
                if item.get("fingerprint") else ""
            stage = f" (stage `{item['stage']}`{made})" if item.get("stage") else made
            lines.append(f"- Evidence, {role}: `{item['path']}` hash `{short(item['hash'])}`"
                         f"{stage}, from {_SOURCES.get(item.get('source'), item.get('source'))}")
        else:
            lines.append(f"- Evidence, {role}: missing: {item.get('reason', '')}")
    return lines


def markdown_html(report: dict[str, Any]) -> str:
    """The report's Markdown as HTML (CommonMark + tables), without its image links.

    Raw HTML in the Markdown is not passed through (``html=False``): reports carry
    text from pull requests (stage names, log lines, branch names). Used by the
    HTML page below and by `sluice ui`'s run page, which show the plots themselves.
    """
    from markdown_it import MarkdownIt

    # Emoji read well on GitHub, but headless browsers often lack the font.
    text = markdown(report)
    for emoji in ("✅ ", "❌ ", "⚠️ "):
        text = text.replace(emoji, "")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("!["))
    return str(MarkdownIt("commonmark", {"html": False}).enable("table").render(text))


def html_page(report: dict[str, Any], folder: Path, plots: dict[str, list[str]]) -> str:
    """A self-contained page: the Markdown rendered (:func:`markdown_html`), plots embedded."""
    body = [markdown_html(report)]
    for model, files in plots.items():
        for name in files:
            data = base64.b64encode((folder / name).read_bytes()).decode()
            body.append(f'<figure><img alt="{html.escape(name)}" '
                        f'src="data:image/png;base64,{data}"><figcaption>{html.escape(model)}: '
                        f"{html.escape(name)}</figcaption></figure>")
    style = ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;}"
             "td,th{border:1px solid #ccc;padding:.2rem .5rem;}table{border-collapse:collapse;"
             "margin:1rem 0;}img{max-width:100%;}code{background:#f4f4f4;padding:0 .2rem;}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>sluice run "
            f"{html.escape(report['run_id'])}</title><style>{style}</style></head><body>"
            + "\n".join(body) + "</body></html>")


def report_folder(project: Project, run_id: str) -> Path:
    return project.state_dir / REPORTS_DIR / run_id


def write_report(project: Project, report: dict[str, Any], evaluations: list[Any]) -> Path:
    """Write JSON, Markdown, HTML and plots; returns the report's folder."""
    folder = report_folder(project, str(report["run_id"]))
    folder.mkdir(parents=True, exist_ok=True)
    plots = _plots(report, project, evaluations, folder) if evaluations else {}
    if report.get("data") and report["data"]["images"]:
        plots["data"] = report["data"]["images"]
    report = {**report, "plots": plots}
    # Reports are uploaded and published: no credential may end up in one.
    atomic_write_bytes(folder / "report.json", mask(json.dumps(report, indent=1)).encode())
    atomic_write_bytes(folder / "report.md", mask(markdown(report, plots)).encode())
    atomic_write_bytes(folder / "report.html", mask(html_page(report, folder, plots)).encode())
    atomic_write_bytes(project.state_dir / REPORTS_DIR / "latest", report["run_id"].encode())
    return folder


def load_report(project: Project, run_id: str | None) -> tuple[dict[str, Any], Path]:
    from sluice.errors import UsageError

    reports = project.state_dir / REPORTS_DIR
    if run_id is None:
        latest = reports / "latest"
        if not latest.exists():
            raise UsageError("no report yet", hint="run `sluice run --tier merge` first")
        run_id = latest.read_text().strip()
    # In CI's publish job the reports folder comes from the pull request's own build:
    # a run id names one folder under the reports (pipeline.base.new_run_id makes
    # them), never a path.
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*", run_id):
        raise UsageError(f"`{run_id[:80]}` is not a run id",
                         hint="run ids look like 20261205T201731-9e1575 (`sluice report "
                              "--json` lists the latest)")
    data = read_json(reports / run_id / "report.json")
    if not isinstance(data, dict):
        known = sorted(p.name for p in reports.iterdir() if p.is_dir()) if reports.is_dir() \
            else []
        raise UsageError(f"no report for run `{run_id}`",
                         hint="recent runs: " + (", ".join(known[-5:]) or "(none)"))
    return data, reports / run_id


def older_report_note(project: Project, shown: str) -> str | None:
    """Why the latest report is not the latest run's, when it is not: the run shown and
    when it ran, and the later run(s) that wrote none (a plain run without gates, a
    run that reused this report, a run refused by a budget). None when it is the last."""
    import time

    from sluice.db import configured_database, database_url
    from sluice.db.read import Reader, open_project_reader, sqlite_reader

    url = database_url(project.root, configured_database(project))
    # A report folder copied from another machine (CI's publish job) comes without a
    # ledger: then there is nothing to compare with, and no database is created for it.
    reader: Reader | None = sqlite_reader(url) if url.startswith("sqlite:") else \
        open_project_reader(project)
    if reader is None:
        return None
    latest = reader.rows(
        "SELECT run_id, tier, started_at FROM runs ORDER BY started_at DESC LIMIT 1")
    when = reader.rows(
        "SELECT started_at FROM runs WHERE run_id = :run_id", {"run_id": shown})
    if not latest or latest[0]["run_id"] == shown:
        return None
    if when and when[0]["started_at"] >= latest[0]["started_at"]:
        return None

    def at(started: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))

    shown_at = f" of {at(when[0]['started_at'])}" if when else ""
    last = latest[0]
    return (f"note: this is the report of run {shown}{shown_at}; the latest run, "
            f"{last['run_id']} (tier `{last['tier']}`, {at(last['started_at'])}), wrote no "
            "report of its own (a run writes one when it evaluates a model or runs a tier, "
            "unless nothing changed since this one)")
