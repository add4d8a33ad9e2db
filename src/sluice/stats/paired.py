"""Paired statistics behind gates: intervals that decide PASS / FAIL / INCONCLUSIVE.

A gate never compares two point values: it takes an interval for the paired difference
(candidate − baseline on the same examples) and passes only when the whole interval
clears the margin (``verdict``). Intervals come from the paired bootstrap
(:mod:`sluice.stats.bootstrap`), McNemar's exact test (inverted into an interval), DeLong's test,
several training seeds, and are widened for several gates by Holm's rule;
docs/gates.md has the formulas.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sluice.errors import UsageError
from sluice.stats.bootstrap import (
    NORMAL,
    Direction,
    Interval,
    Method,
    Verdict,
    bootstrap,
    check_confidence,
    paired_bootstrap,
)
from sluice.stats.predictions import FloatArray

# The gate API: the bootstrap lives in sluice.stats.bootstrap, and is offered here too.
__all__ = [
    "DeLongResult",
    "Direction",
    "Interval",
    "McNemarResult",
    "Method",
    "Verdict",
    "bootstrap",
    "delong",
    "gate_p_value",
    "holm",
    "holm_levels",
    "mcnemar_exact",
    "paired_bootstrap",
    "seed_interval",
    "verdict",
]

# --------------------------------------------------------------------------- McNemar, DeLong


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's exact test for a paired accuracy difference, with two intervals for it."""

    p_value: float  # two-sided exact test of equal accuracy
    interval: Interval  # accuracy(candidate) − accuracy(baseline): the exact test, inverted
    candidate_only: int  # examples only the candidate gets right
    baseline_only: int  # examples only the baseline gets right
    newcombe: Interval  # Newcombe's method-10 interval of the same difference (not a gate's)


def mcnemar_exact(correct_candidate: npt.ArrayLike, correct_baseline: npt.ArrayLike,
                  confidence: float = 0.95) -> McNemarResult:
    """Exact two-sided McNemar test on the discordant pairs, and the interval that inverts it.

    Given the d = b + c discordant examples, b ~ Binomial(d, π); the Clopper–Pearson
    interval (π₁, π₂) of π gives (2π₁ − 1, 2π₂ − 1)·d/n for the difference in accuracy,
    (b − c)/n. It excludes 0 exactly when the exact test's two-sided p ≤ α, so a gate with a
    margin of 0 is decided by the exact test itself (gates allow no other margin for it).
    Newcombe's method-10 (square-and-add Wilson) interval is reported alongside; it is more
    lenient than the exact test in about 2 % of tables, which is why gates do not use it.
    """
    check_confidence(confidence)
    a = np.asarray(correct_candidate, dtype=bool)
    b = np.asarray(correct_baseline, dtype=bool)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise UsageError("mcnemar_exact needs two equally long, non-empty 1-D arrays")
    both, only_c = int((a & b).sum()), int((a & ~b).sum())
    only_b, neither = int((~a & b).sum()), int((~a & ~b).sum())
    n, discordant = len(a), only_c + only_b
    p = _binomial_two_sided(min(only_c, only_b), discordant)
    detail = (f"McNemar's exact test: {only_c} examples only the candidate gets right, "
              f"{only_b} only the baseline; two-sided p = {p:.3g}")

    def exact(level: float) -> Interval:
        low, high = _clopper_pearson(only_c, discordant, level)
        return Interval((2 * low - 1) * discordant / n, (2 * high - 1) * discordant / n,
                        (only_c - only_b) / n, "mcnemar", n, level, detail=detail,
                        relevel=exact)

    def newcombe(level: float) -> Interval:
        low, high = _newcombe(both, only_c, only_b, neither, level)
        return Interval(low, high, (only_c - only_b) / n, "newcombe", n, level,
                        detail="Newcombe (1998) method 10", relevel=newcombe)

    return McNemarResult(p, exact(confidence), only_c, only_b, newcombe(confidence))


