"""Validated predictions from a table's columns: task detection, labels, scores, weights.

The rules an evaluate stage's predictions must follow (docs/gates.md): ``y_true``;
``y_pred`` and/or ``y_score`` or one ``score_<class>`` column per class; optional
``id`` and ``weight``; every other column a slice. Each broken rule is a clear error
naming the rows. :mod:`sluice.evaluate.predictions` reads files into a table and
hands it here; ``Predictions.from_arrays`` does the same for arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from sluice.errors import UsageError
from sluice.stats.predictions import (
    RESERVED,
    SCORE_PREFIX,
    FloatArray,
    IntArray,
    ObjArray,
    Predictions,
    Task,
    label_name,
    order_labels,
    rows,
)
from sluice.util.suggest import closest

# --------------------------------------------------------------------------- labels



def _labels(frame: Any, column: str, source: str) -> tuple[IntArray, list[str]]:
    """Factorise a label column: codes into the returned (unordered) label names."""
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]

    codes, uniques = pd.factorize(frame[column], use_na_sentinel=True)
    if (codes < 0).any():
        raise UsageError(f"`{column}` is missing in {rows(codes < 0)} of `{source}`",
                         hint=f"every example needs a {column}")
    return codes.astype(np.int64), [label_name(u) for u in uniques]


def _slice_values(frame: Any, column: str) -> ObjArray:
    """A slice column as text; a missing value is its own slice, "(missing)"."""
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]

    codes, uniques = pd.factorize(frame[column], use_na_sentinel=True)
    names = [label_name(u) for u in uniques] + ["(missing)"]
    values: ObjArray = np.asarray(names, dtype=object)[np.asarray(codes)]
    return values


def _encode(codes: IntArray, names: list[str], classes: tuple[str, ...]) -> IntArray:
    index = {c: i for i, c in enumerate(classes)}
    return np.asarray([index[name] for name in names], dtype=np.int64)[codes]


def _numbers(frame: Any, column: str, source: str, what: str) -> FloatArray:
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]

    try:
        values: FloatArray = np.asarray(pd.to_numeric(frame[column], errors="raise")
                                        .to_numpy(dtype=np.float64, na_value=np.nan))
    except (ValueError, TypeError):
        bad = pd.to_numeric(frame[column], errors="coerce").isna() & frame[column].notna()
        raise UsageError(f"`{column}` in `{source}` has non-numeric values in "
                         f"{rows(bad.to_numpy())}", hint=f"{column} must hold {what}") from None
    finite = np.isfinite(values)
    if not finite.all():
        kind = "NaN (missing)" if np.isnan(values).any() else "infinite"
        raise UsageError(f"`{column}` in `{source}` has {kind} values in {rows(~finite)}",
                         hint=f"{column} must hold finite {what} for every example")
    return values


def _is_numeric(frame: Any, column: str) -> bool:
    return frame[column].dtype.kind in "iuf"


def _whole(values: FloatArray) -> bool:
    return bool(np.all(values == np.round(values)))
_NEGATIVE_OF = {"1": "0", "True": "False"}  # a single seen label: the missing half of a pair
_POSITIVE_OF = {"0": "1", "False": "True", "-1": "1"}


# --------------------------------------------------------------------------- frames


def from_frame(frame: Any, source: str, task: Task | None) -> Predictions:
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    if not columns:
        raise UsageError(f"predictions file `{source}` is empty",
                         hint="the evaluate stage must write a header and one row per example")
    if "y_true" not in columns:

        close = closest("y_true", columns)
        raise UsageError(f"`{source}` has no `y_true` column; its columns are: "
                         f"{', '.join(columns[:30])}",
                         hint=(f"did you mean `{close}`? " if close else "")
                         + "write the true label (or target) of each example as y_true")
    score_columns = [c for c in columns if c.startswith(SCORE_PREFIX)]
    if "y_pred" not in columns and "y_score" not in columns and not score_columns:
        raise UsageError(f"`{source}` has no prediction column (`y_pred`, `y_score` or "
                         f"`score_<class>`); its columns are: {', '.join(columns[:30])}",
                         hint="write y_pred (label or value), y_score (binary) or one "
                         "score_<class> column per class")
    if len(frame) == 0:
        raise UsageError(f"predictions file `{source}` has no rows",
                         hint="the evaluate stage must write one row per test example")
    if "y_score" in columns and score_columns:
        raise UsageError(f"`{source}` has both `y_score` and score_<class> columns",
                         hint="write y_score for binary tasks, score_<class> for multiclass")
    if len(score_columns) == 1:
        raise UsageError(f"`{source}` has a single score column `{score_columns[0]}`",
                         hint="write one score_<class> column per class, or name a binary "
                         "task's positive-class score y_score")
    if task is None:
        task = _detect_task(frame, columns, score_columns)
    weight = None
    if "weight" in columns:
        weight = _numbers(frame, "weight", source, "non-negative weights")
        if (weight < 0).any() or weight.sum() <= 0:
            raise UsageError(f"`weight` in `{source}` is negative in {rows(weight < 0)}"
                             if (weight < 0).any() else f"every weight in `{source}` is 0",
                             hint="weights must be ≥ 0 and not all 0")
    ids = None
    if "id" in columns:
        id_codes, id_names = _labels(frame, "id", source)
        ids = np.asarray(id_names, dtype=object)[id_codes]
        if len(id_names) < len(ids):
            dup = frame["id"].duplicated().to_numpy()
            raise UsageError(f"`{source}` repeats ids: {', '.join(map(str, ids[dup][:5]))}",
                             hint="ids must be unique so examples can be paired")
    slices = {c: _slice_values(frame, c) for c in columns
              if c not in RESERVED and not c.startswith(SCORE_PREFIX)}
    base: dict[str, Any] = {"source": source, "ids": ids, "weight": weight, "slices": slices}
    if task == "regression":
        if score_columns or "y_score" in columns:
            raise UsageError(f"`{source}` has score columns but the task is regression",
                             hint="write y_pred with the predicted value")
        if "y_pred" not in columns:
            raise UsageError(f"`{source}` has no `y_pred` column",
                             hint="a regression stage writes the predicted value as y_pred")
        return Predictions(task=task, y_true=_numbers(frame, "y_true", source, "numbers"),
                           y_pred=_numbers(frame, "y_pred", source, "numbers"), y_score=None,
                           **base)
    return _classification(frame, columns, score_columns, task, base)


def _detect_task(frame: Any, columns: list[str], score_columns: list[str]) -> Task:
    if score_columns:
        return "binary" if len(score_columns) == 2 else "multiclass"
    if "y_score" in columns:
        return "binary"
    numeric = [c for c in ("y_true", "y_pred") if c in columns and _is_numeric(frame, c)]
    if len(numeric) == 2 and not all(
            _whole(frame[c].to_numpy(dtype=np.float64, na_value=0.0)) for c in numeric):
        return "regression"
    n_labels = len(set(frame["y_true"].dropna()) | set(frame["y_pred"].dropna()))
    return "binary" if n_labels <= 2 else "multiclass"


def _classification(frame: Any, columns: list[str], score_columns: list[str], task: Task,
                    base: dict[str, Any]) -> Predictions:
    source = base["source"]
    true_codes, true_names = _labels(frame, "y_true", source)
    pred_codes, pred_names = (_labels(frame, "y_pred", source) if "y_pred" in columns
                              else (None, []))
    seen = set(true_names) | set(pred_names)
    score: FloatArray | None = None
    if score_columns:
        names = [c[len(SCORE_PREFIX):] for c in score_columns]
        classes = order_labels(names)
        unknown = sorted(seen - set(classes))
        if unknown:
            raise UsageError(f"`{source}` has labels without a score column: "
                             f"{', '.join(unknown[:10])}",
                             hint="write one score_<class> column for every class")
        matrix = np.column_stack([_numbers(frame, SCORE_PREFIX + c, source, "probabilities")
                                  for c in classes])
        for j, c in enumerate(classes):
            outside = (matrix[:, j] < 0) | (matrix[:, j] > 1)
            if outside.any():
                raise UsageError(f"`{SCORE_PREFIX}{c}` in `{source}` is outside [0, 1] in "
                                 f"{rows(outside)}",
                                 hint="score_<class> columns hold probabilities")
        score = matrix if len(classes) > 2 else matrix[:, 1]
        task = "multiclass" if len(classes) > 2 else "binary"
        probabilities = True
    else:
        classes = order_labels(seen)
        probabilities = False
        if "y_score" in columns:
            if task == "multiclass":
                raise UsageError(f"`{source}` has `y_score` but the task is multiclass",
                                 hint="write one score_<class> column per class")
            score = _numbers(frame, "y_score", source, "scores")
            probabilities = bool(((score >= 0) & (score <= 1)).all())
        if task == "binary":
            classes = _binary_classes(classes, source)
    if task == "binary" and len(classes) != 2:
        raise UsageError(f"`{source}` has {len(classes)} labels ({', '.join(classes[:10])}) "
                         "for a binary task", hint="write one score_<class> column per class "
                         "for a multiclass task")
    return Predictions(task=task, y_true=_encode(true_codes, true_names, classes),
                       y_pred=(None if pred_codes is None
                               else _encode(pred_codes, pred_names, classes)),
                       y_score=score, classes=classes, scores_are_probabilities=probabilities,
                       **base)


def _binary_classes(seen: tuple[str, ...], source: str) -> tuple[str, ...]:
    if len(seen) == 2:
        return seen
    if len(seen) == 1:
        (only,) = seen
        if only in _POSITIVE_OF:
            return (only, _POSITIVE_OF[only])
        if only in _NEGATIVE_OF:
            return (_NEGATIVE_OF[only], only)
        raise UsageError(f"`{source}` has a single label `{only}`, so sluice cannot tell which "
                         "class is positive", hint="use 0/1 or True/False labels")
    raise UsageError(f"`{source}` has `y_score` but {len(seen)} labels "
                     f"({', '.join(seen[:10])})",
                     hint="y_score is the positive-class score of a binary task; write one "
                     "score_<class> column per class for a multiclass task")


def from_arrays(y_true: npt.ArrayLike, y_pred: npt.ArrayLike | None = None,
                y_score: npt.ArrayLike | None = None, *, ids: npt.ArrayLike | None = None,
                weight: npt.ArrayLike | None = None,
                slices: Mapping[str, npt.ArrayLike] | None = None,
                classes: Sequence[object] | None = None, task: Task | None = None,
                source: str = "<arrays>") -> Predictions:
    """Build predictions from arrays, with the same checks as reading a file.

    A 2-D ``y_score`` holds one column per class, in the order of ``classes``
    (default: 0 … k − 1 when the labels are such integers, else the sorted labels).
    """
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]

    columns: dict[str, Any] = {"y_true": np.asarray(y_true)}
    if y_pred is not None:
        columns["y_pred"] = np.asarray(y_pred)
    if y_score is not None:
        score = np.asarray(y_score)
        if score.ndim == 2:
            seen = {label_name(v) for v in columns["y_true"]}
            names = ([label_name(c) for c in classes] if classes is not None
                     else list(order_labels(seen)))
            if classes is None and seen <= {str(j) for j in range(score.shape[1])}:
                names = [str(j) for j in range(score.shape[1])]  # column j is class j
            if len(names) != score.shape[1]:
                raise UsageError(f"y_score has {score.shape[1]} columns but there are "
                                 f"{len(names)} classes ({', '.join(names)})",
                                 hint="pass classes= naming the class of each column")
            columns.update({SCORE_PREFIX + c: score[:, j] for j, c in enumerate(names)})
        else:
            columns["y_score"] = score
    if ids is not None:
        columns["id"] = np.asarray(ids)
    if weight is not None:
        columns["weight"] = np.asarray(weight)
    for name, values in (slices or {}).items():
        columns[name] = np.asarray(values)
    return from_frame(pd.DataFrame(columns), source, task)
