"""Streaming, mergeable summaries of a dataset's columns for drift detection.

Data larger than memory is summarised chunk by chunk (``DatasetSketch.update``) in
memory that does not grow with the number of rows:

- numeric and datetime columns: a quantile sketch (``QuantileSketch``, a compactor
  hierarchy in the style of KLL/MRL) plus exact count, mean, variance, min and max;
- other columns (text, category, bool): a count per category, the first
  ``max_categories`` distinct values seen; later new values are folded into ``<other>``;
- every column: rows and missing values (NaN, None, NaT, ±inf).

Every summary has ``merge()`` so sketches of partitions or chunks combine. Feeding the
same rows in the same order gives the same sketch whatever the chunk boundaries: the
quantile sketch compacts at fixed positions of its input stream, and categories are
admitted in order of first appearance.

Longer than most modules (about 440 lines) on purpose: the quantile, moment and
category sketches, the column and dataset sketches that merge them and their
serialised form change together (a stored sketch must still merge after an upgrade).
"""

from __future__ import annotations

import base64
import contextlib
import math
import os
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt

from sluice.errors import DataInvalid

FloatArray = npt.NDArray[np.float64]

DEFAULT_SKETCH_SIZE = 8192  # items per level: rank error <= levels / 8192 (about 0.1 %)
DEFAULT_MAX_CATEGORIES = 10_000
OTHER = "<other>"
PARALLEL_ROWS = 50_000  # smaller chunks: threads cost more than they save
SKETCH_VERSION = 1

NUMERIC, DATETIME, CATEGORICAL = "numeric", "datetime", "categorical"