def _clopper_pearson(k: int, total: int, level: float) -> tuple[float, float]:
    """Exact interval of a binomial proportion: P(X ≥ k | π₁) = P(X ≤ k | π₂) = (1 − level)/2.

    With P(X ≥ k | π) = I_π(k, total − k + 1), each end is a Beta quantile, found by
    bisection (monotone in π). No discordant example: the difference is 0, so (½, ½).
    """
    if total == 0:
        return 0.5, 0.5
    tail = (1 - level) / 2
    low = 0.0 if k == 0 else _beta_quantile(tail, k, total - k + 1)
    high = 1.0 if k == total else _beta_quantile(1 - tail, k + 1, total - k)
    return low, high


def _beta_quantile(q: float, a: float, b: float) -> float:
    low, high = 0.0, 1.0
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if _betainc(a, b, mid) < q else (low, mid)
        if high - low < 1e-15:
            break
    return (low + high) / 2


def _binomial_two_sided(k: int, total: int) -> float:
    """P-value of k or fewer (or as many more) successes of ``total`` fair coin flips."""
    if total == 0:
        return 1.0
    j = np.arange(1, k + 1)
    log_choose = np.concatenate([[0.0], np.cumsum(np.log(total - j + 1) - np.log(j))])
    log_terms = log_choose - total * math.log(2)
    top = float(log_terms.max())
    return min(1.0, 2 * math.exp(top) * float(np.exp(log_terms - top).sum()))


def _wilson(x: int, n: int, z: float) -> tuple[float, float]:
    p = x / n
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def _newcombe(a: int, b: int, c: int, d: int, level: float) -> tuple[float, float]:
    n = a + b + c + d
    z = NORMAL.inv_cdf(1 - (1 - level) / 2)
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = _wilson(a + b, n, z)
    l2, u2 = _wilson(a + c, n, z)
    phi = 0.0
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    if margins > 0:  # correlation of the two proportions, continuity-corrected as Newcombe
        cross = a * d - b * c
        phi = ((cross - n / 2) if cross > n / 2 else min(cross, 0)) / math.sqrt(margins)
    diff = p1 - p2
    low = diff - math.sqrt(max(0.0, (p1 - l1) ** 2 + (u2 - p2) ** 2
                               - 2 * phi * (p1 - l1) * (u2 - p2)))
    high = diff + math.sqrt(max(0.0, (p2 - l2) ** 2 + (u1 - p1) ** 2
                                - 2 * phi * (p2 - l2) * (u1 - p1)))
    return low, high


@dataclass(frozen=True)
class DeLongResult:
    """DeLong's test for the difference of two correlated ROC AUCs."""

    difference: float  # auc_candidate − auc_baseline
    variance: float
    interval: Interval
    p_value: float
    auc_candidate: float
    auc_baseline: float


def _midranks(x: FloatArray) -> FloatArray:
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts = np.flatnonzero(np.concatenate([[True], xs[1:] != xs[:-1]]))
    ends = np.concatenate([starts[1:], [len(x)]])
    out = np.empty(len(x))
    out[order] = np.repeat((starts + ends + 1) / 2, ends - starts)
    return out


def delong(y_true: npt.ArrayLike, score_candidate: npt.ArrayLike,
           score_baseline: npt.ArrayLike, confidence: float = 0.95) -> DeLongResult:
    """DeLong, DeLong & Clarke-Pearson (1988), in Sun & Xu's (2014) O(n log n) form.

    ``y_true`` holds two labels (the greater one positive); scores are unweighted.
    """
    check_confidence(confidence)
    y = np.asarray(y_true)
    labels = np.unique(y)
    if len(labels) != 2:
        raise UsageError(f"delong needs two classes in y_true, found {len(labels)}",
                         hint="DeLong's test compares binary ROC AUCs")
    positive = y == labels[1]
    pair = [np.asarray(score_candidate, dtype=np.float64),
            np.asarray(score_baseline, dtype=np.float64)]
    if any(s.ndim != 1 for s in pair):
        raise UsageError("delong compares binary ROC AUCs: it needs one score per example, "
                         "not one per class", hint="use method: bootstrap for multiclass AUC")
    scores = np.vstack(pair)
    if scores.shape[1] != len(y) or not np.isfinite(scores).all():
        raise UsageError("delong needs finite scores, one per example, for both models")
    m, k = int(positive.sum()), int((~positive).sum())
    placements_pos, placements_neg, aucs = [], [], []
    for s in scores:
        x, z = s[positive], s[~positive]
        ranks = _midranks(np.concatenate([x, z]))
        placements_pos.append((ranks[:m] - _midranks(x)) / k)  # share of negatives below
        placements_neg.append(1 - (ranks[m:] - _midranks(z)) / m)  # share of positives above
        aucs.append(float(placements_pos[-1].mean()))
    s10 = np.cov(np.vstack(placements_pos)) if m > 1 else np.zeros((2, 2))
    s01 = np.cov(np.vstack(placements_neg)) if k > 1 else np.zeros((2, 2))
    contrast = np.array([1.0, -1.0])
    variance = float(contrast @ (s10 / m + s01 / k) @ contrast)
    diff = aucs[0] - aucs[1]
    se = math.sqrt(max(variance, 0.0))
    p = 2 * NORMAL.cdf(-abs(diff) / se) if se > 0 else float(diff == 0)

    def interval(level: float) -> Interval:
        half = NORMAL.inv_cdf(1 - (1 - level) / 2) * se
        return Interval(diff - half, diff + half, diff, "delong", len(y), level,
                        detail="DeLong (1988), normal approximation", relevel=interval)

    return DeLongResult(diff, variance, interval(confidence), p, aucs[0], aucs[1])


