"""Metrics that sluice computes itself from per-example predictions.

Every built-in metric is written once, for a *batch of weightings*: given the
multiplicities ``m`` (r × n: how often each example appears in each of r bootstrap
resamples) it returns the r metric values in a few vectorised passes. The plain value
is the batch of one row of ones, and ``idx`` (resample index arrays) is turned into
multiplicities — every metric is a symmetric function of the examples, so the two agree.

Each metric also gives its *empirical influence* values (ψᵢ = n ∂θ/∂mᵢ at m = 1), the
linear term of how the metric moves when an example is repeated or dropped; the
statistics use them for BCa acceleration and for resampling a million examples quickly
(see ``sluice.stats.paired``). Confusion-matrix metrics also give each example a discrete *key*:
examples with equal keys are interchangeable, so resampling can draw cell counts instead.

Conventions (checked against scikit-learn in the tests): binary metrics take the greater
label as positive; ``*_macro`` averages over the classes present in y_true or y_pred;
``*_micro`` equals accuracy for single-label data; ``roc_auc``/``pr_auc`` on multiclass
scores are one-vs-rest macro averages; ``log_loss`` clips probabilities to [ε, 1 − ε];
the multiclass Brier score sums over classes; ``calibration_error`` is the expected
calibration error over 10 equal-width bins of the confidence (the positive-class
probability for binary, the top-class probability for multiclass), bin b holding
(b/10, (b+1)/10] and 0 in the first: Σ_b |Σ_{i∈b} wᵢ(correctᵢ − confᵢ)| / Σ wᵢ.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from sluice.errors import UsageError
from sluice.stats.kernels import (
    _EPS,
    _R2,
    ConfusionFn,
    Inputs,
    Needs,
    Prepared,
    Undefined,
    _accuracy,
    _Ap,
    _Auc,
    _balanced,
    _binary_fn,
    _binary_or_each,
    _brier,
    _Confusion,
    _Custom,
    _ece,
    _log_loss,
    _macro_fn,
    _regression,
    multiplicities,
)
from sluice.stats.prediction_columns import from_arrays
from sluice.stats.predictions import FloatArray, Predictions, slice_groups
from sluice.util.suggest import closest


@dataclass(frozen=True)
class Metric:
    """A named metric: what it reads, which way is better, and how to compute it."""

    name: str
    needs: Needs
    higher_is_better: bool
    build: Callable[[Inputs], Prepared]
    binary_only: bool = False

    def inputs(self, preds: Predictions) -> Inputs:
        """The arrays this metric reads from ``preds``, or a UsageError saying why it can't."""
        weight = preds.weight if preds.weight is not None else np.ones(preds.n)

        def made(y: npt.NDArray[Any]) -> Inputs:
            return Inputs(preds.y_true, y, weight, len(preds.classes),
                          weighted=preds.weight is not None, source=preds.source)

        where = f"`{preds.source}`"
        if self.needs == "regression" or (self.needs == "custom" and preds.task == "regression"):
            if preds.task != "regression" or preds.y_pred is None:
                raise UsageError(f"{self.name} is a regression metric but {where} holds "
                                 f"{preds.task} predictions",
                                 hint="use accuracy, f1, roc_auc, log_loss, … for classification")
            return made(preds.y_pred)
        if preds.task == "regression":
            raise UsageError(f"{self.name} does not apply to regression: {where} has a "
                             "continuous y_true", hint="use rmse, mae, r2 or mape for regression")
        if self.binary_only and len(preds.classes) != 2:
            raise UsageError(f"{self.name} is for two classes but {where} has "
                             f"{len(preds.classes)}",
                             hint=f"use {self.name}_macro or {self.name}_micro for multiclass")
        y = preds.y_score if self.needs != "labels" else preds.predicted_labels()
        if self.needs == "custom":
            y = preds.y_score if preds.y_score is not None else preds.y_pred
        if y is None and self.needs == "labels":
            raise UsageError(f"{self.name} needs predicted labels but {where} has no `y_pred` "
                             "(nor probabilities to derive them from)",
                             hint="write y_pred in the evaluate stage")
        if y is None:
            raise UsageError(f"{self.name} needs scores but {where} has no `y_score` or "
                             "score_<class> columns", hint="write the predicted probabilities")
        if self.needs == "probabilities" and not preds.scores_are_probabilities:
            raise UsageError(f"{self.name} needs probabilities but `y_score` in {where} has "
                             "values outside [0, 1]",
                             hint="write probabilities (e.g. predict_proba), not decision scores")
        return made(y)

    def prepare(self, inputs: Inputs) -> Prepared:
        try:
            return self.build(inputs)
        except Undefined as why:
            raise UsageError(f"{self.name} is undefined for `{inputs.source}`: {why}",
                             hint="evaluate on a test set with examples of every class") from None

    def compute(self, preds: Predictions) -> float:
        return float(self.prepare(self.inputs(preds)).batch(np.ones((1, preds.n)))[0])

    def resampled(self, preds: Predictions, idx: npt.ArrayLike) -> FloatArray:
        """The metric on each resample ``idx`` (r × n index arrays) of ``preds``."""
        return self.prepare(self.inputs(preds)).batch(multiplicities(idx, preds.n))

    @overload
    def __call__(self, y_true: npt.ArrayLike, y: npt.ArrayLike,
                 weight: npt.ArrayLike | None = ..., idx: None = ...) -> float: ...

    @overload
    def __call__(self, y_true: npt.ArrayLike, y: npt.ArrayLike,
                 weight: npt.ArrayLike | None = ..., *, idx: npt.ArrayLike) -> FloatArray: ...

    def __call__(self, y_true: npt.ArrayLike, y: npt.ArrayLike,
                 weight: npt.ArrayLike | None = None,
                 idx: npt.ArrayLike | None = None) -> float | FloatArray:
        """The metric on arrays, scikit-learn style; with ``idx``, on each resample."""
        if self.needs == "custom":
            raise UsageError(f"call custom metric `{self.name}` directly")
        yv = np.asarray(y)
        if self.needs == "regression":
            preds = from_arrays(y_true, y_pred=yv, weight=weight, task="regression")
        elif self.needs == "labels":
            labels = {*np.unique(np.asarray(y_true)).tolist(), *np.unique(yv).tolist()}
            preds = from_arrays(y_true, y_pred=yv, weight=weight,
                                            task="binary" if len(labels) <= 2 else "multiclass")
        else:
            preds = from_arrays(y_true, y_score=yv, weight=weight)
        values = self.resampled(preds, np.arange(preds.n) if idx is None else idx)
        return float(values[0]) if idx is None or np.ndim(idx) == 1 else values


