"""How often gates are wrong, by simulation through the gates' own code path.

A candidate exactly at a `max_regression` margin must rarely PASS, and an equal candidate
must rarely PASS a superiority gate (`min_improvement: 0`) or FAIL a "no worse" gate
(`max_regression: 0`): each about α/2 with a 95 % interval. Test sets of 1,000 examples
are drawn from a known population (accuracy: a paired table of right and wrong; ROC AUC:
binormal scores), and every interval comes from ``sluice.evaluate.gates._interval`` (the paired
bootstrap with the gates' RESAMPLES, McNemar, DeLong), every verdict from
``stats.verdict``. Run as a script for the figures in docs/gates.md:

    python tests/unit/test_gate_rates.py [TEST_SETS]
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from statistics import NormalDist

import numpy as np
import pytest

from sluice.config.schema import GateSpec
from sluice.evaluate.gates import _interval
from sluice.stats import paired as stats
from sluice.stats.paired import Interval
from sluice.stats.prediction_columns import from_arrays
from sluice.stats.predictions import Predictions

ALPHA, SETS, N = 0.05, 300, 1000
MARGIN = 0.02  # of the max_regression gate, and the candidate's true shortfall "at margin"
BASE = 0.85  # the baseline's true accuracy or ROC AUC
CASES = [("accuracy", "bootstrap"), ("accuracy", "mcnemar"), ("roc_auc", "bootstrap"),
         ("roc_auc", "delong")]


def _test_sets(metric: str, gap: float, sets: int, seed: int) -> Iterator[
        tuple[Predictions, Predictions]]:
    """``sets`` test sets of N examples on which the candidate's true metric is the
    baseline's minus ``gap``; drawn at once, handed out one set at a time."""
    rng = np.random.default_rng(seed)
    y = (rng.random((sets, N)) < 0.5).astype(np.int64)
    if metric == "accuracy":
        # both right, only the candidate, only the baseline, neither: 10 % discordant
        only_c, only_b = (0.10 - gap) / 2, (0.10 + gap) / 2
        cells = np.searchsorted(np.cumsum([BASE - only_b, only_c, only_b]),
                                rng.random((sets, N)))
        right_c, right_b = np.isin(cells, (0, 1)), np.isin(cells, (0, 2))
        cand, base = np.where(right_c, y, 1 - y), np.where(right_b, y, 1 - y)
        for i in range(sets):
            yield from_arrays(y[i], cand[i]), from_arrays(y[i], base[i])
        return
    # binormal: AUC = Φ(μ/√2); the two models' noises correlate (ρ = 0.5), as on one test set
    mu_c, mu_b = (math.sqrt(2) * NormalDist().inv_cdf(auc) for auc in (BASE - gap, BASE))
    noise = rng.standard_normal((2, sets, N))
    score_c = mu_c * y + 0.5 * noise[0] + math.sqrt(0.75) * noise[1]
    score_b = mu_b * y + noise[0]
    for i in range(sets):
        yield (from_arrays(y[i], y_score=score_c[i]),
               from_arrays(y[i], y_score=score_b[i]))


def intervals(metric: str, method: str, gap: float, sets: int = SETS,
              seed: int = 0) -> list[Interval]:
    """The interval a gate of ``method`` on ``metric`` takes, on each simulated test set."""
    gate = GateSpec.model_validate({"metric": metric, "max_regression": 0, "method": method,
                                    "confidence": 1 - ALPHA})
    return [_interval(gate, metric, [cand], base, "max_regression")
            for cand, base in _test_sets(metric, gap, sets, seed)]


def share(found: list[Interval], margin: float, direction: stats.Direction,
          verdict: stats.Verdict) -> float:
    return sum(stats.verdict(iv, margin, direction) == verdict for iv in found) / len(found)


@pytest.mark.slow
@pytest.mark.parametrize(("metric", "method"), CASES)
def test_wrong_verdicts_stay_near_half_alpha(metric: str, method: str) -> None:
    limit = ALPHA / 2 + 0.025
    equal = intervals(metric, method, 0.0, seed=1)
    assert abs(float(np.mean([iv.point for iv in equal]))) < 0.005  # the truth we claim
    assert share(equal, 0, "min_improvement", "PASS") <= limit
    assert share(equal, 0, "max_regression", "FAIL") <= limit
    if method == "mcnemar":
        return  # McNemar's exact test takes no margin (refused at load)
    at_margin = intervals(metric, method, MARGIN, seed=2)
    assert abs(float(np.mean([iv.point for iv in at_margin])) + MARGIN) < 0.005
    assert share(at_margin, MARGIN, "max_regression", "PASS") <= limit


def _report(sets: int) -> None:
    """Each rate with its 95 % Wilson interval over ``sets`` test sets, seeds 11 and 12."""
    def rate(p: float) -> str:
        z = NormalDist().inv_cdf(0.975)
        centre, half = p + z * z / (2 * sets), z * math.sqrt(p * (1 - p) / sets
                                                               + z * z / (4 * sets * sets))
        low, high = ((centre - half) / (1 + z * z / sets), (centre + half) / (1 + z * z / sets))
        return f"{p:6.2%} ({low:.1%}–{high:.1%})"

    print(f"{sets} test sets of {N} examples, α = {ALPHA}")
    for metric, method in CASES:
        equal = intervals(metric, method, 0.0, sets, seed=11)
        line = (f"{metric:9} {method:9} equal: PASS min_improvement 0 "
                f"{rate(share(equal, 0, 'min_improvement', 'PASS'))}, FAIL max_regression 0 "
                f"{rate(share(equal, 0, 'max_regression', 'FAIL'))}")
        if method != "mcnemar":
            at_margin = intervals(metric, method, MARGIN, sets, seed=12)
            line += (f"; at the margin: PASS max_regression {MARGIN} "
                     f"{rate(share(at_margin, MARGIN, 'max_regression', 'PASS'))}")
        print(line, flush=True)


if __name__ == "__main__":
    _report(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
