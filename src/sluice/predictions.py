"""Per-example predictions written by an evaluate stage: reading, validating and pairing.

An evaluate stage writes one row per test example, as CSV, Parquet or JSON lines:

- ``y_true``: the label (classification) or target (regression);
- ``y_pred`` (a predicted label or value) and/or ``y_score`` (binary: the score of the
  positive class) or one ``score_<class>`` column per class (multiclass probabilities);
- optional ``id`` (to pair candidate and baseline example by example) and ``weight``;
- every other column is a *slice* column (metrics can be broken down by its values).

sluice computes every metric itself from these rows, so a candidate and the production
baseline can be compared on the *same* examples (``align``). Labels are kept as integer
codes into ``Predictions.classes`` (strings, in numeric order when every label is a
number); for binary predictions code 1 is the positive class, the greater of the two
labels (``1``, ``True``, ``yes`` over ``no``...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
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
_NEGATIVE_OF = {"1": "0", "True": "False"}  # a single seen label: the missing half of a pair
_POSITIVE_OF = {"0": "1", "False": "True", "-1": "1"}


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

    @classmethod
    def from_arrays(cls, y_true: npt.ArrayLike, y_pred: npt.ArrayLike | None = None,
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
                seen = {_label_name(v) for v in columns["y_true"]}
                names = ([_label_name(c) for c in classes] if classes is not None
                         else list(_order_labels(seen)))
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
        return _from_frame(pd.DataFrame(columns), source, task)


def read_predictions(path: str | Path, *, task: Task | None = None) -> Predictions:
    """Read and validate one predictions file (``.csv``, ``.parquet``/``.pq``, ``.jsonl``).

    ``task`` overrides the detection: score columns mean classification, otherwise a
    numeric ``y_true`` or ``y_pred`` with non-whole values means regression.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UsageError(f"`{path}` is not a predictions file sluice can read",
                         hint="write predictions as .csv, .parquet, .pq, .jsonl or .ndjson")
    if not path.is_file():
        raise UsageError(f"predictions file `{path}` does not exist",
                         hint="check that the evaluate stage writes it (and declares it in outs)")
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]

    try:
        if fmt == "csv":
            frame = pd.read_csv(path, dtype={"id": str})
        elif fmt == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_json(path, lines=True, dtype={"id": str}, precise_float=True)
    except pd.errors.EmptyDataError:
        raise UsageError(f"predictions file `{path}` is empty",
                         hint="the evaluate stage must write a header and one row per example") \
            from None
    except (ValueError, OSError, ImportError) as error:  # parser, Arrow and JSON errors
        raise UsageError(f"`{path}` is not a readable {fmt} file: {error}",
                         hint="fix the file, or give it the extension of its format") from None
    return _from_frame(frame, str(path), task)


# --------------------------------------------------------------------------- labels


def _label_name(value: object) -> str:
    """The canonical text of one label: ``1``, ``1.0`` and ``"1"`` all name class "1"."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        f = float(value)
        return str(int(f)) if f.is_integer() else repr(f)
    return str(value)


def _order_labels(labels: set[str] | Sequence[str]) -> tuple[str, ...]:
    """Numeric order when every label is a number, else text order."""
    try:
        return tuple(sorted(set(labels), key=float))
    except ValueError:
        return tuple(sorted(set(labels)))


def _rows(mask: npt.NDArray[np.bool_]) -> str:
    where = np.flatnonzero(mask)
    shown = ", ".join(str(i + 1) for i in where[:5])
    more = f" and {len(where) - 5} more" if len(where) > 5 else ""
    return f"row{'s' if len(where) > 1 else ''} {shown}{more} (counting data rows from 1)"


def _labels(frame: Any, column: str, source: str) -> tuple[IntArray, list[str]]:
    """Factorise a label column: codes into the returned (unordered) label names."""
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]

    codes, uniques = pd.factorize(frame[column], use_na_sentinel=True)
    if (codes < 0).any():
        raise UsageError(f"`{column}` is missing in {_rows(codes < 0)} of `{source}`",
                         hint=f"every example needs a {column}")
    return codes.astype(np.int64), [_label_name(u) for u in uniques]


def _slice_values(frame: Any, column: str) -> ObjArray:
    """A slice column as text; a missing value is its own slice, "(missing)"."""
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]

    codes, uniques = pd.factorize(frame[column], use_na_sentinel=True)
    names = [_label_name(u) for u in uniques] + ["(missing)"]
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
                         f"{_rows(bad.to_numpy())}", hint=f"{column} must hold {what}") from None
    finite = np.isfinite(values)
    if not finite.all():
        kind = "NaN (missing)" if np.isnan(values).any() else "infinite"
        raise UsageError(f"`{column}` in `{source}` has {kind} values in {_rows(~finite)}",
                         hint=f"{column} must hold finite {what} for every example")
    return values


def _is_numeric(frame: Any, column: str) -> bool:
    return frame[column].dtype.kind in "iuf"


def _whole(values: FloatArray) -> bool:
    return bool(np.all(values == np.round(values)))


# --------------------------------------------------------------------------- frames


def _from_frame(frame: Any, source: str, task: Task | None) -> Predictions:
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    if not columns:
        raise UsageError(f"predictions file `{source}` is empty",
                         hint="the evaluate stage must write a header and one row per example")
    if "y_true" not in columns:
        import difflib

        close = difflib.get_close_matches("y_true", columns, n=1)
        raise UsageError(f"`{source}` has no `y_true` column; its columns are: "
                         f"{', '.join(columns[:30])}",
                         hint=(f"did you mean `{close[0]}`? " if close else "")
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
            raise UsageError(f"`weight` in `{source}` is negative in {_rows(weight < 0)}"
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
        classes = _order_labels(names)
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
                                 f"{_rows(outside)}",
                                 hint="score_<class> columns hold probabilities")
        score = matrix if len(classes) > 2 else matrix[:, 1]
        task = "multiclass" if len(classes) > 2 else "binary"
        probabilities = True
    else:
        classes = _order_labels(seen)
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
                         f"({baseline.source}) disagree on y_true in {_rows(~same)}"
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