# --------------------------------------------------------------------------- gates


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (reject gate i at level α iff adjusted ≤ α)."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    steps = (len(p) - np.arange(len(p))) * p[order]
    out = np.empty(len(p))
    out[order] = np.minimum(np.maximum.accumulate(steps), 1.0)
    return [float(x) for x in out]


def holm_levels(p_values: Sequence[float], alpha: float = 0.05) -> list[float]:
    """The confidence level of each gate's interval under Holm's rule for ``alpha``.

    Gates are ranked by p-value (ties by position); the gate of rank k (from 1) gets
    1 − α/(m − k + 1) while every gate before it is rejected, and from the first that is
    not, every later gate keeps that gate's level. A gate then passes at its level
    exactly when Holm's procedure rejects its null hypothesis.
    """
    m = len(p_values)
    levels = [0.0] * m
    stop: int | None = None
    for rank, i in enumerate(np.argsort(np.asarray(p_values, dtype=float), kind="stable")):
        if stop is None and p_values[i] > alpha / (m - rank):
            stop = rank
        levels[int(i)] = 1 - alpha / (m - (rank if stop is None else stop))
    return levels


def _region(margin: float, direction: Direction, higher_is_better: bool,
            relative_to: float | None) -> tuple[float, bool, bool]:
    """(bound, the interval must lie above it, bound included) for a gate."""
    if not math.isfinite(margin):
        raise UsageError(f"a gate's margin must be a finite number, not {margin}")
    if direction in ("min", "max"):
        return margin, direction == "min", True
    if direction not in ("max_regression", "min_improvement"):
        raise UsageError(f"unknown gate direction `{direction}`",
                         hint="use max_regression, min_improvement, min or max")
    if margin < 0:
        raise UsageError(f"{direction} must be ≥ 0, not {margin}",
                         hint="the margin is a size; the direction says which way")
    if relative_to is not None:
        margin = margin * abs(relative_to)
    # in "gain" units (positive = better): max_regression demands gain ≥ −δ, closed, so
    # that identical predictions pass "no worse"; min_improvement demands gain > τ, open
    bound, closed = (-margin, True) if direction == "max_regression" else (margin, False)
    return (bound, True, closed) if higher_is_better else (-bound, False, closed)


def verdict(interval: Interval, margin: float, direction: Direction, *,
            higher_is_better: bool = True, relative_to: float | None = None) -> Verdict:
    """PASS when the whole interval lies where the gate demands, FAIL when it lies wholly
    outside, INCONCLUSIVE otherwise (see docs/gates.md for the exact inequalities).

    ``interval`` is of candidate − baseline for ``max_regression`` / ``min_improvement``
    (``relative_to`` = the baseline's value makes the margin a fraction of it), and of the
    candidate's own value for ``min`` / ``max`` (``margin`` is then the bound).
    """
    bound, above, closed = _region(margin, direction, higher_is_better, relative_to)
    low, high = interval.low, interval.high
    if math.isnan(low) or math.isnan(high):
        return "INCONCLUSIVE"
    if above:
        ok, bad = (low >= bound, high < bound) if closed else (low > bound, high <= bound)
    else:
        ok, bad = (high <= bound, low > bound) if closed else (high < bound, low >= bound)
    return "PASS" if ok else "FAIL" if bad else "INCONCLUSIVE"


