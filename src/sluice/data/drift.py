"""Data drift: how far each column of a current dataset moved from a reference dataset.

Both datasets arrive as iterables of pandas DataFrame chunks and are each streamed
once into bounded-memory sketches (:mod:`sluice.stats.sketch`); the statistics are
computed from the two sketches:

- numeric and datetime columns: PSI on ``bins`` equal-frequency bins of the reference,
  the Kolmogorov–Smirnov statistic, and the Wasserstein-1 distance in units of the
  reference's standard deviation;
- other columns: PSI, the Jensen–Shannon distance (base 2, in [0, 1]) and the
  L-infinity distance between the category frequency vectors;
- every column: the change of the missing-value rate.

A statistic over its threshold (``DriftSpec``, per-column overrides in ``columns``) is a
breach; a column with breaches has the level of its ``on_drift`` (warn or fail).
Columns only on one side, a changed type and an empty side are breaches too.
docs/data.md ("Drift") has the formulas and the approximation bounds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sluice.stats.sketch import (
    CATEGORICAL,
    DATETIME,
    DEFAULT_MAX_CATEGORIES,
    DEFAULT_SKETCH_SIZE,
    ColumnSketch,
    DatasetSketch,
    FloatArray,
)

STATS = ("psi", "ks", "wasserstein", "js", "linf", "missing")
CHECKS = {"numeric": ("psi", "ks", "wasserstein", "missing"),
          "categorical": ("psi", "js", "linf", "missing")}
# Structural problems: always an alert, and ranked above any statistic.
ADDED, REMOVED, DTYPE, EMPTY = "added", "removed", "dtype", "empty"
PSI_FLOOR = 1e-4  # share given to a bin that is empty on one side, so PSI stays finite
PLOT_BINS = 30
PLOT_CATEGORIES = 12


@dataclass
class ColumnDrift:
    """The drift of one column: statistics, thresholds used, breaches and level."""

    name: str
    kind: str  # "numeric" (datetimes included) or "categorical"
    stats: dict[str, float | None]
    thresholds: dict[str, float | None]
    breaches: list[str] = field(default_factory=list)
    level: str = "ok"  # ok | warn | fail
    severity: float = 0.0  # max statistic / threshold over the checked statistics
    datetime: bool = False
    approx_error: float = 0.0  # bound on the error of KS (and of each PSI bin share)
    reference: dict[str, Any] = field(default_factory=dict)  # summary of each side
    current: dict[str, Any] = field(default_factory=dict)
    histogram: dict[str, Any] | None = None  # what the plot draws

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = _finite({
            "name": self.name, "kind": self.kind, "datetime": self.datetime,
            "level": self.level, "breaches": self.breaches, "severity": self.severity,
            "stats": self.stats, "thresholds": self.thresholds,
            "approx_error": self.approx_error, "reference": self.reference,
            "current": self.current, "histogram": self.histogram})
        return data


@dataclass
class DriftReport:
    """Per-column drift of a current dataset against its reference."""

    reference_rows: int
    current_rows: int
    columns: list[ColumnDrift]
    ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    top: int = 10

    @property
    def drifted(self) -> list[ColumnDrift]:
        """Columns with breaches, most severe first."""
        hits = [c for c in self.columns if c.breaches]
        return sorted(hits, key=lambda c: (-c.severity, c.name))

    @property
    def failed(self) -> bool:
        return any(c.level == "fail" for c in self.columns)

    @property
    def level(self) -> str:
        levels = {c.level for c in self.columns}
        return "fail" if "fail" in levels else "warn" if "warn" in levels else "ok"

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "failed": self.failed,
                "reference_rows": self.reference_rows, "current_rows": self.current_rows,
                "drifted": [c.name for c in self.drifted], "top": self.top,
                "ignored": self.ignored, "notes": self.notes,
                "columns": [c.to_json() for c in self.columns]}


def compute_drift(reference: Iterable[Any], current: Iterable[Any], spec: Any, *,
                  sketch_size: int = DEFAULT_SKETCH_SIZE,
                  max_categories: int = DEFAULT_MAX_CATEGORIES) -> DriftReport:
    """Stream ``reference`` then ``current`` (iterables of DataFrames) once each, and compare.

    ``spec`` is a ``DriftSpec`` or anything with the same attributes.
    """
    ref = DatasetSketch.from_chunks(reference, sketch_size=sketch_size,
                                    max_categories=max_categories)
    cur = DatasetSketch.from_chunks(current, sketch_size=sketch_size,
                                    max_categories=max_categories)
    return compare_sketches(ref, cur, spec)


def compare_sketches(ref: DatasetSketch, cur: DatasetSketch, spec: Any) -> DriftReport:
    """The drift report of two dataset sketches (e.g. a cached reference sketch)."""
    overrides: dict[str, Any] = dict(spec.columns or {})
    names = list(ref.columns) + [name for name in cur.columns if name not in ref.columns]
    ignored = [name for name in names if name in overrides and overrides[name].ignore]
    from sluice.util.suggest import did_you_mean

    notes = [f"drift.columns names {name!r}, which is in neither dataset"
             + did_you_mean(name, names) for name in overrides if name not in names]
    empty = [side for side, sketch in (("reference", ref), ("current", cur)) if not sketch.rows]
    notes += [f"the {side} data has no rows" for side in empty]
    columns = []
    for name in names:
        if name in ignored:
            continue
        thresholds, on_drift = _thresholds(spec, overrides.get(name))
        column = _compare_column(ref.columns.get(name), cur.columns.get(name), name,
                                 thresholds, int(spec.bins), bool(empty))
        if column.breaches:
            column.level = on_drift
        columns.append(column)
    return DriftReport(ref.rows, cur.rows, columns, ignored, notes, int(spec.top))


def _thresholds(spec: Any, override: Any) -> tuple[dict[str, float | None], str]:
    thresholds: dict[str, float | None] = {}
    for stat in STATS:
        value = getattr(override, stat, None) if override is not None else None
        if value is None:
            value = getattr(spec, stat)
        thresholds[stat] = None if value is None else float(value)
    on_drift = getattr(override, "on_drift", None) if override is not None else None
    return thresholds, str(on_drift or spec.on_drift)


def _compare_column(ref: ColumnSketch | None, cur: ColumnSketch | None, name: str,
                    thresholds: dict[str, float | None], bins: int,
                    empty: bool) -> ColumnDrift:
    decided = next((s.kind for s in (ref, cur) if s is not None and s.kind), None)
    kind = "categorical" if decided == CATEGORICAL else "numeric"
    stats: dict[str, float | None] = dict.fromkeys(
        ("psi", "ks", "wasserstein", "js", "linf", "missing_ref", "missing_cur",
         "missing_delta"))
    column = ColumnDrift(name, kind, stats, thresholds, datetime=decided == DATETIME,
                         reference=_summary(ref), current=_summary(cur))
    structural = (EMPTY if empty else ADDED if ref is None else REMOVED if cur is None
                  else DTYPE if ref.kind and cur.kind and ref.kind != cur.kind else None)
    if ref is not None and cur is not None and not empty:
        missing_ref, missing_cur = ref.missing / ref.rows, cur.missing / cur.rows
        stats.update(missing_ref=missing_ref, missing_cur=missing_cur,
                     missing_delta=missing_cur - missing_ref)
        if structural is None and ref.count and cur.count:
            if kind == "numeric":
                _numeric_stats(ref, cur, bins, column)
            else:
                _categorical_stats(ref, cur, column)
    ratios: dict[str, float] = {}
    for stat in CHECKS[kind]:
        value = stats["missing_delta" if stat == "missing" else stat]
        limit = thresholds[stat]
        if value is None or limit is None:
            continue
        ratios[stat] = abs(value) / limit if limit > 0 else (math.inf if value else 0.0)
        if abs(value) > limit:
            column.breaches.append(stat)
    column.severity = max(ratios.values(), default=0.0)
    if structural is not None:
        column.breaches.insert(0, structural)
        column.severity = math.inf
    return column


def _cdf(values: FloatArray, weights: FloatArray, points: FloatArray) -> FloatArray:
    """Fraction of the weight at or below each point."""
    cumulative = np.concatenate(([0.0], np.cumsum(weights)))
    result: FloatArray = cumulative[np.searchsorted(values, points, side="right")]
    result /= cumulative[-1]
    return result


def _quantiles(values: FloatArray, weights: FloatArray, qs: FloatArray) -> FloatArray:
    """The smallest retained value whose cumulative share reaches each q."""
    cumulative = np.cumsum(weights)
    index = np.searchsorted(cumulative, qs * cumulative[-1] * (1 - 1e-12), side="left")
    result: FloatArray = values[np.minimum(index, values.size - 1)]
    return result


def _numeric_stats(ref: ColumnSketch, cur: ColumnSketch, bins: int,
                   column: ColumnDrift) -> None:
    rv, rw = ref.quantiles.weighted()
    cv, cw = cur.quantiles.weighted()
    grid = np.union1d(rv, cv)  # every jump of either (approximate) CDF
    gap = np.abs(_cdf(rv, rw, grid) - _cdf(cv, cw, grid))
    ks = float(gap.max())
    raw_w1 = float(np.sum(np.diff(grid) * gap[:-1]))  # integral of |F_ref - F_cur|
    std = ref.moments.std
    w1 = raw_w1 / std if std > 0 else (0.0 if raw_w1 == 0 else math.inf)
    edges = np.unique(_quantiles(rv, rw, np.arange(1, bins) / bins))
    psi = _psi(_shares(rv, rw, edges), _shares(cv, cw, edges))
    column.stats.update(psi=psi, ks=ks, wasserstein=w1)
    column.stats["wasserstein_raw"] = raw_w1
    column.approx_error = ref.quantiles.rank_error + cur.quantiles.rank_error
    column.histogram = _numeric_histogram(rv, rw, cv, cw)


def _shares(values: FloatArray, weights: FloatArray, edges: FloatArray) -> FloatArray:
    """Shares of the bins (-inf, e1], (e1, e2], ..., (e_last, inf)."""
    inner = _cdf(values, weights, edges)
    return np.diff(np.concatenate(([0.0], inner, [1.0])))


def _psi(ref: FloatArray, cur: FloatArray) -> float:
    r = np.maximum(ref, PSI_FLOOR)
    c = np.maximum(cur, PSI_FLOOR)
    return float(np.sum((c - r) * np.log(c / r)))


def _numeric_histogram(rv: FloatArray, rw: FloatArray, cv: FloatArray,
                       cw: FloatArray) -> dict[str, Any]:
    """Both sides on one grid between their 0.5 % and 99.5 % quantiles (tails in the ends)."""
    probes = np.array([0.005, 0.995])
    low_r, high_r = _quantiles(rv, rw, probes)
    low_c, high_c = _quantiles(cv, cw, probes)
    low, high = float(min(low_r, low_c)), float(max(high_r, high_c))
    if high <= low:
        pad = max(abs(low) * 1e-3, 0.5)
        low, high = low - pad, high + pad
    edges = np.linspace(low, high, PLOT_BINS + 1)
    return {"edges": edges.tolist(), "reference": _shares(rv, rw, edges[1:-1]).tolist(),
            "current": _shares(cv, cw, edges[1:-1]).tolist()}


def _categorical_stats(ref: ColumnSketch, cur: ColumnSketch, column: ColumnDrift) -> None:
    ref_counts = ref.categories.frequencies()
    cur_counts = cur.categories.frequencies()
    keys = list(ref_counts) + [k for k in cur_counts if k not in ref_counts]
    p = np.array([ref_counts.get(k, 0) for k in keys], dtype=np.float64) / ref.count
    q = np.array([cur_counts.get(k, 0) for k in keys], dtype=np.float64) / cur.count
    middle = (p + q) / 2

    def divergence(a: FloatArray) -> float:
        seen = a > 0
        return float(np.sum(a[seen] * np.log2(a[seen] / middle[seen])))

    js = math.sqrt(min(max((divergence(p) + divergence(q)) / 2, 0.0), 1.0))
    column.stats.update(psi=_psi(p, q), js=js, linf=float(np.max(np.abs(p - q))))
    order = sorted(range(len(keys)), key=lambda i: (-max(p[i], q[i]), keys[i]))
    shown = order[:PLOT_CATEGORIES]
    histogram: dict[str, list[Any]] = {"categories": [keys[i] for i in shown],
                 "reference": [float(p[i]) for i in shown],
                 "current": [float(q[i]) for i in shown]}
    if len(order) > len(shown):
        rest = order[len(shown):]
        histogram["categories"].append(f"({len(rest)} more)")
        histogram["reference"].append(float(p[rest].sum()))
        histogram["current"].append(float(q[rest].sum()))
    column.histogram = histogram


def _summary(sketch: ColumnSketch | None) -> dict[str, Any]:
    if sketch is None:
        return {}
    summary: dict[str, Any] = {"rows": sketch.rows, "missing": sketch.missing,
                               "dtype": sketch.dtype}
    if sketch.kind == CATEGORICAL:
        counts = sketch.categories.frequencies()
        summary["distinct"] = len(counts)
        summary["capped"] = sketch.categories.other > 0
        if counts:
            top = max(counts, key=lambda k: counts[k])
            summary["top"], summary["top_share"] = top, counts[top] / sketch.count
    elif sketch.moments.count:
        m = sketch.moments
        summary.update(mean=m.mean, std=m.std, min=m.min, max=m.max)
    return summary


def _finite(value: Any) -> Any:
    """JSON has no infinities or NaN: they become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
