"""Streaming drift sketches: exactness when small, the documented rank-error bound, chunking
invariance, merging, missing values and (de)serialisation."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest

from sluice.errors import DataInvalid
from sluice.stats.sketch import (
    OTHER,
    CategoryCounts,
    ColumnSketch,
    DatasetSketch,
    Moments,
    QuantileSketch,
)


def _chunks(frame: pd.DataFrame, pieces: int, seed: int) -> list[pd.DataFrame]:
    """``frame`` cut into ``pieces`` uneven chunks (some may be empty)."""
    cuts = np.sort(np.random.default_rng(seed).integers(0, len(frame), pieces - 1))
    bounds = [0, *cuts.tolist(), len(frame)]
    return [frame.iloc[a:b] for a, b in itertools.pairwise(bounds)]


def _max_cdf_error(sketch: QuantileSketch, data: np.ndarray) -> float:
    values, weights = sketch.weighted()
    cumulative = np.concatenate(([0.0], np.cumsum(weights)))
    points = np.unique(data)
    estimated = cumulative[np.searchsorted(values, points, side="right")] / sketch.count
    exact = np.searchsorted(np.sort(data), points, side="right") / data.size
    return float(np.max(np.abs(estimated - exact)))


def test_quantile_sketch_is_exact_below_its_size() -> None:
    data = np.random.default_rng(0).normal(size=500)
    sketch = QuantileSketch(k=1024)
    sketch.update(data)
    values, weights = sketch.weighted()
    assert np.array_equal(values, np.sort(data))
    assert np.all(weights == 1)
    assert sketch.rank_error == 0.0


@pytest.mark.parametrize("k", [64, 256])
def test_rank_error_stays_within_the_reported_bound(k: int) -> None:
    data = np.random.default_rng(1).lognormal(size=60_000)
    sketch = QuantileSketch(k=k)
    for chunk in np.array_split(data, 7):
        sketch.update(chunk)
    levels = len(sketch.levels)
    assert sketch.weighted()[1].sum() == data.size  # compaction keeps the total weight
    assert 0 < sketch.rank_error <= levels / k  # the documented bound
    assert _max_cdf_error(sketch, data) <= sketch.rank_error
    assert sum(items.size for items in sketch.levels) < k * levels  # bounded memory


def test_quantile_sketch_does_not_depend_on_chunk_boundaries() -> None:
    data = np.random.default_rng(2).normal(size=30_000)
    whole, pieces = QuantileSketch(k=128), QuantileSketch(k=128)
    whole.update(data)
    for chunk in _chunks(pd.DataFrame({"x": data}), 37, seed=3):
        pieces.update(chunk["x"].to_numpy())
    assert len(whole.levels) == len(pieces.levels) > 3
    for mine, theirs in zip(whole.levels, pieces.levels, strict=True):
        assert np.array_equal(mine, theirs)
    assert whole.error_weight == pieces.error_weight


def test_merged_quantile_sketches_cover_both_partitions() -> None:
    rng = np.random.default_rng(4)
    left, right = rng.normal(size=20_000), rng.exponential(size=13_000) + 1
    a, b = QuantileSketch(k=128), QuantileSketch(k=128)
    a.update(left)
    b.update(right)
    a.merge(b)
    both = np.concatenate((left, right))
    assert a.count == both.size and a.weighted()[1].sum() == both.size
    assert _max_cdf_error(a, both) <= a.rank_error < 0.1
    with pytest.raises(ValueError, match="cannot merge"):
        a.merge(QuantileSketch(k=64))


def test_moments_merge_exactly_and_stably() -> None:
    data = 1e9 + np.random.default_rng(5).normal(size=10_000)  # large offset, small spread
    merged = Moments()
    for chunk in np.array_split(data, 9):
        part = Moments()
        part.update(chunk)
        merged.merge(part)
    assert merged.count == data.size
    assert merged.mean == pytest.approx(data.mean(), rel=1e-12)
    assert merged.std == pytest.approx(data.std(), rel=1e-6)
    assert (merged.min, merged.max) == (data.min(), data.max())


def test_categories_beyond_the_limit_fold_into_other_in_order_of_appearance() -> None:
    values = pd.Series(list("abacdeafb"))
    whole = CategoryCounts(limit=3)
    whole.update(values)
    assert whole.counts == {"a": 3, "b": 2, "c": 1} and whole.other == 3
    assert whole.frequencies()[OTHER] == 3
    chunked = CategoryCounts(limit=3)
    for start in range(0, len(values), 2):
        chunked.update(values.iloc[start:start + 2])
    assert chunked.counts == whole.counts and chunked.other == whole.other
    merged = CategoryCounts(limit=3)
    merged.update(values.iloc[:4])
    tail = CategoryCounts(limit=3)
    tail.update(values.iloc[4:])
    merged.merge(tail)
    assert sum(merged.frequencies().values()) == len(values)


def test_missing_values_of_every_kind_are_counted_and_left_out() -> None:
    cases = {
        "float": pd.Series([1.0, np.nan, np.inf, -np.inf, 2.0]),
        "nullable_int": pd.Series([1, None, 3, None, 5], dtype="Int64"),
        "text": pd.Series(["a", None, np.nan, "b", "a"], dtype=object),
        "time": pd.Series(pd.to_datetime(["2024-01-01", None, "2024-01-03", None, None])),
    }
    expected_missing = {"float": 3, "nullable_int": 2, "text": 2, "time": 3}
    for name, series in cases.items():
        sketch = ColumnSketch(name)
        sketch.update(series)
        assert (sketch.rows, sketch.missing) == (5, expected_missing[name]), name
        assert sketch.count == 5 - expected_missing[name]
    text = ColumnSketch("text")
    text.update(cases["text"])
    assert text.kind == "categorical" and text.categories.counts == {"a": 2, "b": 1}


def test_datetimes_are_epoch_nanoseconds_whatever_the_time_zone() -> None:
    naive = pd.Series(pd.to_datetime(["2024-01-01 00:00", "2024-06-01 12:00"]))
    aware = naive.dt.tz_localize("UTC").dt.tz_convert("Europe/Paris")
    seconds = naive.astype("datetime64[s]")
    sketches = []
    for series in (naive, aware, seconds):
        sketch = ColumnSketch("t")
        sketch.update(series)
        sketches.append(sketch)
        assert sketch.kind == "datetime"
    expected = naive.to_numpy().astype("datetime64[ns]").astype("int64").astype(float)
    for sketch in sketches:
        assert np.array_equal(sketch.quantiles.weighted()[0], expected)
    durations = ColumnSketch("d")
    durations.update(pd.Series(pd.to_timedelta([1, None, 3], unit="s")))
    assert durations.kind == "numeric" and durations.missing == 1
    assert np.array_equal(durations.quantiles.weighted()[0], [1e9, 3e9])


def test_a_column_whose_type_changes_midway_is_reported_with_its_row() -> None:
    sketch = DatasetSketch()
    sketch.update(pd.DataFrame({"age": [30, 40]}))
    sketch.update(pd.DataFrame({"age": [None, None]}))  # all missing: no type, no conflict
    with pytest.raises(DataInvalid, match=r"'age' holds numeric .* from row 4") as caught:
        sketch.update(pd.DataFrame({"age": ["thirty"]}))
    assert caught.value.hint and "one type" in caught.value.hint


def test_columns_absent_from_some_chunks_count_as_missing_there() -> None:
    sketch = DatasetSketch.from_chunks([pd.DataFrame({"a": [1.0, 2.0]}),
                                        pd.DataFrame({"a": [3.0], "b": ["x"]}),
                                        pd.DataFrame({"b": ["y", "z"]})])
    assert sketch.rows == 5
    assert (sketch.columns["a"].rows, sketch.columns["a"].missing) == (5, 2)
    assert (sketch.columns["b"].rows, sketch.columns["b"].missing) == (5, 2)
    other = DatasetSketch.from_chunks([pd.DataFrame({"c": [1.0]})])
    sketch.merge(other)
    assert sketch.rows == 6 and sketch.columns["a"].missing == 3
    assert sketch.columns["c"].missing == 5 and sketch.columns["c"].count == 1


def test_duplicate_column_names_are_refused() -> None:
    frame = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(DataInvalid, match="several columns named a"):
        DatasetSketch().update(frame)


def test_a_sketch_survives_json_round_trip() -> None:
    rng = np.random.default_rng(6)
    frame = pd.DataFrame({"x": rng.normal(size=5_000), "c": rng.choice(list("abc"), 5_000),
                          "e": np.nan})
    sketch = DatasetSketch.from_chunks([frame], sketch_size=256, max_categories=2)
    copy = DatasetSketch.from_dict(json.loads(json.dumps(sketch.to_dict())))
    assert copy.rows == sketch.rows and list(copy.columns) == list(sketch.columns)
    for name, column in sketch.columns.items():
        twin = copy.columns[name]
        assert (twin.kind, twin.rows, twin.missing) == (column.kind, column.rows, column.missing)
        for mine, theirs in zip(column.quantiles.levels, twin.quantiles.levels, strict=True):
            assert np.array_equal(mine, theirs)
        assert twin.categories.frequencies() == column.categories.frequencies()
        assert twin.moments.std == column.moments.std or math.isnan(column.moments.std)
    with pytest.raises(DataInvalid, match="version"):
        DatasetSketch.from_dict({"version": 99})


def test_columns_summarised_in_parallel_give_the_same_sketch() -> None:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"x": rng.normal(size=120_000), "y": rng.exponential(size=120_000),
                          "c": rng.choice(list("abcd"), 120_000)})
    chunks = _chunks(frame, 3, seed=8)
    serial = DatasetSketch.from_chunks(chunks, sketch_size=512, workers=1)
    parallel = DatasetSketch.from_chunks(chunks, sketch_size=512, workers=3)
    assert json.dumps(parallel.to_dict()) == json.dumps(serial.to_dict())
    with pytest.raises(DataInvalid, match="'y' holds numeric"):
        DatasetSketch.from_chunks([frame, frame.assign(y="text")], workers=3)
