"""The paired bootstrap behind gates: confidence intervals for a metric, or for the
difference of a metric between two models on the same examples.

Resamples are drawn one of three equivalent ways, by cost: exact multinomial counts of
interchangeable *cells* (label metrics), exact *examples* (the same random stream as
``scipy.stats.bootstrap``) while n × resamples ≤ ``EXACT_WORK``, and beyond that a
*linearised* resampling of influence values (a million examples × 10,000 resamples in
seconds). Arrays stay within ``CHUNK_ELEMENTS`` values per chunk. docs/gates.md has the
formulas.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Literal

import numpy as np
import numpy.typing as npt

from sluice.errors import UsageError
from sluice.stats.kernels import Inputs, Prepared, multiplicities
from sluice.stats.metrics import Metric, resolve_metric
from sluice.stats.predictions import FloatArray, Predictions, align

Verdict = Literal["PASS", "FAIL", "INCONCLUSIVE"]
Direction = Literal["max_regression", "min_improvement", "min", "max"]
Method = Literal["bca", "percentile"]
Strategy = Literal["auto", "exact", "cells", "linear"]

CHUNK_ELEMENTS = 1 << 20  # values per array per chunk of resamples (8 MB of float64)
EXACT_WORK = 50_000_000  # n × resamples up to which examples are resampled one by one
CELL_WORK = 20_000_000  # cells × resamples up to which cell counts are drawn
JACKKNIFE_MAX = 2_000  # examples (or cells) up to which BCa's acceleration is a full jackknife
STRATA, TAILS = 512, 128  # linear resampling: strata, and extreme examples kept whole per end
UNDEFINED_MAX = 0.05  # share of resamples with no metric value beyond which we know nothing
NORMAL = NormalDist()


@dataclass(frozen=True)
class Interval:
    """A confidence interval: for a paired difference, or for one model's metric."""

    low: float
    high: float
    point: float
    method: str  # "bca", "percentile", "mcnemar", "newcombe", "delong", "seeds"
    n: int  # examples
    confidence: float = 0.95
    n_resamples: int = 0
    detail: str = ""
    relevel: Callable[[float], Interval] | None = field(default=None, repr=False,
                                                        compare=False)

    def at(self, confidence: float) -> Interval:
        """The same interval at another confidence level (no new resampling)."""
        check_confidence(confidence)
        if confidence == self.confidence:
            return self
        if self.relevel is None:
            raise UsageError("this interval cannot be recomputed at another confidence level")
        return self.relevel(confidence)


def check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise UsageError(f"confidence must be between 0 and 1, not {confidence}",
                         hint="e.g. 0.95 for a 95% interval")


# --------------------------------------------------------------------------- bootstrap


@dataclass(frozen=True, eq=False)
class _Resamples:
    values: FloatArray  # sorted metric values of the resamples where it is defined
    undefined: int
    point: float
    accel: float  # BCa acceleration
    n: int
    detail: str


def paired_bootstrap(metric: str | Metric, candidate: Predictions, baseline: Predictions,
                     n_resamples: int = 10_000, confidence: float = 0.95, seed: int = 0,
                     method: Method = "bca", *, strategy: Strategy = "auto") -> Interval:
    """Interval for metric(candidate) − metric(baseline), resampling the same examples."""
    m = resolve_metric(metric)
    cand, base = align(candidate, baseline)
    return _bootstrap(m, [(m.inputs(cand), 1.0), (m.inputs(base), -1.0)], n_resamples,
                      confidence, seed, method, strategy)


def bootstrap(metric: str | Metric, predictions: Predictions, n_resamples: int = 10_000,
              confidence: float = 0.95, seed: int = 0, method: Method = "bca", *,
              strategy: Strategy = "auto") -> Interval:
    """Interval for one model's metric (for absolute bounds such as ``min: 0.8``)."""
    m = resolve_metric(metric)
    return _bootstrap(m, [(m.inputs(predictions), 1.0)], n_resamples, confidence, seed,
                      method, strategy)


Sides = list[tuple[Prepared, float]]


def _stat(sides: Sides, m: FloatArray) -> FloatArray:
    return np.asarray(sum(sign * prep.batch(m) for prep, sign in sides), dtype=np.float64)


def _influence(sides: Sides) -> FloatArray | None:
    parts = [(prep.influence(), sign) for prep, sign in sides]
    if any(psi is None for psi, _ in parts):
        return None
    psi = np.asarray(sum(sign * p for p, sign in parts if p is not None), dtype=np.float64)
    return np.asarray(psi - psi.mean(), dtype=np.float64)