def _confusion(fn: ConfusionFn) -> Callable[[Inputs], Prepared]:
    return lambda inputs: _Confusion(inputs, fn)


_BUILT_IN = [
    Metric("accuracy", "labels", True, _confusion(_accuracy)),
    Metric("balanced_accuracy", "labels", True, _confusion(_balanced)),
    *(Metric(kind, "labels", True, _confusion(_binary_fn(kind)), binary_only=True)
      for kind in ("precision", "recall", "f1")),
    *(Metric(f"{kind}_macro", "labels", True, _confusion(_macro_fn(kind)))
      for kind in ("precision", "recall", "f1")),
    *(Metric(f"{kind}_micro", "labels", True, _confusion(_accuracy))
      for kind in ("precision", "recall", "f1")),
    Metric("roc_auc", "scores", True, _binary_or_each(_Auc)),
    Metric("pr_auc", "scores", True, _binary_or_each(_Ap)),
    Metric("log_loss", "probabilities", False, _log_loss),
    Metric("brier", "probabilities", False, _brier),
    Metric("calibration_error", "probabilities", False, _ece),
    Metric("rmse", "regression", False, _regression(lambda y, f: (y - f) ** 2, root=True)),
    Metric("mae", "regression", False, _regression(lambda y, f: np.abs(y - f))),
    Metric("mape", "regression", False,
           _regression(lambda y, f: np.abs(y - f) / np.maximum(np.abs(y), _EPS))),
    Metric("r2", "regression", True, lambda inputs: _R2(inputs.y_true, inputs.y, inputs.weight)),
]
METRICS: dict[str, Metric] = {m.name: m for m in _BUILT_IN}
HIGHER_IS_BETTER: dict[str, bool] = {m.name: m.higher_is_better for m in _BUILT_IN}

