"""Drift reports for people and scripts: terminal text, Markdown with PNG plots, JSON.

The Markdown names the most drifted columns first (``drift.top`` of them in detail,
each with a small reference-vs-current histogram when ``image_dir`` is given) and
then a table of every column. It reads well without its images, e.g. in a CI log.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from pathlib import Path
from typing import Any

from sluice.data.drift import ADDED, DTYPE, EMPTY, REMOVED, ColumnDrift, DriftReport
from sluice.util.fs import atomic_write_bytes

LABELS = {"psi": "PSI", "ks": "KS", "wasserstein": "W1/σ", "js": "JS", "linf": "L∞",
          "missing": "missing"}
TABLE_ROWS = 50


def render_json(report: DriftReport) -> dict[str, Any]:
    """The report as plain JSON data (infinities and NaN as null)."""
    return report.to_json()


def render_text(report: DriftReport) -> str:
    """A few lines for a terminal: the drifted columns, most severe first."""
    drifted = report.drifted
    sizes = f"reference {report.reference_rows:,} rows, current {report.current_rows:,} rows"
    if not drifted:
        lines = [f"drift: none in {len(report.columns)} columns ({sizes})"]
    else:
        lines = [f"drift: {len(drifted)} of {len(report.columns)} columns drifted ({sizes}) "
                 f"— {report.level.upper()}"]
        width = max(len(c.name) for c in drifted[: report.top])
        for column in drifted[: report.top]:
            lines.append(f"  {column.level.upper():<4}  {column.name:<{width}}  "
                         f"{column.kind:<11}  {'; '.join(describe_breaches(column))}")
        if len(drifted) > report.top:
            lines.append(f"  … and {len(drifted) - report.top} more drifted columns "
                         f"(drift.top = {report.top})")
    if report.ignored:
        lines.append(f"ignored: {', '.join(report.ignored)}")
    lines += [f"note: {note}" for note in report.notes]
    return "\n".join(lines)


def describe_breaches(column: ColumnDrift) -> list[str]:
    """One phrase per breach, e.g. ``PSI 0.31 > 0.2``."""
    phrases = []
    for breach in column.breaches:
        if breach == ADDED:
            phrases.append("column only in the current data")
        elif breach == REMOVED:
            phrases.append("column only in the reference data")
        elif breach == DTYPE:
            phrases.append(f"type changed: {column.reference.get('dtype')} → "
                           f"{column.current.get('dtype')}")
        elif breach == EMPTY:
            phrases.append("no rows to compare")
        elif breach == "missing":
            stats = column.stats
            phrases.append(f"missing {_pct(stats['missing_ref'])} → {_pct(stats['missing_cur'])}"
                           f" (limit ±{_pct(column.thresholds['missing'])})")
        else:
            phrases.append(f"{LABELS[breach]} {_num(column.stats[breach])} > "
                           f"{_num(column.thresholds[breach])}")
    return phrases


def render_markdown(report: DriftReport, image_dir: Path | None = None,
                    markdown_dir: Path | None = None) -> str:
    """Markdown: top drifted columns (with plots written to ``image_dir``), then a table.

    Image links are relative to ``markdown_dir``, the folder the Markdown will be saved
    in (default: ``image_dir`` itself).
    """
    drifted = report.drifted
    head = (f"{len(drifted)} of {len(report.columns)} columns drifted" if drifted
            else f"no drift in {len(report.columns)} columns")
    lines = [f"### Data drift: {report.level.upper()} — {head}", "",
             f"Reference {report.reference_rows:,} rows, current {report.current_rows:,} rows.",
             ""]
    lines += [f"> {note}" for note in report.notes]
    if report.notes:
        lines.append("")
    for rank, column in enumerate(drifted[: report.top], start=1):
        lines += [f"#### {rank}. {_code(column.name)} ({column.kind}) — {column.level.upper()}",
                  "", " · ".join(describe_breaches(column)), ""]
        if image_dir is not None and column.histogram is not None:
            path = write_plot(column, image_dir)
            link = Path(os.path.relpath(path, markdown_dir or image_dir)).as_posix()
            lines += [f"![{_escape(column.name)}: reference vs current]({link})", ""]
    if len(drifted) > report.top:
        lines += [f"… and {len(drifted) - report.top} more drifted columns in the table "
                  f"(`drift.top` = {report.top}).", ""]
    lines += _table(report)
    if report.ignored:
        lines += ["", "Ignored: " + ", ".join(_code(n) for n in report.ignored)]
    return "\n".join(lines) + "\n"


def _table(report: DriftReport) -> list[str]:
    drifted = report.drifted
    rest = sorted((c for c in report.columns if not c.breaches), key=lambda c: c.name)
    rows = [*drifted, *rest]
    lines = ["| column | kind | level | PSI | KS | W1/σ | JS | L∞ | missing Δ | breaches |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for column in rows[:TABLE_ROWS]:
        s = column.stats
        delta = s["missing_delta"]
        lines.append(
            f"| {_code(column.name)} | {column.kind} | {column.level} | {_num(s['psi'])} | "
            f"{_num(s['ks'])} | {_num(s['wasserstein'])} | {_num(s['js'])} | "
            f"{_num(s['linf'])} | {'–' if delta is None else f'{delta:+.1%}'} | "
            f"{', '.join(column.breaches) or '–'} |")
    if len(rows) > TABLE_ROWS:
        lines.append(f"\n… {len(rows) - TABLE_ROWS} more columns without drift.")
    return lines


def plot_name(column: str) -> str:
    """A file name per column, safe on every filesystem and distinct per column."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", column).strip("._")[:40] or "column"
    return f"drift-{slug}-{hashlib.sha256(column.encode()).hexdigest()[:8]}.png"