def _bootstrap(metric: Metric, inputs: list[tuple[Inputs, float]], n_resamples: int,
               confidence: float, seed: int, method: Method, strategy: Strategy) -> Interval:
    check_confidence(confidence)
    if n_resamples < 100:
        raise UsageError(f"n_resamples must be at least 100, not {n_resamples}",
                         hint="10,000 resamples make the interval's ends stable")
    if method not in ("bca", "percentile"):
        raise UsageError(f"unknown bootstrap method `{method}`", hint="use bca or percentile")
    rng = np.random.default_rng(seed)
    sides: Sides = [(metric.prepare(inp), sign) for inp, sign in inputs]
    n = inputs[0][0].n
    point = float(_stat(sides, np.ones((1, n)))[0])
    if not math.isfinite(point):
        raise UsageError(f"{metric.name} has no value on `{inputs[0][0].source}`",
                         hint="check the predictions (e.g. every class present)")
    cells = _cells(sides, n) if strategy in ("auto", "cells") else None
    if strategy == "cells" and cells is None:
        raise UsageError(f"{metric.name} cannot be resampled by cells",
                         hint="cells work for label metrics (accuracy, precision, f1, …)")
    bca = method == "bca"
    if cells is not None and (strategy == "cells" or len(cells[1]) * n_resamples <= CELL_WORK):
        values, accel, detail = _by_cells(metric, inputs, cells, n_resamples, rng, bca)
    else:
        psi = None
        if strategy == "linear" or (strategy == "auto" and n * n_resamples > EXACT_WORK):
            psi = _influence(sides)
            if psi is None and strategy == "linear":
                raise UsageError(f"{metric.name} cannot be resampled linearly",
                                 hint="custom metrics are resampled exactly")
        if psi is not None:
            values, accel, detail = _by_influence(psi, point, n_resamples, rng)
        else:
            values, accel, detail = _by_examples(sides, n, n_resamples, rng, bca)
    finite = values[np.isfinite(values)]
    resamples = _Resamples(np.sort(finite), len(values) - len(finite), point, accel, n, detail)
    return _interval(resamples, confidence, method)