accuracy = METRICS["accuracy"]
balanced_accuracy = METRICS["balanced_accuracy"]
precision, recall, f1 = METRICS["precision"], METRICS["recall"], METRICS["f1"]
precision_macro, recall_macro = METRICS["precision_macro"], METRICS["recall_macro"]
f1_macro, f1_micro = METRICS["f1_macro"], METRICS["f1_micro"]
precision_micro, recall_micro = METRICS["precision_micro"], METRICS["recall_micro"]
roc_auc, pr_auc = METRICS["roc_auc"], METRICS["pr_auc"]
log_loss, brier = METRICS["log_loss"], METRICS["brier"]
calibration_error = METRICS["calibration_error"]
rmse, mae, mape, r2 = METRICS["rmse"], METRICS["mae"], METRICS["mape"], METRICS["r2"]


def resolve_metric(ref: str | Metric) -> Metric:
    """A built-in metric by name, or a custom one by reference ``"package.module:function"``.

    A custom function is called as ``f(y_true, y, weight)`` with numpy arrays: class codes
    (index into ``Predictions.classes``; 1 is the positive class of a binary task) or
    regression targets, then the scores if the predictions have any, else ``y_pred``, and
    the weights or None. Set an attribute ``higher_is_better = False`` on a loss.
    """
    if isinstance(ref, Metric):
        return ref
    if ref in METRICS:
        return METRICS[ref]
    if ":" not in ref:

        close = closest(ref, METRICS)
        raise UsageError(f"unknown metric `{ref}`",
                         hint=(f"did you mean `{close}`? " if close else "")
                         + f"built-in metrics: {', '.join(METRICS)}; or a custom one as "
                         "`package.module:function`")
    module_name, _, attr = ref.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise UsageError(f"cannot load custom metric `{ref}`: {error}",
                         hint="name it as `package.module:function`, importable from the "
                         "project root") from None
    if not callable(fn):
        raise UsageError(f"custom metric `{ref}` is not a function",
                         hint="point at a function f(y_true, y, weight) -> float")
    return Metric(ref, "custom", bool(getattr(fn, "higher_is_better", True)),
                  lambda inputs: _Custom(fn, ref, inputs))


def evaluate(preds: Predictions, metrics: Sequence[str | Metric]) -> dict[str, float]:
    """Each metric's value on ``preds``."""
    resolved = [resolve_metric(m) for m in metrics]
    return {m.name: m.compute(preds) for m in resolved}


@dataclass(frozen=True)
class SliceMetrics:
    """The metrics of one value of a slice column; ``metrics`` empty when too small."""

    value: str
    n: int
    metrics: dict[str, float]
    problems: dict[str, str]  # metric name → why it has no value on this slice

    @property
    def skipped(self) -> bool:
        return not self.metrics and not self.problems


def default_metrics(preds: Predictions) -> list[str]:
    if preds.task == "regression":
        return ["rmse", "mae", "r2"]
    names = ["accuracy"] if preds.predicted_labels() is not None else []
    if preds.task == "multiclass":
        names.append("f1_macro")
    if preds.y_score is not None:
        names.append("roc_auc")
        if preds.scores_are_probabilities:
            names.append("log_loss")
    return names


def metrics_by_slice(preds: Predictions, column: str, min_size: int = 30,
                     metrics: Sequence[str | Metric] | None = None) -> list[SliceMetrics]:
    """Metrics per value of a slice column; slices under ``min_size`` examples are skipped.

    A metric undefined on a slice (e.g. ROC AUC where every example has one class) is
    reported in ``problems`` instead of failing the whole breakdown.
    """
    resolved = [resolve_metric(m) for m in (metrics or default_metrics(preds))]
    for metric in resolved:
        metric.inputs(preds)  # a metric that cannot fit the task fails for the whole set
    results = []
    for value, index in slice_groups(preds, column).items():
        if len(index) < min_size:
            results.append(SliceMetrics(value, len(index), {}, {}))
            continue
        part = preds.take(index)
        values, problems = {}, {}
        for metric in resolved:
            try:
                values[metric.name] = metric.compute(part)
            except UsageError as error:
                problems[metric.name] = error.message
        results.append(SliceMetrics(value, len(index), values, problems))
    return results
