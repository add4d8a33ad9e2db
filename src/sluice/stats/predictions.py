"""Per-example predictions in memory: labels, scores, weights, ids and slices, and pairing.

What an evaluate stage wrote, as numpy arrays: the metrics, the bootstrap and the
paired tests take these. ``align`` pairs a candidate with its baseline example by
example (by ``id`` when both have one), ``slice_groups`` splits them by a slice
column. Labels are integer codes into ``Predictions.classes`` (strings, in numeric
order when every label is a number); for binary predictions code 1 is the positive
class, the greater of the two labels. Building validated predictions from columns is
:mod:`sluice.stats.prediction_columns`; reading files, :mod:`sluice.evaluate.predictions`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from sluice.errors import UsageError

Task = Literal["binary", "multiclass", "regression"]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ObjArray = npt.NDArray[np.object_]

SCORE_PREFIX = "score_"
RESERVED = ("y_true", "y_pred", "y_score", "id", "weight")
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet",
           ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(frozen=True, eq=False)
class Predictions:
    """One model's per-example predictions on a test set (immutable)."""

    source: str  # the file they were read from, for messages
    task: Task
    y_true: npt.NDArray[Any]  # int64 class codes, or float64 targets (regression)
    y_pred: npt.NDArray[Any] | None  # int64 class codes, or float64 values (regression)
    y_score: FloatArray | None  # binary: (n,) positive-class score; multiclass: (n, k)
    classes: tuple[str, ...] = ()  # label of each class code; empty for regression
    ids: ObjArray | None = None  # str
    weight: FloatArray | None = None
    slices: Mapping[str, ObjArray] = field(default_factory=dict)
    scores_are_probabilities: bool = False

    @property
    def n(self) -> int:
        return int(self.y_true.shape[0])

    def take(self, index: npt.ArrayLike) -> Predictions:
        """The examples at ``index`` (integer positions or a boolean mask), in that order."""
        ix = np.asarray(index)

        def pick(a: Any) -> Any:
            return None if a is None else a[ix]

        return replace(self, y_true=self.y_true[ix], y_pred=pick(self.y_pred),
                       y_score=pick(self.y_score), ids=pick(self.ids), weight=pick(self.weight),
                       slices={k: v[ix] for k, v in self.slices.items()})

    def predicted_labels(self) -> IntArray | None:
        """``y_pred``, or labels from probabilities (≥ 0.5 binary, arg-max multiclass)."""
        if self.task == "regression":
            return None
        if self.y_pred is not None:
            return np.asarray(self.y_pred, dtype=np.int64)
        if self.y_score is None or not self.scores_are_probabilities:
            return None
        if self.y_score.ndim == 1:
            return (self.y_score >= 0.5).astype(np.int64)
        return np.asarray(np.argmax(self.y_score, axis=1), dtype=np.int64)



# --------------------------------------------------------------------------- pairing


def align(candidate: Predictions, baseline: Predictions) -> tuple[Predictions, Predictions]:
    """Pair a candidate's and the baseline's predictions example by example.

    By ``id`` when both files have one (every id must be on both sides), else by position
    (equal lengths required). Returns both in the same example order, with labels coded
    the same way (the baseline's classes); ``y_true`` must agree, and so must weights
    (a weight column on one side only applies to both).
    """
    labels_only = candidate.y_score is None and baseline.y_score is None
    if candidate.task != baseline.task and (not labels_only or "regression" in (
            candidate.task, baseline.task)):
        raise UsageError(f"the candidate's predictions ({candidate.source}) are "
                         f"{candidate.task} but the baseline's ({baseline.source}) are "
                         f"{baseline.task}", hint="compare predictions of the same task")
    if candidate.ids is not None and baseline.ids is not None:
        baseline = baseline.take(_match_ids(candidate, baseline))
    elif candidate.n != baseline.n:
        raise UsageError(f"the candidate has {candidate.n} examples ({candidate.source}) but "
                         f"the baseline has {baseline.n} ({baseline.source})",
                         hint="write an `id` column in both so sluice can pair examples, or "
                         "evaluate both on the same test set")
    if candidate.task != "regression":
        candidate = _recode(candidate, baseline)
        same = candidate.y_true == baseline.y_true
    else:
        same = np.isclose(candidate.y_true, baseline.y_true, rtol=1e-9, atol=1e-12)
    if not same.all():
        raise UsageError(f"the candidate ({candidate.source}) and the baseline "
                         f"({baseline.source}) disagree on y_true in {rows(~same)}"
                         + _id_note(candidate, ~same),
                         hint="evaluate both models on the same test set")
    weight = candidate.weight if candidate.weight is not None else baseline.weight
    if (candidate.weight is not None and baseline.weight is not None
            and not np.allclose(candidate.weight, baseline.weight, rtol=1e-9)):
        raise UsageError(f"the candidate ({candidate.source}) and the baseline "
                         f"({baseline.source}) give examples different weights",
                         hint="weight both evaluations the same way")
    return replace(candidate, weight=weight), replace(baseline, weight=weight)