def _chunked(total: int, width: int, draw: Callable[[int, int], FloatArray]) -> FloatArray:
    """``draw(start, rows)`` over chunks of rows × ``width`` ≤ ``CHUNK_ELEMENTS`` values."""
    rows = max(1, min(total, CHUNK_ELEMENTS // width))
    return np.concatenate([draw(start, min(rows, total - start))
                           for start in range(0, total, rows)])


def _by_examples(sides: Sides, n: int, n_resamples: int, rng: np.random.Generator,
                 bca: bool) -> tuple[FloatArray, float, str]:
    values = _chunked(n_resamples, n, lambda _, rows: _stat(
        sides, multiplicities(rng.integers(0, n, (rows, n)), n)))
    accel = 0.0
    if bca and n <= JACKKNIFE_MAX:
        accel = _accel(_jackknife(sides, np.ones(n)), np.ones(n))
    elif bca:
        psi = _influence(sides)
        accel = _accel_influence(psi) if psi is not None else _grouped_accel(sides, n)
    return values, accel, f"exact resampling of {n} examples"


Cells = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]


def _cells(sides: Sides, n: int) -> Cells | None:
    """Groups of interchangeable examples: (first example of each, its count), or None."""
    joint = np.zeros(n, dtype=np.int64)
    for key in (prep.key for prep, _ in sides):
        if key is None or int(joint.max() + 1) * int(key.max() + 1) >= 2**62:
            return None
        joint = joint * int(key.max() + 1) + key
    _, first, counts = np.unique(joint, return_index=True, return_counts=True)
    if len(counts) > n // 2:
        return None  # hardly any repetition: resampling examples is as cheap
    return first.astype(np.int64), counts.astype(np.int64)


def _by_cells(metric: Metric, inputs: list[tuple[Inputs, float]], cells: Cells,
              n_resamples: int, rng: np.random.Generator,
              bca: bool) -> tuple[FloatArray, float, str]:
    first, counts = cells
    sides: Sides = [(metric.prepare(inp.take(first)), sign) for inp, sign in inputs]
    n, weights = int(counts.sum()), counts.astype(np.float64)
    values = _chunked(n_resamples, len(counts), lambda _, rows: _stat(
        sides, rng.multinomial(n, weights / n, size=rows).astype(np.float64)))
    # leaving one example out of a cell: the jackknife, each cell weighed by its size
    accel = _accel(_jackknife(sides, weights), weights) if bca else 0.0
    return values, accel, f"exact multinomial resampling of {len(counts)} distinct cells"


def _jackknife(sides: Sides, weights: FloatArray) -> FloatArray:
    """The statistic with one example (of each cell) left out, for every example or cell."""
    def draw(start: int, rows: int) -> FloatArray:
        block = np.repeat(weights[None, :], rows, axis=0)
        block[np.arange(rows), start + np.arange(rows)] -= 1
        return _stat(sides, block)

    return _chunked(len(weights), len(weights), draw)


def _accel(theta: FloatArray, weights: FloatArray) -> float:
    """BCa acceleration from jackknife values (Efron & Tibshirani 1993, eq. 14.15)."""
    keep = np.isfinite(theta)  # leaving out a rare class's last example can undefine it
    theta, weights = theta[keep], weights[keep]
    if len(theta) == 0:
        return 0.0
    u = float((weights * theta).sum() / weights.sum()) - theta
    den = float((weights * u**2).sum()) ** 1.5
    return float((weights * u**3).sum()) / (6 * den) if den > 0 else 0.0


def _accel_influence(psi: FloatArray) -> float:
    """The same from influence values: the infinitesimal jackknife (Efron 1987)."""
    return _accel(-psi, np.ones(len(psi)))


def _grouped_accel(sides: Sides, n: int) -> float:
    """Delete-a-group jackknife in ``JACKKNIFE_MAX`` groups (i mod groups), for metrics
    without influence values: sums of cubes of group totals grow like n·κ₃, as those of
    single examples, so the same formula estimates the same acceleration."""
    groups = np.arange(n) % JACKKNIFE_MAX
    theta = np.concatenate([_stat(sides, (groups != g).astype(np.float64)[None, :])
                            for g in range(JACKKNIFE_MAX)])
    return _accel(theta, np.ones(JACKKNIFE_MAX))


def _by_influence(psi: FloatArray, point: float, n_resamples: int,
                  rng: np.random.Generator) -> tuple[FloatArray, float, str]:
    n, v = len(psi), np.sort(psi)
    tails = min(TAILS, n // 8)
    single, middle = np.concatenate([v[:tails], v[n - tails:]]), v[tails:n - tails]
    edges = np.unique(np.linspace(0, len(middle), min(STRATA, len(middle)) + 1).astype(np.int64))
    sizes = np.diff(edges)
    means = np.add.reduceat(middle, edges[:-1]) / sizes
    spread = np.sqrt(np.add.reduceat((middle - np.repeat(means, sizes)) ** 2, edges[:-1])
                     / sizes)
    probs = np.concatenate([np.full(len(single), 1.0 / n), sizes / n])

    def draw(_: int, rows: int) -> FloatArray:
        counts = rng.multinomial(n, probs, size=rows)
        exact, strata = counts[:, :len(single)], counts[:, len(single):].astype(np.float64)
        noise = np.sqrt(strata) * rng.standard_normal(strata.shape)
        return np.asarray(point + (exact @ single + strata @ means + noise @ spread) / n)

    detail = (f"linearised resampling of {n} examples ({len(single)} extreme ones exactly, "
              f"the rest in {len(sizes)} strata)")
    return _chunked(n_resamples, len(probs), draw), _accel_influence(psi), detail


def _interval(r: _Resamples, confidence: float, method: Method) -> Interval:
    total = len(r.values) + r.undefined

    def relevel(level: float) -> Interval:
        return _interval(r, level, method)

    detail = r.detail
    if r.undefined:
        detail += f"; the metric is undefined in {r.undefined} of {total} resamples"
    if r.undefined > UNDEFINED_MAX * total:  # too few examples of a class: we know nothing
        return Interval(-math.inf, math.inf, r.point, method, r.n, confidence, total,
                        detail, relevel)
    alpha = (1 - confidence) / 2
    levels = _bca_levels(r, alpha) if method == "bca" else None
    used = method
    if levels is None:
        if method == "bca":
            used, detail = "percentile", detail + "; BCa undefined here, percentile used"
        levels = (alpha, 1 - alpha)
    low, high = np.quantile(r.values, levels)
    return Interval(float(low), float(high), r.point, used, r.n, confidence, total, detail,
                    relevel)


def _bca_levels(r: _Resamples, alpha: float) -> tuple[float, float] | None:
    """BCa's adjusted quantile levels (Efron & Tibshirani 1993, eq. 14.10), as SciPy."""
    values = r.values
    if values[0] == values[-1]:
        return (alpha, 1 - alpha)
    below = np.searchsorted(values, r.point, "left") + np.searchsorted(values, r.point, "right")
    share = below / (2 * len(values))
    if not 0 < share < 1:
        return None
    z0, z = NORMAL.inv_cdf(share), NORMAL.inv_cdf(alpha)
    out = []
    for zz in (z, -z):
        den = 1 - r.accel * (z0 + zz)
        if den <= 0:
            return None
        out.append(NORMAL.cdf(z0 + (z0 + zz) / den))
    return out[0], out[1]
