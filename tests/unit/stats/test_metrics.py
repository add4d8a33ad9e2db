"""sluice.stats.metrics against scikit-learn: weights, ties, resample indices and influences."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sklearn.metrics as sk  # type: ignore[import-untyped, unused-ignore]
from sklearn.calibration import calibration_curve  # type: ignore[import-untyped, unused-ignore]
from sklearn.preprocessing import label_binarize  # type: ignore[import-untyped, unused-ignore]

from sluice.errors import UsageError
from sluice.stats import metrics as M
from sluice.stats.prediction_columns import from_arrays
from sluice.stats.predictions import Predictions

RNG = np.random.default_rng(11)
N = 400
Y2 = RNG.integers(0, 2, N)
# scores rounded to two decimals, so that many are tied
S2 = np.round(np.clip(0.3 * Y2 + 0.7 * RNG.random(N), 0, 1), 2)
P2 = (S2 > 0.5).astype(int)
W = RNG.random(N) + 0.1
Y4 = RNG.integers(0, 4, N)
S4 = RNG.dirichlet(np.ones(4), N)
S4[:, 0] += 0.4 * (Y4 == 0)
S4 /= S4.sum(1, keepdims=True)
P4 = S4.argmax(1)
T = 3 * RNG.normal(size=N) + 1
F = T + RNG.normal(size=N)

Case = tuple[str, Callable[..., float], Any, Any, dict[str, Any]]
CASES: list[Case] = [
    ("accuracy", sk.accuracy_score, Y2, P2, {}),
    ("balanced_accuracy", sk.balanced_accuracy_score, Y2, P2, {}),
    ("precision", sk.precision_score, Y2, P2, {}),
    ("recall", sk.recall_score, Y2, P2, {}),
    ("f1", sk.f1_score, Y2, P2, {}),
    ("roc_auc", sk.roc_auc_score, Y2, S2, {}),
    ("pr_auc", sk.average_precision_score, Y2, S2, {}),
    ("log_loss", sk.log_loss, Y2, S2, {}),
    ("brier", sk.brier_score_loss, Y2, S2, {}),
    ("accuracy", sk.accuracy_score, Y4, P4, {}),
    ("balanced_accuracy", sk.balanced_accuracy_score, Y4, P4, {}),
    *((f"{k}_{avg}", getattr(sk, f"{k}_score"), Y4, P4, {"average": avg})
      for k in ("precision", "recall", "f1") for avg in ("macro", "micro")),
    ("roc_auc", sk.roc_auc_score, Y4, S4, {"multi_class": "ovr"}),
    ("log_loss", sk.log_loss, Y4, S4, {}),
    ("brier", sk.brier_score_loss, Y4, S4, {}),
    ("rmse", sk.root_mean_squared_error, T, F, {}),
    ("mae", sk.mean_absolute_error, T, F, {}),
    ("r2", sk.r2_score, T, F, {}),
    ("mape", sk.mean_absolute_percentage_error, T, F, {}),
]


def case_id(case: Case) -> str:
    return f"{case[0]}-{'reg' if case[2] is T else len(np.unique(case[2]))}"


@pytest.mark.parametrize(("name", "reference", "y", "pred", "kwargs"), CASES,
                         ids=[case_id(c) for c in CASES])
@pytest.mark.parametrize("weighted", [False, True])
def test_metric_matches_scikit_learn(name: str, reference: Callable[..., float], y: Any,
                                     pred: Any, kwargs: dict[str, Any], weighted: bool) -> None:
    weight = W if weighted else None
    expected = reference(y, pred, sample_weight=weight, **kwargs)
    assert M.METRICS[name](y, pred, weight) == pytest.approx(expected, rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("weighted", [False, True])
def test_multiclass_average_precision_is_the_macro_average(weighted: bool) -> None:
    weight = W if weighted else None
    expected = sk.average_precision_score(label_binarize(Y4, classes=range(4)), S4,
                                          average="macro", sample_weight=weight)
    assert M.pr_auc(Y4, S4, weight) == pytest.approx(expected, rel=1e-12)


def test_calibration_error_matches_the_calibration_curve() -> None:
    # sklearn's calibration_curve gives per-bin means; ECE weighs each |gap| by bin size
    prob_true, prob_pred = calibration_curve(Y2, S2, n_bins=10, strategy="uniform")
    counts = np.bincount(np.searchsorted(np.linspace(0, 1, 11)[1:-1], S2), minlength=10)
    expected = float((counts[counts > 0] / N * np.abs(prob_true - prob_pred)).sum())
    assert M.calibration_error(Y2, S2) == pytest.approx(expected, rel=1e-12)


def test_calibration_error_by_hand() -> None:
    # bins: 0.1 → bin 0 (right-closed), 0.15 and 0.2 → bin 1, 0.95 → bin 9, 0.0 → bin 0
    y = [0, 1, 0, 1, 1]
    s = [0.1, 0.15, 0.2, 0.95, 0.0]
    w = [1.0, 1.0, 2.0, 1.0, 1.0]
    # bin 0: (0 − 0.1) + (1 − 0) = 0.9; bin 1: (1 − 0.15) + 2·(0 − 0.2) = 0.45;
    # bin 9: 1 − 0.95 = 0.05; total weight 6
    assert M.calibration_error(y, s, w) == pytest.approx((0.9 + 0.45 + 0.05) / 6)
    # multiclass: top-label confidence and correctness
    probs = [[0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [0.2, 0.2, 0.6]]
    # confidences 0.7 (bin 6, right), 0.6 (bin 5, wrong), 0.6 (bin 5, right)
    assert M.calibration_error([0, 0, 2], probs) == pytest.approx((0.3 + abs(-0.6 + 0.4)) / 3)


def test_resample_indices_give_each_resample_its_value() -> None:
    idx = RNG.integers(0, N, (5, N))
    values = M.roc_auc(Y2, S2, W, idx=idx)
    expected = [sk.roc_auc_score(Y2[i], S2[i], sample_weight=W[i]) for i in idx]
    np.testing.assert_allclose(values, expected, rtol=1e-12)
    np.testing.assert_allclose(M.rmse(T, F, idx=idx),
                               [sk.root_mean_squared_error(T[i], F[i]) for i in idx], rtol=1e-12)
    assert M.accuracy(Y2, P2, idx=idx[0]) == pytest.approx(sk.accuracy_score(Y2[idx[0]],
                                                                             P2[idx[0]]))


PREDS = {
    "binary": from_arrays(Y2, P2, S2, weight=W),
    "multiclass": from_arrays(Y4, P4, S4, weight=W),
    "regression": from_arrays(T, F, weight=W),
}


@pytest.mark.parametrize("task", list(PREDS))
def test_influence_is_the_derivative_of_the_metric(task: str) -> None:
    preds = PREDS[task]
    checked = 0
    for metric in M.METRICS.values():
        try:
            prepared = metric.prepare(metric.inputs(preds))
        except UsageError:
            continue
        psi = prepared.influence()
        assert psi is not None
        picks = [0, 7, 123, 399]
        eps = 1e-6
        bumped = np.ones((len(picks), N))
        bumped[np.arange(len(picks)), picks] += eps
        base = prepared.batch(np.ones((1, N)))[0]
        numeric = (prepared.batch(bumped) - base) / eps * N
        scale = np.abs(psi).max()
        np.testing.assert_allclose(numeric, psi[picks], atol=1e-5 * scale, err_msg=metric.name)
        assert abs(psi.sum()) < 1e-6 * scale * N
        checked += 1
    assert checked >= 4


def test_higher_is_better_table() -> None:
    lower = {n for n, better in M.HIGHER_IS_BETTER.items() if not better}
    assert lower == {"log_loss", "brier", "calibration_error", "rmse", "mae", "mape"}
    assert set(M.HIGHER_IS_BETTER) == set(M.METRICS)


@pytest.mark.parametrize(("name", "preds", "message"), [
    ("roc_auc", PREDS["regression"], "roc_auc does not apply to regression"),
    ("rmse", PREDS["binary"], "rmse is a regression metric"),
    ("precision", PREDS["multiclass"], "precision is for two classes"),
    ("log_loss", from_arrays([0, 1], y_score=[-1.0, 2.0]), "needs probabilities"),
    ("roc_auc", from_arrays([0, 1], [0, 1]), "needs scores"),
    ("accuracy", from_arrays([0, 1], y_score=[-1.0, 2.0]), "needs predicted labels"),
    ("roc_auc", from_arrays([1, 1], y_score=[0.2, 0.3]), "single class"),
])
def test_metrics_that_do_not_fit_raise_clearly(name: str, preds: Predictions,
                                               message: str) -> None:
    with pytest.raises(UsageError, match=message):
        M.METRICS[name].compute(preds)


def test_unknown_metric_suggests_a_name() -> None:
    with pytest.raises(UsageError) as caught:
        M.resolve_metric("roc_uac")
    assert caught.value.hint is not None and "did you mean `roc_auc`" in caught.value.hint


def test_custom_metric_by_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_metrics.py").write_text(textwrap.dedent("""
        import numpy as np

        def cost(y_true, y, weight):
            return float(np.average((y_true == 1) & (y < 0.5), weights=weight))
        cost.higher_is_better = False

        def broken(y_true, y, weight):
            return "high"
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        metric = M.resolve_metric("my_metrics:cost")
        assert not metric.higher_is_better
        expected = float(np.average((Y2 == 1) & (S2 < 0.5), weights=W))
        assert metric.compute(PREDS["binary"]) == pytest.approx(expected)
        with pytest.raises(UsageError, match="returned 'high'"):
            M.resolve_metric("my_metrics:broken").compute(PREDS["binary"])
        with pytest.raises(UsageError, match="cannot load custom metric"):
            M.resolve_metric("my_metrics:missing")
    finally:
        sys.modules.pop("my_metrics", None)


def test_metrics_by_slice_skips_small_slices_and_reports_undefined_ones() -> None:
    region = np.where(np.arange(N) < 300, "eu", "us").astype(object)
    region[:5] = "tiny"
    y = Y2.copy()
    y[300:] = 1  # only positives in "us": ROC AUC has no value there
    preds = from_arrays(y, P2, S2, slices={"region": region})
    result = {s.value: s for s in M.metrics_by_slice(preds, "region", 30,
                                                     ["accuracy", "roc_auc"])}
    assert result["tiny"].skipped and result["tiny"].n == 5
    eu = np.arange(5, 300)
    assert result["eu"].metrics["roc_auc"] == pytest.approx(sk.roc_auc_score(y[eu], S2[eu]))
    assert "single class" in result["us"].problems["roc_auc"]
    assert result["us"].metrics["accuracy"] == pytest.approx(sk.accuracy_score(y[300:],
                                                                               P2[300:]))
    with pytest.raises(UsageError, match="no slice column `country`"):
        M.metrics_by_slice(preds, "country", 30)
