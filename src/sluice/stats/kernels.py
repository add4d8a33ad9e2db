"""The metric kernels: each built-in metric for a batch of bootstrap weightings.

Split from :mod:`sluice.stats.metrics` (the registry and public API), which explains the
conventions. Every kernel takes multiplicities ``m`` (r × n) and returns r values in a
few vectorised passes, plus each example's empirical influence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from sluice.errors import UsageError
from sluice.stats.predictions import FloatArray, IntArray

Needs = Literal["labels", "scores", "probabilities", "regression", "custom"]
ECE_BINS = 10
_EPS = float(np.finfo(np.float64).eps)


class Undefined(Exception):
    """The metric has no value on these data (e.g. ROC AUC with a single class)."""


@dataclass(frozen=True, eq=False)
class Inputs:
    """What one metric reads from one model's predictions."""

    y_true: npt.NDArray[Any]  # int64 class codes, or float64 targets
    y: npt.NDArray[Any]  # int64 codes, scores (n,) or (n, k), or predicted values
    weight: FloatArray  # ones when the predictions have no weight column
    n_classes: int
    weighted: bool = False
    source: str = "<arrays>"

    @property
    def n(self) -> int:
        return int(self.y_true.shape[0])

    def take(self, index: IntArray) -> Inputs:
        return replace(self, y_true=self.y_true[index], y=self.y[index],
                       weight=self.weight[index])


class Prepared(Protocol):
    """One metric on one model's predictions, ready to evaluate under many weightings."""

    @property
    def key(self) -> IntArray | None:
        """Equal keys ⇒ interchangeable examples; None for continuous data."""

    def batch(self, m: FloatArray) -> FloatArray:
        """The metric under multiplicities ``m`` (r × n); NaN where undefined."""

    def influence(self) -> FloatArray | None:
        """ψᵢ = n ∂θ/∂mᵢ at m = 1 (None when unknown, e.g. custom metrics)."""


def multiplicities(idx: npt.ArrayLike, n: int) -> FloatArray:
    """Resample index arrays (r × n, or one of n) as multiplicities (r × n)."""
    index = np.atleast_2d(np.asarray(idx, dtype=np.int64))
    r = index.shape[0]
    flat = (index + n * np.arange(r, dtype=np.int64)[:, None]).ravel()
    return np.bincount(flat, minlength=r * n).reshape(r, n).astype(np.float64)


def _group_sums(m: FloatArray, values: FloatArray, codes: IntArray, groups: int) -> FloatArray:
    """Σᵢ m[r, i]·values[i] over the examples of each group, for every row: (r, groups)."""
    r = m.shape[0]
    flat = (codes[None, :] + groups * np.arange(r, dtype=np.int64)[:, None]).ravel()
    sums = np.bincount(flat, weights=(m * values).ravel(), minlength=r * groups)
    return np.asarray(sums, dtype=np.float64).reshape(r, groups)


def _ratio(num: FloatArray, den: FloatArray, empty: float = np.nan) -> FloatArray:
    ok = den > 0
    return np.where(ok, num / np.where(ok, den, 1.0), empty)


# --------------------------------------------------------------------------- confusion

ConfusionFn = Callable[[FloatArray, FloatArray, FloatArray], FloatArray]


def _accuracy(d: FloatArray, rows: FloatArray, cols: FloatArray) -> FloatArray:
    return _ratio(d.sum(-1), rows.sum(-1))


def _balanced(d: FloatArray, rows: FloatArray, cols: FloatArray) -> FloatArray:
    present = rows > 0
    return _ratio((_ratio(d, rows, 0.0) * present).sum(-1), present.sum(-1).astype(float))


def _per_class(kind: str, d: FloatArray, rows: FloatArray, cols: FloatArray) -> FloatArray:
    if kind == "precision":
        return _ratio(d, cols, 0.0)
    if kind == "recall":
        return _ratio(d, rows, 0.0)
    return _ratio(2 * d, rows + cols, 0.0)


def _binary_fn(kind: str) -> ConfusionFn:
    return lambda d, rows, cols: _per_class(kind, d, rows, cols)[..., 1]


