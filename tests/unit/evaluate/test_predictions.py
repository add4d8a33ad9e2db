"""sluice.evaluate.predictions: reading the three formats, task detection, validation, pairing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]
import pytest

from sluice.errors import UsageError
from sluice.evaluate.predictions import read_predictions
from sluice.stats.prediction_columns import from_arrays
from sluice.stats.predictions import align, slice_groups


def write(path: Path, frame: pd.DataFrame) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in frame.to_dict("records")))
    return path


BINARY = pd.DataFrame({"id": ["a", "b", "c", "d"], "y_true": [0, 1, 1, 0],
                       "y_pred": [0, 1, 0, 0], "y_score": [0.1, 0.9, 0.4, 0.3],
                       "weight": [1.0, 2.0, 1.0, 0.5], "region": ["eu", "us", "eu", None]})


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_reads_every_format_the_same_way(tmp_path: Path, suffix: str) -> None:
    preds = read_predictions(write(tmp_path / f"p{suffix}", BINARY))
    assert preds.task == "binary" and preds.classes == ("0", "1")
    assert preds.y_true.tolist() == [0, 1, 1, 0] and preds.y_pred is not None
    assert preds.y_pred.tolist() == [0, 1, 0, 0]
    assert preds.y_score is not None and preds.y_score.tolist() == [0.1, 0.9, 0.4, 0.3]
    assert preds.ids is not None and preds.ids.tolist() == ["a", "b", "c", "d"]
    assert preds.weight is not None and preds.weight.tolist() == [1.0, 2.0, 1.0, 0.5]
    assert preds.slices["region"].tolist() == ["eu", "us", "eu", "(missing)"]
    assert preds.scores_are_probabilities
    assert list(slice_groups(preds, "region")) == ["(missing)", "eu", "us"]


def test_multiclass_score_columns_and_label_order(tmp_path: Path) -> None:
    frame = pd.DataFrame({"y_true": [2, 10, 1, 2], "score_1": [0.2, 0.1, 0.7, 0.3],
                          "score_2": [0.5, 0.1, 0.2, 0.4], "score_10": [0.3, 0.8, 0.1, 0.3]})
    preds = read_predictions(write(tmp_path / "m.csv", frame))
    assert preds.task == "multiclass" and preds.classes == ("1", "2", "10")  # numeric order
    assert preds.y_true.tolist() == [1, 2, 0, 1]
    assert preds.y_score is not None and preds.y_score[1].tolist() == [0.1, 0.1, 0.8]
    labels = preds.predicted_labels()
    assert labels is not None and labels.tolist() == [1, 2, 0, 1]  # arg-max of probabilities


def test_two_score_columns_are_binary_with_the_greater_label_positive() -> None:
    preds = from_arrays(["no", "yes", "yes"], y_score=[[0.8, 0.2], [0.3, 0.7],
                                                                   [0.6, 0.4]])
    assert preds.task == "binary" and preds.classes == ("no", "yes")
    assert preds.y_score is not None and preds.y_score.tolist() == [0.2, 0.7, 0.4]


def test_task_detection_and_override() -> None:
    assert from_arrays([1.5, 2.0], [1.4, 2.2]).task == "regression"
    assert from_arrays([1.0, 0.0], [1.0, 1.0]).task == "binary"
    assert from_arrays([1, 2, 3], [1, 2, 2]).task == "multiclass"
    assert from_arrays([1, 2, 3], [1, 2, 2], task="regression").task == "regression"
    only_negatives = from_arrays([0, 0], y_score=[0.2, 0.4])
    assert only_negatives.classes == ("0", "1")
    assert from_arrays([True, False], [True, True]).classes == ("False", "True")


def test_decision_scores_are_kept_but_not_probabilities() -> None:
    preds = from_arrays([0, 1], y_score=[-2.5, 3.0])
    assert not preds.scores_are_probabilities and preds.predicted_labels() is None


@pytest.mark.parametrize(("frame", "message"), [
    (pd.DataFrame({"ytrue": [1], "y_pred": [1]}), "no `y_true` column"),
    (pd.DataFrame({"y_true": [1], "other": [1]}), "no prediction column"),
    (pd.DataFrame({"y_true": [0, 1], "y_score": [0.2, np.nan]}), "`y_score` in .* NaN .* row 2"),
    (pd.DataFrame({"y_true": [0, 1], "y_score": [np.inf, 0.3]}), "infinite values in row 1"),
    (pd.DataFrame({"y_true": [0, 1, 2], "score_0": [0.2, 1.2, 0.1], "score_1": [0.8, 0.1, 0.1],
                   "score_2": [0, 0, 0.8]}), "`score_0` .* outside \\[0, 1\\] in row 2"),
    (pd.DataFrame({"y_true": [0, 1, 2], "y_score": [0.1, 0.2, 0.3]}), "3 labels"),
    (pd.DataFrame({"y_true": [0, 1], "score_1": [0.1, 0.2]}), "single score column"),
    (pd.DataFrame({"y_true": [0, 1], "y_pred": [0, 1], "id": ["a", "a"]}), "repeats ids: a"),
    (pd.DataFrame({"y_true": [0, 1], "y_pred": [0, 1], "weight": [1, -1]}), "negative in row 2"),
    (pd.DataFrame({"y_true": [0, 1], "y_score": ["0.1", "x"]}), "non-numeric values in row 2"),
    (pd.DataFrame({"y_true": [0, None], "y_pred": [0, 1]}), "`y_true` is missing in row 2"),
    (pd.DataFrame({"y_true": [0, 2], "score_0": [0.5, 0.5], "score_1": [0.5, 0.5],
                   "score_3": [0, 0]}), "labels without a score column: 2"),
    (pd.DataFrame({"y_true": pd.Series([], dtype=int), "y_pred": pd.Series([], dtype=int)}),
     "has no rows"),
])
def test_invalid_files_name_the_file_and_column(tmp_path: Path, frame: pd.DataFrame,
                                                message: str) -> None:
    path = write(tmp_path / "bad.csv", frame)
    with pytest.raises(UsageError, match=message) as caught:
        read_predictions(path)
    assert str(path) in caught.value.message


def test_did_you_mean_for_y_true(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", pd.DataFrame({"ytrue": [1], "y_pred": [1]}))
    with pytest.raises(UsageError) as caught:
        read_predictions(path)
    assert caught.value.hint is not None and "did you mean `ytrue`" in caught.value.hint


def test_empty_unknown_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(UsageError, match="is empty"):
        read_predictions(empty)
    with pytest.raises(UsageError, match="not a predictions file"):
        read_predictions(tmp_path / "p.txt")
    with pytest.raises(UsageError, match="does not exist"):
        read_predictions(tmp_path / "nope.csv")
    blank = tmp_path / "blank.jsonl"
    blank.write_text("")
    with pytest.raises(UsageError, match="is empty"):
        read_predictions(blank)


# --------------------------------------------------------------------------- align


def test_align_by_id_reorders_the_baseline() -> None:
    cand = from_arrays([0, 1, 1], y_score=[0.1, 0.8, 0.7], ids=["a", "b", "c"])
    base = from_arrays([1, 0, 1], y_score=[0.6, 0.3, 0.9], ids=["c", "a", "b"])
    c, b = align(cand, base)
    assert b.ids is not None and b.ids.tolist() == ["a", "b", "c"]
    assert b.y_score is not None and b.y_score.tolist() == [0.3, 0.9, 0.6]
    assert (c.y_true == b.y_true).all()


def test_align_lists_ids_missing_on_either_side() -> None:
    cand = from_arrays([0, 1, 1], [0, 1, 1], ids=["a", "b", "x"])
    base = from_arrays([0, 1, 1], [0, 1, 1], ids=["a", "b", "y"])
    with pytest.raises(UsageError, match=r"1 ids missing from the baseline .*: x; 1 ids "
                       r"missing from the candidate .*: y"):
        align(cand, base)


def test_align_by_position_needs_equal_lengths() -> None:
    with pytest.raises(UsageError, match=r"3 examples .* but the baseline has 2") as caught:
        align(from_arrays([0, 1, 1], [0, 1, 1]),
              from_arrays([0, 1], [0, 1]))
    assert caught.value.hint is not None and "id" in caught.value.hint


def test_align_checks_y_true_weights_tasks_and_labels() -> None:
    with pytest.raises(UsageError, match=r"disagree on y_true in row 2"):
        align(from_arrays([0, 1], [0, 1]), from_arrays([0, 0], [0, 1]))
    with pytest.raises(UsageError, match="different weights"):
        align(from_arrays([0, 1], [0, 1], weight=[1, 2]),
              from_arrays([0, 1], [0, 1], weight=[1, 3]))
    with pytest.raises(UsageError, match="regression but the baseline"):
        align(from_arrays([0.5, 1.5], [0.5, 1.0]),
              from_arrays([0, 1], [0, 1]))
    with pytest.raises(UsageError, match=r"labels the baseline .* never saw: c"):
        align(from_arrays(["a", "b", "b"], ["a", "c", "c"]),
              from_arrays(["a", "b", "b"], ["a", "b", "b"]))


def test_align_recodes_labels_and_shares_weights() -> None:
    cand = from_arrays(["a", "b", "b"], ["a", "a", "b"], weight=[1, 2, 3])
    base = from_arrays(["a", "b", "b"], ["c", "b", "b"])  # the baseline knows "c"
    c, b = align(cand, base)
    assert c.classes == b.classes == ("a", "b", "c")
    assert c.y_pred is not None and c.y_pred.tolist() == [0, 0, 1]
    assert b.weight is not None and b.weight.tolist() == [1, 2, 3]