def write_plot(column: ColumnDrift, image_dir: Path) -> Path:
    """Draw the column's reference-vs-current histogram into a small PNG; return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    histogram = column.histogram or {}
    fig, ax = plt.subplots(figsize=(4.8, 2.8))
    try:
        if "edges" in histogram:
            _draw_numeric(ax, histogram, column.datetime)
        else:
            _draw_categorical(ax, histogram)
        ax.set_title(f"{column.name}: {', '.join(column.breaches) or 'no drift'}", fontsize=9)
        ax.legend(fontsize=7)
        ax.tick_params(labelsize=7)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
    finally:
        plt.close(fig)
    path = image_dir / plot_name(column.name)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _draw_numeric(ax: Any, histogram: dict[str, Any], is_datetime: bool) -> None:
    import numpy as np

    edges = np.asarray(histogram["edges"], dtype=np.float64)
    if is_datetime:
        import matplotlib.dates as mdates

        dates: Any = mdates  # untyped module
        edges = dates.date2num(edges.astype("int64").astype("datetime64[ns]"))
        locator = dates.AutoDateLocator(maxticks=5)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator))
    for side, color in (("reference", "tab:blue"), ("current", "tab:orange")):
        ax.stairs(histogram[side], edges, label=side, color=color, fill=True, alpha=0.35)
        ax.stairs(histogram[side], edges, color=color)
    ax.set_ylabel("share (tails in the end bins)", fontsize=7)


def _draw_categorical(ax: Any, histogram: dict[str, Any]) -> None:
    import numpy as np

    names = [name if len(name) <= 24 else name[:23] + "…" for name in histogram["categories"]]
    y = np.arange(len(names))
    ax.barh(y - 0.2, histogram["reference"], height=0.4, label="reference", color="tab:blue")
    ax.barh(y + 0.2, histogram["current"], height=0.4, label="current", color="tab:orange")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("share", fontsize=7)


def _num(value: float | None) -> str:
    if value is None:
        return "–"
    return "∞" if value == float("inf") else f"{value:.3g}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _escape(text: str) -> str:
    return re.sub(r"([\\`*_\[\]|<>])", r"\\\1", text)


def _code(name: str) -> str:
    # A backtick inside the name would end the code span; a pipe would split a table cell.
    return "`" + name.replace("`", "'").replace("|", "\\|") + "`"