class QuantileSketch:
    """Approximate distribution of a stream of numbers, in ``O(k log(n/k))`` memory.

    Level ``h`` holds items of weight ``2**h``. When a level reaches ``k`` items they
    are sorted and every other one (alternating which) moves up with twice the
    weight. One such compaction moves any rank by at most the item weight, so the
    absolute rank error is at most ``error_weight`` (the sum of the weights of all
    compactions), which is <= n * levels / k. Below ``k`` items the sketch is exact.
    """

    def __init__(self, k: int = DEFAULT_SKETCH_SIZE) -> None:
        if k < 2 or k % 2:
            raise ValueError(f"sketch size must be an even number >= 2, not {k}")
        self.k = k
        self.count = 0
        self.error_weight = 0.0
        self.levels: list[FloatArray] = []
        self.compactions: list[int] = []

    def update(self, values: npt.ArrayLike) -> None:
        """Add finite numbers (the caller drops missing values)."""
        array = np.array(values, dtype=np.float64).ravel()  # a copy we may sort in place
        self._add_owned(array)

    def _add_owned(self, array: FloatArray) -> None:
        if array.size:
            self.count += int(array.size)
            self._push(0, array)

    def merge(self, other: QuantileSketch) -> None:
        """Add everything ``other`` summarised (``other`` is left unchanged)."""
        if other.k != self.k:
            raise ValueError(f"cannot merge sketches of size {self.k} and {other.k}")
        self.count += other.count
        self.error_weight += other.error_weight
        for level, items in enumerate(other.levels):
            self._ensure(level)
            self.compactions[level] += other.compactions[level]
            if items.size:
                self._push(level, items.copy())

    @property
    def rank_error(self) -> float:
        """Bound on |estimated - true| fraction of values <= x, for every x."""
        return self.error_weight / self.count if self.count else 0.0

    def weighted(self) -> tuple[FloatArray, FloatArray]:
        """The retained items, sorted, and their weights (which sum to ``count``)."""
        if not self.levels:
            return np.empty(0), np.empty(0)
        values = np.concatenate(self.levels)
        weights = np.concatenate([np.full(items.size, 2.0 ** level)
                                  for level, items in enumerate(self.levels)])
        order = np.argsort(values, kind="stable")
        return values[order], weights[order]

    def _ensure(self, level: int) -> None:
        while len(self.levels) <= level:
            self.levels.append(np.empty(0))
            self.compactions.append(0)

    def _push(self, level: int, values: FloatArray) -> None:
        """Append ``values`` (an array this sketch owns) to ``level``, compacting full blocks.

        Blocks sit at fixed positions of each level's input stream, whatever the chunks.
        """
        k = self.k
        while values.size:
            self._ensure(level)
            promoted: list[FloatArray] = []
            held = self.levels[level]
            if held.size:  # complete the partial block first, without copying the rest
                take = min(k - held.size, values.size)
                held, values = np.concatenate((held, values[:take])), values[take:]
                if held.size < k:
                    self.levels[level] = held
                    return
                promoted.append(self._compact(level, held.reshape(1, k)))
            blocks = values.size // k
            if blocks:
                promoted.append(self._compact(level, values[: blocks * k].reshape(blocks, k)))
            self.levels[level] = values[blocks * k:].copy()
            level += 1
            values = np.concatenate(promoted) if promoted else np.empty(0)

    def _compact(self, level: int, blocks: FloatArray) -> FloatArray:
        """Sort each row of ``blocks`` in place and keep every other item (alternating)."""
        count, k = blocks.shape
        # Above level 0 a block is two sorted runs (two promoted halves): the stable sort
        # (timsort) merges them in linear time.
        blocks.sort(axis=1, kind="stable" if level else "quicksort")
        first = self.compactions[level] % 2  # the first row of even parity
        kept: FloatArray = np.empty((count, k // 2))
        kept[first::2] = blocks[first::2, 0::2]
        kept[1 - first::2] = blocks[1 - first::2, 1::2]
        self.compactions[level] += count
        self.error_weight += count * 2.0 ** level
        return kept.ravel()


class Moments:
    """Exact count, mean, sum of squared deviations (Chan's parallel merge), min, max."""

    def __init__(self) -> None:
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = math.inf
        self.max = -math.inf

    def update(self, values: FloatArray) -> None:
        if values.size:
            chunk = Moments()
            chunk.count = int(values.size)
            chunk.mean = float(values.mean())
            chunk.m2 = float(np.square(values - chunk.mean).sum())
            chunk.min, chunk.max = float(values.min()), float(values.max())
            self.merge(chunk)

    def merge(self, other: Moments) -> None:
        if other.count == 0:
            return
        total = self.count + other.count
        delta = other.mean - self.mean
        self.mean += delta * other.count / total
        self.m2 += other.m2 + delta * delta * self.count * other.count / total
        self.count = total
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)

    @property
    def std(self) -> float:
        """Population standard deviation (0 for fewer than two values)."""
        return math.sqrt(max(self.m2, 0.0) / self.count) if self.count > 1 else 0.0


class CategoryCounts:
    """Count per category; beyond ``limit`` distinct values, new ones count as ``<other>``."""

    def __init__(self, limit: int = DEFAULT_MAX_CATEGORIES) -> None:
        self.limit = limit
        self.counts: dict[str, int] = {}
        self.other = 0

    def update(self, values: Any) -> None:
        """Add a pandas Series without missing values."""
        import pandas as pd  # type: ignore[import-untyped, unused-ignore]

        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
        # Order of first appearance: which categories fit under the limit then depends only
        # on the order of the rows, not on how they are cut into chunks.
        self._add(pd.Index(uniques).astype(str).tolist(), counts.tolist())

    def merge(self, other: CategoryCounts) -> None:
        self._add(list(other.counts), list(other.counts.values()))
        self.other += other.other

    def frequencies(self) -> dict[str, int]:
        """Counts including ``<other>`` when something was folded into it."""
        return {**self.counts, OTHER: self.other} if self.other else dict(self.counts)

    def _add(self, keys: list[str], counts: list[int]) -> None:
        for key, count in zip(keys, counts, strict=True):
            if count == 0:
                continue
            if key in self.counts:
                self.counts[key] += count
            elif len(self.counts) < self.limit:
                self.counts[key] = count
            else:
                self.other += count


def kind_of(dtype: Any) -> str:
    """How a pandas dtype is compared: numeric (durations as ns), datetime (as epoch ns)
    or categorical."""
    from pandas.api import types  # type: ignore[import-untyped, unused-ignore]

    if types.is_bool_dtype(dtype):
        return CATEGORICAL
    if types.is_datetime64_any_dtype(dtype):
        return DATETIME
    if types.is_timedelta64_dtype(dtype):
        return NUMERIC
    if types.is_numeric_dtype(dtype) and not types.is_complex_dtype(dtype):
        return NUMERIC
    return CATEGORICAL


def _as_float(series: Any) -> FloatArray:
    """Numbers of a numeric, datetime or duration Series; missing values become NaN."""
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]

    is_duration = pd.api.types.is_timedelta64_dtype(series.dtype)
    if is_duration or pd.api.types.is_datetime64_any_dtype(series.dtype):
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        raw = series.to_numpy(dtype="timedelta64[ns]" if is_duration else "datetime64[ns]")
        numbers: FloatArray = raw.view(np.int64).astype(np.float64)
        numbers[np.isnat(raw)] = np.nan
        return numbers
    values: FloatArray = np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan),
                                    dtype=np.float64)
    return values