def gate_p_value(interval: Interval, margin: float, direction: Direction, *,
                 higher_is_better: bool = True, relative_to: float | None = None) -> float:
    """The smallest α at which the gate passes with the (1 − α) interval (1 if never).

    This orders gates for Holm's rule: found by bisection on the interval's level, to
    about 1e-12 (also the floor returned for a gate that passes at any level).
    """
    _region(margin, direction, higher_is_better, relative_to)  # validate once

    def passes(alpha: float) -> bool:
        return verdict(interval.at(1 - alpha), margin, direction,
                       higher_is_better=higher_is_better, relative_to=relative_to) == "PASS"

    low, high = 1e-12, 1 - 1e-9
    if passes(low):
        return low
    if not passes(high):
        return 1.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (low, mid) if passes(mid) else (mid, high)
    return high


# --------------------------------------------------------------------------- seeds


def seed_interval(per_seed_differences: Sequence[float], bootstrap_intervals: Sequence[Interval],
                  confidence: float = 0.95) -> Interval:
    """Interval for the mean difference over training seeds, all scored on one test set.

    Variance of the mean = s²/K (between seeds) + the mean of the seeds' bootstrap
    variances (test-set sampling, counted once since the seeds share the test set), with
    Student's t on Welch–Satterthwaite's degrees of freedom (the bootstrap part counted
    as exact). Each bootstrap variance is read off its interval: ((high − low)/(2z))².
    """
    check_confidence(confidence)
    d = np.asarray(per_seed_differences, dtype=np.float64)
    if len(d) == 0 or len(d) != len(bootstrap_intervals):
        raise UsageError("seed_interval needs one difference and one interval per seed")
    k = len(d)
    within = float(np.mean([((iv.high - iv.low)
                             / (2 * NORMAL.inv_cdf(1 - (1 - iv.confidence) / 2))) ** 2
                            for iv in bootstrap_intervals]))
    between = float(d.var(ddof=1)) / k if k > 1 else 0.0
    total = between + within
    df = math.inf if between == 0 else total**2 / (between**2 / (k - 1))
    mean = float(d.mean())

    def interval(level: float) -> Interval:
        q = 1 - (1 - level) / 2
        half = (NORMAL.inv_cdf(q) if math.isinf(df) else _t_quantile(q, df)) * \
            math.sqrt(total)
        if math.isnan(half):
            half = math.inf
        return Interval(mean - half, mean + half, mean, "seeds", bootstrap_intervals[0].n,
                        level, detail=f"{k} seeds, t with {df:.1f} degrees of freedom",
                        relevel=interval)

    return interval(confidence)


def _t_quantile(q: float, df: float) -> float:
    """Student's t quantile by bisection on its CDF (regularised incomplete beta)."""
    def cdf(t: float) -> float:
        tail = 0.5 * _betainc(df / 2, 0.5, df / (df + t * t))
        return 1 - tail if t > 0 else tail

    low, high = -1.0, 1.0
    while cdf(low) > q:
        low *= 2
    while cdf(high) < q:
        high *= 2
    for _ in range(200):
        mid = (low + high) / 2
        low, high = (mid, high) if cdf(mid) < q else (low, mid)
        if high - low < 1e-13 * max(1.0, abs(mid)):
            break
    return (low + high) / 2


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b), by Lentz's continued fraction."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    if x > (a + 1) / (a + b + 2):
        return 1 - _betainc(b, a, 1 - x)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x)) / a
    tiny = 1e-300
    c, d, f = 1.0, 0.0, 1.0
    for i in range(20_000):  # converges in O(√(a + b)) terms; ends early
        m = i // 2
        if i == 0:
            num = 1.0
        elif i % 2 == 0:
            num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1 + num * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + num / c
        c = c if abs(c) > tiny else tiny
        f *= c * d
        if abs(1 - c * d) < 1e-15:
            break
    return front * (f - 1)
