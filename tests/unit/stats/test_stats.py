"""sluice.stats.paired: bootstrap, McNemar, DeLong, Holm, verdicts, seeds, against known answers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import scipy.stats as ss  # type: ignore[import-untyped, unused-ignore]
from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped, unused-ignore]
from statsmodels.stats.contingency_tables import mcnemar  # type: ignore[import-untyped, unused-ignore]
from statsmodels.stats.multitest import multipletests  # type: ignore[import-untyped, unused-ignore]

from sluice.errors import UsageError
from sluice.stats import paired as S
from sluice.stats.prediction_columns import from_arrays
from sluice.stats.predictions import Predictions


def make_pair(n: int, seed: int, signal_c: float = 1.0, signal_b: float = 1.0,
              weight: Any = None) -> tuple[Predictions, Predictions, dict[str, Any]]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    sc = 1 / (1 + np.exp(-(signal_c * (2 * y - 1) + rng.normal(size=n))))
    sb = 1 / (1 + np.exp(-(signal_b * (2 * y - 1) + rng.normal(size=n))))
    arrays = {"y": y, "sc": sc, "sb": sb, "pc": (sc > 0.5).astype(int),
              "pb": (sb > 0.5).astype(int)}
    return (from_arrays(y, arrays["pc"], sc, weight=weight),
            from_arrays(y, arrays["pb"], sb, weight=weight), arrays)


def auc_rows(y: Any, s: Any) -> Any:
    """ROC AUC of each row, from ranks (Mann–Whitney), independently of sluice."""
    ranks = ss.rankdata(s, axis=-1)
    pos = y == 1
    n1 = pos.sum(-1)
    return ((ranks * pos).sum(-1) - n1 * (n1 + 1) / 2) / (n1 * (y.shape[-1] - n1))


# --------------------------------------------------------------------------- bootstrap


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_paired_bootstrap_is_scipy_bootstrap_for_roc_auc(method: Any) -> None:
    cand, base, a = make_pair(300, 1)
    iv = S.paired_bootstrap("roc_auc", cand, base, 2000, seed=7, method=method)
    ref = ss.bootstrap((a["y"], a["sc"], a["sb"]),
                       lambda y, c, b, axis=-1: auc_rows(y, c) - auc_rows(y, b), paired=True,
                       n_resamples=2000, rng=np.random.default_rng(7), method=method)
    assert iv.low == pytest.approx(ref.confidence_interval.low, rel=1e-9)
    assert iv.high == pytest.approx(ref.confidence_interval.high, rel=1e-9)
    assert iv.point == pytest.approx(roc_auc_score(a["y"], a["sc"])
                                     - roc_auc_score(a["y"], a["sb"]))
    assert (iv.method, iv.n, iv.n_resamples) == (method, 300, 2000)


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_exact_accuracy_and_log_loss_match_scipy(method: Any) -> None:
    cand, base, a = make_pair(250, 2)
    iv = S.paired_bootstrap("accuracy", cand, base, 1000, seed=3, method=method,
                            strategy="exact")
    ref = ss.bootstrap((a["y"], a["pc"], a["pb"]),
                       lambda y, c, b, axis=-1: (c == y).mean(-1) - (b == y).mean(-1),
                       paired=True, n_resamples=1000, rng=np.random.default_rng(3),
                       method=method)
    assert (iv.low, iv.high) == pytest.approx(tuple(ref.confidence_interval), rel=1e-9)

    def loss(y: Any, p: Any) -> Any:
        return -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(-1)

    iv = S.paired_bootstrap("log_loss", cand, base, 1000, seed=4, method=method)
    ref = ss.bootstrap((a["y"], a["sc"], a["sb"]),
                       lambda y, c, b, axis=-1: loss(y, c) - loss(y, b), paired=True,
                       n_resamples=1000, rng=np.random.default_rng(4), method=method)
    assert (iv.low, iv.high) == pytest.approx(tuple(ref.confidence_interval), rel=1e-9)


def test_one_model_bootstrap_matches_scipy() -> None:
    cand, _, a = make_pair(200, 5)
    iv = S.bootstrap("roc_auc", cand, 1000, seed=1)
    ref = ss.bootstrap((a["y"], a["sc"]), lambda y, s, axis=-1: auc_rows(y, s), paired=True,
                       n_resamples=1000, rng=np.random.default_rng(1))
    assert (iv.low, iv.high) == pytest.approx(tuple(ref.confidence_interval), rel=1e-9)


def close(a: S.Interval, b: S.Interval, share: float) -> None:
    width = b.high - b.low
    assert abs(a.low - b.low) < share * width and abs(a.high - b.high) < share * width, (a, b)


@pytest.mark.parametrize(("name", "weighted"), [("accuracy", False), ("f1", False),
                                                ("balanced_accuracy", True)])
def test_cells_resampling_agrees_with_example_resampling(name: str, weighted: bool) -> None:
    weight = np.random.default_rng(0).integers(1, 4, 3000).astype(float) if weighted else None
    cand, base, _ = make_pair(3000, 6, 1.2, 1.0, weight=weight)
    cells = S.paired_bootstrap(name, cand, base, 4000, seed=1)
    exact = S.paired_bootstrap(name, cand, base, 4000, seed=2, strategy="exact")
    assert "cells" in cells.detail and "exact resampling" in exact.detail
    assert cells.point == exact.point
    close(cells, exact, 0.06)


@pytest.mark.parametrize("name", ["roc_auc", "pr_auc", "log_loss", "brier", "f1"])
def test_linear_resampling_agrees_with_example_resampling(name: str) -> None:
    weight = np.random.default_rng(1).random(10_000) + 0.5  # continuous: no cells
    cand, base, _ = make_pair(10_000, 7, 1.1, 1.0, weight=weight)
    linear = S.paired_bootstrap(name, cand, base, 1500, seed=1, strategy="linear")
    exact = S.paired_bootstrap(name, cand, base, 1500, seed=1, strategy="exact")
    assert "linearised" in linear.detail
    close(linear, exact, 0.08)


def test_linear_resampling_for_regression() -> None:
    rng = np.random.default_rng(8)
    t = rng.normal(size=10_000)
    cand = from_arrays(t, t + 0.9 * rng.normal(size=len(t)))
    base = from_arrays(t, t + rng.normal(size=len(t)))
    for name in ("rmse", "r2", "mae"):
        close(S.paired_bootstrap(name, cand, base, 1500, strategy="linear"),
              S.paired_bootstrap(name, cand, base, 1500, strategy="exact"), 0.08)


def test_bootstrap_is_deterministic_per_seed() -> None:
    cand, base, _ = make_pair(200, 9)
    first = S.paired_bootstrap("roc_auc", cand, base, 500, seed=4)
    assert first == S.paired_bootstrap("roc_auc", cand, base, 500, seed=4)
    assert first != S.paired_bootstrap("roc_auc", cand, base, 500, seed=5)


def test_identical_predictions_give_a_zero_interval_that_passes_no_worse() -> None:
    cand, _, _ = make_pair(200, 10)
    for name in ("accuracy", "roc_auc", "log_loss"):
        iv = S.paired_bootstrap(name, cand, cand, 500)
        assert (iv.low, iv.point, iv.high) == (0.0, 0.0, 0.0)
        assert S.verdict(iv, 0.0, "max_regression") == "PASS"
        assert S.verdict(iv, 0.0, "min_improvement") == "FAIL"


def test_too_few_positives_give_an_inconclusive_infinite_interval() -> None:
    y = np.zeros(200, dtype=int)
    y[:2] = 1  # most resamples lack a positive example
    rng = np.random.default_rng(0)
    cand = from_arrays(y, y_score=rng.random(200))
    base = from_arrays(y, y_score=rng.random(200))
    iv = S.paired_bootstrap("roc_auc", cand, base, 500)
    assert (iv.low, iv.high) == (-math.inf, math.inf) and "undefined in" in iv.detail
    assert S.verdict(iv, 0.01, "max_regression") == "INCONCLUSIVE"


def test_releveling_reuses_the_resamples() -> None:
    cand, base, _ = make_pair(300, 12)
    iv = S.paired_bootstrap("roc_auc", cand, base, 2000)
    wide, narrow = iv.at(0.99), iv.at(0.8)
    assert wide.low < iv.low < narrow.low < narrow.high < iv.high < wide.high
    assert iv.at(0.95) is iv and wide.at(0.95) == iv


def test_bad_bootstrap_arguments() -> None:
    cand, base, _ = make_pair(50, 1)
    with pytest.raises(UsageError, match="at least 100"):
        S.paired_bootstrap("roc_auc", cand, base, 10)
    with pytest.raises(UsageError, match="between 0 and 1"):
        S.paired_bootstrap("roc_auc", cand, base, 200, confidence=95)
    with pytest.raises(UsageError, match="cannot be resampled by cells"):
        S.paired_bootstrap("roc_auc", cand, base, 200, strategy="cells")


@pytest.mark.slow
def test_a_million_examples_in_seconds() -> None:
    cand, base, a = make_pair(1_000_000, 13, 1.05, 1.0)
    iv = S.paired_bootstrap("roc_auc", cand, base, 10_000)
    d = S.delong(a["y"], a["sc"], a["sb"])
    close(iv, d.interval, 0.05)


# --------------------------------------------------------------------------- simulation


@pytest.mark.parametrize("name", ["accuracy", "roc_auc"])
def test_no_worse_gate_rarely_fails_an_equal_candidate_and_passes_a_better_one(
        name: str) -> None:
    fails, passes = 0, 0
    for sim in range(200):
        cand, base, _ = make_pair(200, 1000 + sim)  # same distribution, independent noise
        iv = S.paired_bootstrap(name, cand, base, 500, seed=sim)
        fails += S.verdict(iv, 0.0, "max_regression") == "FAIL"
        better, base2, _ = make_pair(200, 5000 + sim, signal_c=2.5)
        iv = S.paired_bootstrap(name, better, base2, 500, seed=sim)
        passes += S.verdict(iv, 0.0, "max_regression") == "PASS"
    assert fails < 0.05 * 200
    assert passes > 0.9 * 200


# --------------------------------------------------------------------------- McNemar


def test_mcnemar_matches_statsmodels_and_scipy() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.random(300) < 0.8, rng.random(300) < 0.75
    result = S.mcnemar_exact(a, b)
    table = [[int((a & b).sum()), int((a & ~b).sum())], [int((~a & b).sum()),
                                                          int((~a & ~b).sum())]]
    assert result.p_value == pytest.approx(mcnemar(table, exact=True).pvalue, rel=1e-10)
    discordant = result.candidate_only + result.baseline_only
    assert result.p_value == pytest.approx(
        ss.binomtest(result.candidate_only, discordant, 0.5).pvalue, rel=1e-10)
    assert S.mcnemar_exact([True, False], [True, False]).p_value == 1.0
    big = S.mcnemar_exact(np.arange(100_000) % 3 == 0, np.arange(100_000) % 4 == 0)
    assert 0 <= big.p_value < 1e-10


def test_newcombe_interval_matches_the_published_example() -> None:
    # Cavo et al. (2012) as in Fagerland, Lydersen & Laake (contingencytables):
    # both 59, first only 6, second only 16, neither 80 → −0.0621 (−0.1186 to −0.0046)
    cand = np.array([1] * 59 + [1] * 6 + [0] * 16 + [0] * 80, dtype=bool)
    base = np.array([1] * 59 + [0] * 6 + [1] * 16 + [0] * 80, dtype=bool)
    iv = S.mcnemar_exact(cand, base).newcombe
    assert iv.point == pytest.approx(-0.0621, abs=5e-5)
    assert iv.low == pytest.approx(-0.1186, abs=5e-5)
    assert iv.high == pytest.approx(-0.0046, abs=5e-5)
    assert iv.at(0.99).low < iv.low


def test_mcnemar_interval_inverts_the_exact_test() -> None:
    # the same table: exact p = 0.0525, so the exact interval contains 0 (Newcombe's not)
    cand = np.array([1] * 59 + [1] * 6 + [0] * 16 + [0] * 80, dtype=bool)
    base = np.array([1] * 59 + [0] * 6 + [1] * 16 + [0] * 80, dtype=bool)
    result = S.mcnemar_exact(cand, base)
    assert result.p_value == pytest.approx(0.0525, abs=5e-5)
    iv = result.interval
    assert (iv.method, iv.low < 0 < iv.high) == ("mcnemar", True)
    # its ends are Clopper–Pearson's for the 6 of 22 discordant examples, scaled by 22/161
    cp = ss.binomtest(6, 22).proportion_ci(0.95, method="exact")
    assert (iv.low, iv.high) == pytest.approx(((2 * cp.low - 1) * 22 / 161,
                                               (2 * cp.high - 1) * 22 / 161), rel=1e-9)
    assert iv.at(1 - result.p_value).high == pytest.approx(0, abs=1e-9)  # α = p: touches 0
    same = S.mcnemar_exact([True, False], [True, False]).interval
    assert (same.low, same.high) == (0, 0)


# --------------------------------------------------------------------------- DeLong


def test_delong_by_hand() -> None:
    # positives score (0.9, 0.8, 0.3) for the candidate, (0.9, 0.4, 0.6) for the baseline;
    # negatives (0.7, 0.2, 0.1) and (0.5, 0.7, 0.1).
    # Share of negatives below each positive, V10: candidate (1, 1, 2/3) → AUC 8/9;
    #   baseline (1, 1/3, 2/3) → AUC 2/3.
    # Share of positives above each negative, V01: candidate (2/3, 1, 1); baseline
    #   (2/3, 1/3, 1).
    # Sample variances: V10 candidate 1/27, baseline 1/9, covariance 0; V01 the same.
    # var(diff) = (1/27 + 1/9)/3 + (1/27 + 1/9)/3 = 8/81; diff = 2/9; z = 1/√2.
    y = [1, 1, 1, 0, 0, 0]
    result = S.delong(y, [0.9, 0.8, 0.3, 0.7, 0.2, 0.1], [0.9, 0.4, 0.6, 0.5, 0.7, 0.1])
    assert result.auc_candidate == pytest.approx(8 / 9)
    assert result.auc_baseline == pytest.approx(2 / 3)
    assert result.difference == pytest.approx(2 / 9)
    assert result.variance == pytest.approx(8 / 81)
    assert result.p_value == pytest.approx(2 * ss.norm.sf(1 / math.sqrt(2)))
    half = ss.norm.ppf(0.975) * math.sqrt(8 / 81)
    assert (result.interval.low, result.interval.high) == pytest.approx((2 / 9 - half,
                                                                         2 / 9 + half))


def test_delong_agrees_with_mann_whitney_and_a_slow_formula() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 150)
    c = np.round(y + rng.normal(size=150), 1)  # ties
    b = np.round(y + 1.3 * rng.normal(size=150), 1)
    result = S.delong(y, c, b)
    pos, neg = y == 1, y == 0
    u = ss.mannwhitneyu(c[pos], c[neg]).statistic
    assert result.auc_candidate == pytest.approx(u / (pos.sum() * neg.sum()))

    def placements(s: Any) -> tuple[Any, Any]:
        h = (s[pos][:, None] > s[neg][None, :]) + 0.5 * (s[pos][:, None] == s[neg][None, :])
        return h.mean(1), h.mean(0)

    (v10c, v01c), (v10b, v01b) = placements(c), placements(b)
    var = (np.var(v10c - v10b, ddof=1) / pos.sum() + np.var(v01c - v01b, ddof=1) / neg.sum())
    assert result.variance == pytest.approx(var, rel=1e-10)
    assert result.auc_candidate == pytest.approx(roc_auc_score(y, c))


# --------------------------------------------------------------------------- Holm and gates


def test_holm_matches_statsmodels() -> None:
    p = [0.01, 0.04, 0.03, 0.20, 0.04, 0.001]
    assert S.holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]))


def test_holm_levels_pass_exactly_the_gates_holm_rejects() -> None:
    rng = np.random.default_rng(5)
    for _ in range(200):
        m = int(rng.integers(1, 6))
        p = list(rng.random(m) * 0.1)
        levels = S.holm_levels(p, 0.05)
        rejected = [q <= 0.05 for q in S.holm(p)]
        assert [pi <= 1 - lv for pi, lv in zip(p, levels, strict=True)] == rejected
    assert S.holm_levels([0.001, 0.03], 0.05) == pytest.approx([0.975, 0.95])
    assert S.holm_levels([0.03, 0.04], 0.05) == pytest.approx([0.975, 0.975])


def interval(low: float, high: float) -> S.Interval:
    return S.Interval(low, high, (low + high) / 2, "percentile", 100)


@pytest.mark.parametrize(("low", "high", "margin", "direction", "higher", "expected"), [
    (-0.01, 0.02, 0.01, "max_regression", True, "PASS"),  # low = −margin: closed bound
    (-0.02, 0.02, 0.01, "max_regression", True, "INCONCLUSIVE"),
    (-0.05, -0.011, 0.01, "max_regression", True, "FAIL"),
    (-0.05, -0.01, 0.01, "max_regression", True, "INCONCLUSIVE"),
    (-0.02, 0.01, 0.01, "max_regression", False, "PASS"),  # a loss: higher is worse
    (0.011, 0.05, 0.01, "max_regression", False, "FAIL"),
    (0.011, 0.05, 0.01, "min_improvement", True, "PASS"),
    (0.01, 0.05, 0.01, "min_improvement", True, "INCONCLUSIVE"),  # must exceed τ
    (-0.05, 0.01, 0.01, "min_improvement", True, "FAIL"),
    (-0.05, -0.011, 0.01, "min_improvement", False, "PASS"),
    (0.80, 0.85, 0.8, "min", True, "PASS"),
    (0.70, 0.79, 0.8, "min", True, "FAIL"),
    (0.10, 0.20, 0.2, "max", False, "PASS"),
    (0.10, 0.30, 0.2, "max", False, "INCONCLUSIVE"),
    (math.nan, 0.30, 0.2, "max", False, "INCONCLUSIVE"),
])
def test_verdict_rule(low: float, high: float, margin: float, direction: Any, higher: bool,
                      expected: str) -> None:
    assert S.verdict(interval(low, high), margin, direction, higher_is_better=higher) \
        == expected


def test_relative_margins_and_bad_gates() -> None:
    # 2 % of a baseline at 0.5 is 0.01
    assert S.verdict(interval(-0.009, 0.01), 0.02, "max_regression", relative_to=0.5) == "PASS"
    assert S.verdict(interval(-0.03, -0.011), 0.02, "max_regression",
                     relative_to=0.5) == "FAIL"
    with pytest.raises(UsageError, match="must be ≥ 0"):
        S.verdict(interval(0, 1), -0.1, "max_regression")
    with pytest.raises(UsageError, match="unknown gate direction"):
        S.verdict(interval(0, 1), 0.1, "sideways")  # type: ignore[arg-type]


def test_gate_p_value_inverts_the_interval() -> None:
    y = np.random.default_rng(6).integers(0, 2, 300)
    rng = np.random.default_rng(7)
    d = S.delong(y, y + rng.normal(size=300), y + 1.2 * rng.normal(size=300))
    se = math.sqrt(d.variance)
    p = S.gate_p_value(d.interval, 0.01, "max_regression")
    assert p == pytest.approx(2 * ss.norm.sf((d.difference + 0.01) / se), rel=1e-6)
    assert S.gate_p_value(d.interval, 1.0, "min_improvement") == 1.0
    with pytest.raises(UsageError, match="cannot be recomputed"):
        S.gate_p_value(interval(-1, -0.5), 0.0, "max_regression")


# --------------------------------------------------------------------------- seeds


def test_t_quantile_matches_scipy() -> None:
    for df in (1, 2.5, 4, 9, 30, 200):
        for q in (0.6, 0.9, 0.975, 0.995):
            assert S._t_quantile(q, df) == pytest.approx(ss.t.ppf(q, df), rel=1e-9)


def test_seed_interval() -> None:
    tiny = [interval(d - 1e-12, d + 1e-12) for d in (0.01, 0.03, 0.02, 0.04)]
    iv = S.seed_interval([0.01, 0.03, 0.02, 0.04], tiny)
    low, high = ss.t.interval(0.95, 3, loc=0.025, scale=ss.sem([0.01, 0.03, 0.02, 0.04]))
    assert (iv.low, iv.high) == pytest.approx((low, high), rel=1e-6)
    # one seed: its own bootstrap interval, read as normal
    one = S.seed_interval([0.02], [interval(0.0, 0.04)])
    assert (one.low, one.high) == pytest.approx((0.0, 0.04))
    # both sources add up: wider than either alone
    both = S.seed_interval([0.01, 0.03, 0.02, 0.04], [interval(d - 0.02, d + 0.02)
                                                      for d in (0.01, 0.03, 0.02, 0.04)])
    assert both.high - both.low > max(iv.high - iv.low, 0.04)
    assert both.at(0.99).high > both.high