class ColumnSketch:
    """Everything drift needs to know about one column, in bounded memory."""

    def __init__(self, name: str, *, sketch_size: int = DEFAULT_SKETCH_SIZE,
                 max_categories: int = DEFAULT_MAX_CATEGORIES) -> None:
        self.name = name
        self.kind: str | None = None  # None until a chunk has a non-missing value
        self.dtype = ""  # the pandas dtype that decided the kind, for messages
        self.rows = 0
        self.missing = 0
        self.moments = Moments()
        self.quantiles = QuantileSketch(sketch_size)
        self.categories = CategoryCounts(max_categories)

    @property
    def count(self) -> int:
        """Non-missing values."""
        return self.rows - self.missing

    def add_missing(self, rows: int) -> None:
        """Rows in which the column does not appear at all (e.g. a key absent in JSON)."""
        self.rows += rows
        self.missing += rows

    def update(self, series: Any, first_row: int = 0) -> None:
        """Add one chunk of the column (a pandas Series); ``first_row`` is for messages."""
        kind = kind_of(series.dtype)
        self.rows += len(series)
        if kind == CATEGORICAL:
            present = series[series.notna().to_numpy()]
            self.missing += len(series) - len(present)
            if len(present):
                self._set_kind(kind, str(series.dtype), first_row)
                self.categories.update(present)
            return
        numbers = _as_float(series)
        finite = numbers[np.isfinite(numbers)]
        self.missing += int(numbers.size - finite.size)
        if finite.size:
            self._set_kind(kind, str(series.dtype), first_row)
            self.moments.update(finite)
            self.quantiles._add_owned(finite)  # a fresh array already: no copy

    def merge(self, other: ColumnSketch) -> None:
        if other.kind is not None:
            self._set_kind(other.kind, other.dtype, None)
        self.rows += other.rows
        self.missing += other.missing
        self.moments.merge(other.moments)
        self.quantiles.merge(other.quantiles)
        self.categories.merge(other.categories)

    def _set_kind(self, kind: str, dtype: str, first_row: int | None) -> None:
        if self.kind is None:
            self.kind, self.dtype = kind, dtype
        elif self.kind != kind:
            where = f" from row {first_row}" if first_row is not None else " in another part"
            raise DataInvalid(
                f"column {self.name!r} holds {self.kind} values ({self.dtype}) but "
                f"{kind} values ({dtype}){where}",
                hint="give the column one type throughout the data (clean the odd values, or "
                     "declare its dtype in the dataset's schema) so drift compares like "
                     "with like")