def _id_note(preds: Predictions, mask: npt.NDArray[np.bool_]) -> str:
    if preds.ids is None:
        return ""
    return " (ids " + ", ".join(map(str, preds.ids[mask][:5])) + ")"


def _match_ids(candidate: Predictions, baseline: Predictions) -> IntArray:
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]

    position = pd.Index(baseline.ids).get_indexer(candidate.ids)
    assert candidate.ids is not None and baseline.ids is not None
    only_candidate = candidate.ids[position < 0]
    covered = np.zeros(baseline.n, dtype=bool)
    covered[position[position >= 0]] = True
    only_baseline = baseline.ids[~covered]
    if len(only_candidate) or len(only_baseline):
        parts = []
        for who, source, missing in (("baseline", baseline.source, only_candidate),
                                     ("candidate", candidate.source, only_baseline)):
            if len(missing):
                shown = ", ".join(map(str, missing[:5]))
                more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
                parts.append(f"{len(missing)} ids missing from the {who} ({source}): "
                             f"{shown}{more}")
        raise UsageError("the candidate's and the baseline's predictions cover different "
                         "examples: " + "; ".join(parts),
                         hint="evaluate both models on the same test set")
    return np.asarray(position, dtype=np.int64)


def _recode(candidate: Predictions, baseline: Predictions) -> Predictions:
    """The candidate with its labels coded as the baseline's classes."""
    if candidate.classes == baseline.classes:
        return candidate
    used = set(np.unique(candidate.y_true)) | (
        set(np.unique(candidate.y_pred)) if candidate.y_pred is not None else set())
    unseen = [c for i, c in enumerate(candidate.classes)
              if c not in baseline.classes and (i in used or candidate.y_score is not None)]
    if unseen:
        raise UsageError(f"the candidate ({candidate.source}) has labels the baseline "
                         f"({baseline.source}) never saw: {', '.join(unseen[:10])}; the "
                         f"baseline's labels are {', '.join(baseline.classes[:20])}",
                         hint="compare models trained on the same classes")
    if candidate.y_score is not None and candidate.y_score.ndim == 2 and \
            set(candidate.classes) != set(baseline.classes):
        raise UsageError(f"the candidate ({candidate.source}) scores classes "
                         f"{', '.join(candidate.classes)} but the baseline "
                         f"({baseline.source}) scores {', '.join(baseline.classes)}",
                         hint="write the same score_<class> columns for both models")
    index = {c: i for i, c in enumerate(baseline.classes)}
    mapping = np.asarray([index.get(c, -1) for c in candidate.classes], dtype=np.int64)
    score = candidate.y_score
    if score is not None and score.ndim == 2:
        score = score[:, [candidate.classes.index(c) for c in baseline.classes]]
    elif score is not None and mapping[1] != 1:  # binary with the positive class swapped
        raise UsageError(f"the candidate ({candidate.source}) and the baseline "
                         f"({baseline.source}) disagree on the positive class",
                         hint="use the same labels in both files")
    return replace(candidate, task=baseline.task, classes=baseline.classes,
                   y_true=mapping[candidate.y_true],
                   y_pred=None if candidate.y_pred is None else mapping[candidate.y_pred],
                   y_score=score)


def slice_groups(preds: Predictions, column: str) -> dict[str, IntArray]:
    """The example positions of each value of a slice column, values in sorted order."""
    if column not in preds.slices:
        raise UsageError(f"`{preds.source}` has no slice column `{column}`; its slice "
                         f"columns are: {', '.join(preds.slices) or '(none)'}",
                         hint="write the column in the evaluate stage's predictions")
    values = preds.slices[column]
    return {v: np.flatnonzero(values == v) for v in sorted(set(values.tolist()))}

def label_name(value: object) -> str:
    """The canonical text of one label: ``1``, ``1.0`` and ``"1"`` all name class "1"."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        f = float(value)
        return str(int(f)) if f.is_integer() else repr(f)
    return str(value)


def order_labels(labels: set[str] | Sequence[str]) -> tuple[str, ...]:
    """Numeric order when every label is a number, else text order."""
    try:
        return tuple(sorted(set(labels), key=float))
    except ValueError:
        return tuple(sorted(set(labels)))


def rows(mask: npt.NDArray[np.bool_]) -> str:
    where = np.flatnonzero(mask)
    shown = ", ".join(str(i + 1) for i in where[:5])
    more = f" and {len(where) - 5} more" if len(where) > 5 else ""
    return f"row{'s' if len(where) > 1 else ''} {shown}{more} (counting data rows from 1)"