def _macro_fn(kind: str) -> ConfusionFn:
    def fn(d: FloatArray, rows: FloatArray, cols: FloatArray) -> FloatArray:
        present = (rows + cols) > 0  # classes seen in y_true or y_pred, as scikit-learn
        values = _per_class(kind, d, rows, cols) * present
        return _ratio(values.sum(-1), present.sum(-1).astype(float))
    return fn


class _Confusion:
    """Metrics of the (weighted) confusion matrix: diagonal, row sums and column sums."""

    def __init__(self, inputs: Inputs, fn: ConfusionFn) -> None:
        self.y, self.p = inputs.y_true.astype(np.int64), inputs.y.astype(np.int64)
        self.w, self.k, self.fn = inputs.weight, max(inputs.n_classes, 1), fn
        self.hit = self.w * (self.y == self.p)
        weights, wcode = np.unique(self.w, return_inverse=True)
        cells = self.k * self.k * len(weights)
        self.key = (None if cells > 2**30
                    else (self.y * self.k + self.p) * len(weights) + wcode.astype(np.int64))

    def _summaries(self, m: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        return (_group_sums(m, self.hit, self.y, self.k), _group_sums(m, self.w, self.y, self.k),
                _group_sums(m, self.w, self.p, self.k))

    def batch(self, m: FloatArray) -> FloatArray:
        return self.fn(*self._summaries(m))

    def influence(self) -> FloatArray:
        # The metric depends on the data only through 3k sums; central differences in
        # those give its gradient, and each example moves three of the sums.
        base = np.concatenate([s[0] for s in self._summaries(np.ones((1, len(self.y))))])
        h = 1e-6 * max(float(base[self.k:2 * self.k].sum()), 1e-300)
        size = len(base)
        points = np.repeat(base[None, :], 2 * size, axis=0)
        points[np.arange(size), np.arange(size)] += h
        points[size + np.arange(size), np.arange(size)] -= h
        values = self.fn(*np.split(points, 3, axis=1))
        grad = (values[:size] - values[size:]) / (2 * h)
        gd, grows, gcols = np.split(grad, 3)
        psi = self.hit * gd[self.y] + self.w * (grows[self.y] + gcols[self.p])
        return np.asarray(len(self.y) * psi, dtype=np.float64)


# --------------------------------------------------------------------------- means


class _Mean:
    """A weighted mean of per-example losses (or its square root)."""

    key = None

    def __init__(self, loss: FloatArray, w: FloatArray, root: bool = False) -> None:
        self.loss, self.w, self.wl, self.root = loss, w, w * loss, root

    def batch(self, m: FloatArray) -> FloatArray:
        value = _ratio(m @ self.wl, m @ self.w)
        return np.sqrt(value) if self.root else value

    def influence(self) -> FloatArray:
        total = float(self.w.sum())
        value = float(self.wl.sum()) / total
        psi = len(self.w) * self.w * (self.loss - value) / total
        if self.root:
            psi = psi / (2 * np.sqrt(value)) if value > 0 else 0 * psi
        return psi


class _R2:
    key = None

    def __init__(self, y: FloatArray, yhat: FloatArray, w: FloatArray) -> None:
        centred = y - float((w * y).sum() / w.sum())  # centring keeps SST free of cancellation
        self.w, self.wy, self.wyy, self.wee = w, w * centred, w * centred**2, w * (y - yhat)**2

    def batch(self, m: FloatArray) -> FloatArray:
        sw, sy, syy, sse = m @ self.w, m @ self.wy, m @ self.wyy, m @ self.wee
        sst = syy - _ratio(sy**2, sw, 0.0)
        # scikit-learn's convention for a constant target: 1 if predicted exactly, else 0
        return np.where(sst > 0, 1 - _ratio(sse, sst, 0.0), np.where(sse == 0, 1.0, 0.0))

    def influence(self) -> FloatArray:
        sst, sse = float(self.wyy.sum()), float(self.wee.sum())
        if sst <= 0:
            return np.zeros_like(self.w)
        return -len(self.w) * (self.wee - (sse / sst) * self.wyy) / sst


class _Ece:
    key = None

    def __init__(self, confidence: FloatArray, correct: FloatArray, w: FloatArray) -> None:
        edges = np.linspace(0.0, 1.0, ECE_BINS + 1)
        self.bins = np.searchsorted(edges[1:-1], confidence).astype(np.int64)
        self.w, self.wgap = w, w * (correct - confidence)

    def batch(self, m: FloatArray) -> FloatArray:
        gaps = _group_sums(m, self.wgap, self.bins, ECE_BINS)
        return _ratio(np.abs(gaps).sum(1), m @ self.w)

    def influence(self) -> FloatArray:
        gaps = _group_sums(np.ones((1, len(self.w))), self.wgap, self.bins, ECE_BINS)[0]
        total = float(self.w.sum())
        value = float(np.abs(gaps).sum()) / total
        psi = (self.wgap * np.sign(gaps)[self.bins] - self.w * value) / total
        return np.asarray(len(self.w) * psi, dtype=np.float64)


# --------------------------------------------------------------------------- rankings


class _Ranked:
    """Examples sorted by score once, with groups of tied scores."""

    key = None

    def __init__(self, positive: npt.NDArray[np.bool_], score: FloatArray, w: FloatArray,
                 descending: bool) -> None:
        self.order = np.argsort(-score if descending else score, kind="stable")
        s = score[self.order]
        new = np.ones(len(s), dtype=bool)
        new[1:] = s[1:] != s[:-1]
        self.starts = np.flatnonzero(new)
        self.group = np.cumsum(new) - 1  # tie group of each sorted position
        self.pos = positive[self.order]
        self.w = w[self.order]
        self.wp = np.where(self.pos, self.w, 0.0)
        self.wn = self.w - self.wp

    def grouped(self, m: FloatArray, a: FloatArray, b: FloatArray) -> tuple[FloatArray, ...]:
        ms = m[:, self.order]
        pa, pb = ms * a, ms * b
        if len(self.starts) < len(self.order):  # ties: sum each group of equal scores
            pa, pb = (np.add.reduceat(x, self.starts, axis=1) for x in (pa, pb))
        return pa, pb

    def unsort(self, sorted_values: FloatArray) -> FloatArray:
        out = np.empty_like(sorted_values)
        out[self.order] = sorted_values
        return out


class _Auc(_Ranked):
    """ROC AUC as a weighted Mann–Whitney statistic (ties count one half)."""

    def __init__(self, positive: npt.NDArray[np.bool_], score: FloatArray, w: FloatArray) -> None:
        super().__init__(positive, score, w, descending=False)
        if self.wp.sum() <= 0 or self.wn.sum() <= 0:
            raise Undefined("y_true has a single class (ROC AUC needs positives and negatives)")

    def batch(self, m: FloatArray) -> FloatArray:
        p, q = self.grouped(m, self.wp, self.wn)
        below = np.cumsum(q, axis=1)
        below -= 0.5 * q  # negatives strictly below, plus half the tied ones
        return _ratio(np.einsum("ij,ij->i", p, below), p.sum(1) * q.sum(1))

    def influence(self) -> FloatArray:
        p, q = (x[0] for x in self.grouped(np.ones((1, len(self.w))), self.wp, self.wn))
        w1, w0 = float(p.sum()), float(q.sum())
        theta = float((p * (np.cumsum(q) - 0.5 * q)).sum()) / (w1 * w0)
        rows = (np.cumsum(q) - 0.5 * q)[self.group]  # a positive: negatives it outranks
        cols = (np.cumsum(p[::-1])[::-1] - 0.5 * p)[self.group]  # a negative: positives above
        psi = np.where(self.pos, self.w * (rows - theta * w0), self.w * (cols - theta * w1))
        return self.unsort(len(psi) * psi / (w1 * w0))


class _Ap(_Ranked):
    """Average precision: Σ over positives of the precision at their score, weighted."""

    def __init__(self, positive: npt.NDArray[np.bool_], score: FloatArray, w: FloatArray) -> None:
        super().__init__(positive, score, w, descending=True)
        if self.wp.sum() <= 0:
            raise Undefined("y_true has no positive example")

    def batch(self, m: FloatArray) -> FloatArray:
        p, k = self.grouped(m, self.wp, self.w)
        precision = _ratio(np.cumsum(p, axis=1), np.cumsum(k, axis=1), 0.0)
        return _ratio(np.einsum("ij,ij->i", p, precision), p.sum(1))

    def influence(self) -> FloatArray:
        p, k = (x[0] for x in self.grouped(np.ones((1, len(self.w))), self.wp, self.w))
        kk = np.cumsum(k)
        precision = _ratio(np.cumsum(p), kk, 0.0)
        w1 = float(p.sum())
        theta = float((p * precision).sum()) / w1
        # d precision(t)/d m_l = 1[s_l ≥ t]·w_l (y_l − precision(t)) / K(t): summed over the
        # positives at or below l's score, as reversed cumulative sums
        x = _ratio(p, kk, 0.0)
        a = np.cumsum(x[::-1])[::-1][self.group]
        b = np.cumsum((x * precision)[::-1])[::-1][self.group]
        psi = self.w / w1 * (self.pos * (precision[self.group] - theta + a) - b)
        return self.unsort(len(psi) * psi)


class _MacroAverage:
    key = None

    def __init__(self, parts: Sequence[Prepared]) -> None:
        self.parts = parts

    def batch(self, m: FloatArray) -> FloatArray:
        return np.asarray(np.mean([part.batch(m) for part in self.parts], axis=0))

    def influence(self) -> FloatArray | None:
        values = [part.influence() for part in self.parts]
        known = [v for v in values if v is not None]
        return np.asarray(np.mean(known, axis=0)) if len(known) == len(values) else None


class _Custom:
    """A user's metric ``f(y_true, y, weight) -> float``, called once per resample."""

    key = None

    def __init__(self, fn: Callable[..., Any], name: str, inputs: Inputs) -> None:
        self.fn, self.name, self.inputs = fn, name, inputs

    def batch(self, m: FloatArray) -> FloatArray:
        out = np.empty(m.shape[0])
        every = np.arange(self.inputs.n)
        for row in range(m.shape[0]):
            ix = np.repeat(every, m[row].astype(np.int64))
            try:
                value = self.fn(self.inputs.y_true[ix], self.inputs.y[ix],
                                self.inputs.weight[ix] if self.inputs.weighted else None)
            except Exception as exc:  # the user's code: any failure is theirs to fix
                raise UsageError(f"custom metric `{self.name}` raised "
                                 f"{type(exc).__name__}: {exc}",
                                 hint="it is called as f(y_true, y, weight) and returns one "
                                      "number (see docs/gates.md, Metrics)") from None
            try:
                out[row] = float(value)
            except (TypeError, ValueError):
                raise UsageError(f"custom metric `{self.name}` returned {value!r}",
                                 hint="a metric function returns one number") from None
        return out

    def influence(self) -> None:
        return None


# --------------------------------------------------------------------------- builders


def _binary_or_each(build: Callable[[npt.NDArray[np.bool_], FloatArray, FloatArray], Prepared]
                    ) -> Callable[[Inputs], Prepared]:
    def make(inputs: Inputs) -> Prepared:
        y, s, w = inputs.y_true, np.asarray(inputs.y, dtype=np.float64), inputs.weight
        if s.ndim == 1:
            return build(y == 1, s, w)
        return _MacroAverage([build(y == k, s[:, k], w) for k in range(s.shape[1])])
    return make


def _log_loss(inputs: Inputs) -> Prepared:
    y, s = inputs.y_true, np.clip(np.asarray(inputs.y, dtype=np.float64), _EPS, 1 - _EPS)
    p = np.where(y == 1, s, 1 - s) if s.ndim == 1 else s[np.arange(len(y)), y]
    return _Mean(-np.log(p), inputs.weight)


def _brier(inputs: Inputs) -> Prepared:
    y, s = inputs.y_true, np.asarray(inputs.y, dtype=np.float64)
    if s.ndim == 1:
        return _Mean((s - (y == 1)) ** 2, inputs.weight)
    onehot = np.arange(s.shape[1])[None, :] == y[:, None]
    return _Mean(((s - onehot) ** 2).sum(1), inputs.weight)


def _ece(inputs: Inputs) -> Prepared:
    y, s = inputs.y_true, np.asarray(inputs.y, dtype=np.float64)
    if s.ndim == 1:
        return _Ece(s, (y == 1).astype(float), inputs.weight)
    return _Ece(s.max(1), (s.argmax(1) == y).astype(float), inputs.weight)


def _regression(loss: Callable[[FloatArray, FloatArray], FloatArray], root: bool = False
                ) -> Callable[[Inputs], Prepared]:
    return lambda inputs: _Mean(loss(inputs.y_true, inputs.y), inputs.weight, root)