class DatasetSketch:
    """Column sketches of a whole dataset, built from an iterable of DataFrame chunks."""

    def __init__(self, *, sketch_size: int = DEFAULT_SKETCH_SIZE,
                 max_categories: int = DEFAULT_MAX_CATEGORIES) -> None:
        self.sketch_size = sketch_size
        self.max_categories = max_categories
        self.rows = 0
        self.columns: dict[str, ColumnSketch] = {}

    @classmethod
    def from_chunks(cls, chunks: Any, *, sketch_size: int = DEFAULT_SKETCH_SIZE,
                    max_categories: int = DEFAULT_MAX_CATEGORIES,
                    workers: int | None = None) -> DatasetSketch:
        """Stream ``chunks`` (an iterable of pandas DataFrames) once.

        Columns of a chunk are summarised by up to ``workers`` threads (default: the CPU
        count, at most 8); numpy sorts without the GIL. The result is the same.
        """
        sketch = cls(sketch_size=sketch_size, max_categories=max_categories)
        workers = workers or min(os.cpu_count() or 1, 8)
        with ThreadPoolExecutor(workers) if workers > 1 else contextlib.nullcontext() as pool:
            for chunk in chunks:
                sketch.update(chunk, pool)
        return sketch

    def update(self, frame: Any, pool: Executor | None = None) -> None:
        """Add one DataFrame chunk (its columns in parallel on ``pool`` if it is large)."""
        names = [str(name) for name in frame.columns]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise DataInvalid(f"the data has several columns named {', '.join(duplicates)}",
                              hint="give every column a distinct name")
        rows = len(frame)
        work = []
        for name, column in zip(names, frame.columns, strict=True):
            sketch = self.columns.get(name)
            if sketch is None:
                sketch = self.columns[name] = self._new_column(name)
                sketch.add_missing(self.rows)  # absent from the rows seen so far
            work.append((sketch, frame[column]))
        first_row = self.rows
        if pool is not None and len(work) > 1 and rows >= PARALLEL_ROWS:
            # list() waits for every column and re-raises the first error in column order.
            list(pool.map(lambda item: item[0].update(item[1], first_row), work))
        else:
            for sketch, series in work:
                sketch.update(series, first_row)
        for name, sketch in self.columns.items():
            if name not in names:
                sketch.add_missing(rows)
        self.rows += rows

    def merge(self, other: DatasetSketch) -> None:
        """Add the rows ``other`` summarised (another partition of the same dataset)."""
        for name, theirs in other.columns.items():
            mine = self.columns.get(name)
            if mine is None:
                mine = self.columns[name] = self._new_column(name)
                mine.add_missing(self.rows)
            mine.merge(theirs)
        for name, mine in self.columns.items():
            if name not in other.columns:
                mine.add_missing(other.rows)
        self.rows += other.rows

    def _new_column(self, name: str) -> ColumnSketch:
        return ColumnSketch(name, sketch_size=self.sketch_size,
                            max_categories=self.max_categories)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (e.g. to cache a reference's sketch by its content hash)."""
        return {"version": SKETCH_VERSION, "sketch_size": self.sketch_size,
                "max_categories": self.max_categories, "rows": self.rows,
                "columns": [_column_to_dict(c) for c in self.columns.values()]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetSketch:
        if data.get("version") != SKETCH_VERSION:
            raise DataInvalid(f"unknown drift sketch version {data.get('version')!r}",
                              hint="delete the cached sketch so that it is computed again")
        sketch = cls(sketch_size=int(data["sketch_size"]),
                     max_categories=int(data["max_categories"]))
        sketch.rows = int(data["rows"])
        for item in data["columns"]:
            column = _column_from_dict(item, sketch)
            sketch.columns[column.name] = column
        return sketch


def _encode(values: FloatArray) -> str:
    return base64.b64encode(values.astype("<f8").tobytes()).decode("ascii")


def _decode(text: str) -> FloatArray:
    return np.frombuffer(base64.b64decode(text), dtype="<f8").astype(np.float64)


def _column_to_dict(column: ColumnSketch) -> dict[str, Any]:
    m, q, c = column.moments, column.quantiles, column.categories
    return {"name": column.name, "kind": column.kind, "dtype": column.dtype,
            "rows": column.rows, "missing": column.missing,
            "moments": [m.count, m.mean, m.m2, m.min, m.max] if m.count else None,
            "quantiles": {"count": q.count, "error_weight": q.error_weight,
                          "compactions": q.compactions,
                          "levels": [_encode(items) for items in q.levels]},
            "categories": {"counts": c.counts, "other": c.other}}


def _column_from_dict(data: dict[str, Any], owner: DatasetSketch) -> ColumnSketch:
    column = owner._new_column(str(data["name"]))
    column.kind, column.dtype = data["kind"], str(data["dtype"])
    column.rows, column.missing = int(data["rows"]), int(data["missing"])
    if data["moments"]:
        m = column.moments
        m.count, m.mean, m.m2, m.min, m.max = data["moments"]
    q = column.quantiles
    q.count = int(data["quantiles"]["count"])
    q.error_weight = float(data["quantiles"]["error_weight"])
    q.compactions = [int(n) for n in data["quantiles"]["compactions"]]
    q.levels = [_decode(text) for text in data["quantiles"]["levels"]]
    column.categories.counts = {str(k): int(v) for k, v in data["categories"]["counts"].items()}
    column.categories.other = int(data["categories"]["other"])
    return column
