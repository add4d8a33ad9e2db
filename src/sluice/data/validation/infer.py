"""``sluice data infer``: a starter schema written from the data itself, in one streaming pass.

What it infers: each column's dtype; min and max widened by a margin (10 % of
the observed range, integers rounded outward, a column never negative stays
non-negative); ``allowed`` for text columns with few distinct values; ``nullable``
when nulls were seen; ``unique`` when every value was distinct; and a row-count
floor at half the rows seen. The file says it was inferred and needs review.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice.data.validation.checks import arrow_kind
from sluice.data.validation.readers import CHUNK_ROWS, iter_parts, partitions
from sluice.data.validation.schema_file import parse_schema
from sluice.data.validation.uniques import DuplicateFinder
from sluice.data.validation.validate import dataset_spec
from sluice.errors import UsageError
from sluice.util.fs import atomic_write_bytes
from sluice.workspace.project import Project

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]

MARGIN = 0.10  # widen observed ranges by this fraction of the range
ROWS_FRACTION = 0.5  # `rows: {min}` is this fraction of the rows seen
MAX_ALLOWED = 20  # text columns with at most this many distinct values get `allowed`


@dataclass
class _Column:
    """What one pass has seen of a column."""

    dtype: str | None = None  # None until a non-empty chunk showed a type
    tz: str | None = None
    nulls: int = 0
    low: Any = None
    high: Any = None
    distinct: set[Any] | None = field(default_factory=set)  # None once above the limit
    unique: DuplicateFinder | None = None  # None once a repeat was seen


def _merge_dtype(old: str | None, new: str | None) -> str | None:
    if old is None or old == new:
        return new
    if new is None:
        return old
    numeric = {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
               "float32", "float64"}
    if old in numeric and new in numeric:
        return "float64" if "float" in old + new else "int64"
    if {old, new} == {"date", "datetime64"}:
        return "datetime64"
    return "string"


def _observe_dtype(series: pd.Series, source: str | None) -> tuple[str | None, str | None]:
    """(schema dtype, time zone) of one chunk of a column."""
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]
    from pandas.api import types  # type: ignore[import-untyped, unused-ignore]

    if source is not None:
        kind = arrow_kind(source)
        if kind == "int":
            return source, None
        if kind == "date":
            return "date", None
        if kind == "text" and source.startswith("dictionary"):
            return "category", None
    values = series.dropna()
    if values.empty:
        return None, None
    if isinstance(series.dtype, pd.CategoricalDtype):
        return "category", None
    if types.is_bool_dtype(series.dtype):
        return "bool", None
    if types.is_integer_dtype(series.dtype):
        return str(series.dtype).lower(), None
    if types.is_float_dtype(series.dtype):
        whole = bool((values % 1 == 0).all())  # ints with missing values read as floats
        return ("int64" if whole and source is None else str(series.dtype)), None
    if types.is_datetime64_any_dtype(series.dtype):
        tz = getattr(series.dtype, "tz", None)
        return "datetime64", None if tz is None else str(tz)
    if source is None:  # text formats: dates are ISO text
        try:
            stamps = pd.to_datetime(values.astype(object), format="ISO8601")
        except (ValueError, TypeError):
            return "string", None
        tz = getattr(stamps.dtype, "tz", None)
        if tz is None and bool((stamps == stamps.dt.normalize()).all()) and bool(
                (values.astype(str).str.len() == 10).all()):
            return "date", None
        return "datetime64", None if tz is None else str(tz)
    return "string", None


def _observe(stats: _Column, series: pd.Series, source: str | None, limit: int) -> None:
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]

    dtype, tz = _observe_dtype(series, source)
    stats.dtype = _merge_dtype(stats.dtype, dtype)
    stats.tz = tz or stats.tz
    stats.nulls += int(series.isna().sum())
    values = series.dropna()
    if values.empty:
        return
    if stats.dtype in ("datetime64", "date") and not pd.api.types.is_datetime64_any_dtype(
            values.dtype):
        values = pd.to_datetime(values.astype(object), format="ISO8601", utc=tz is not None)
    if stats.dtype not in ("string", "category", "bool"):
        low, high = values.min(), values.max()
        stats.low = low if stats.low is None else min(stats.low, low)
        stats.high = high if stats.high is None else max(stats.high, high)
    if stats.distinct is not None and stats.dtype in ("string", "category"):
        stats.distinct.update(values.astype(str).unique().tolist())
        if len(stats.distinct) > limit:
            stats.distinct = None
    if stats.unique is not None:
        keyish = (stats.dtype or "").startswith(("int", "uint")) or stats.dtype == "string"
        if not keyish or values.duplicated().any():
            stats.unique = None  # most columns repeat within the first chunk: cheap to drop
        else:
            if (stats.dtype or "").startswith(("int", "uint")):
                values = values.astype("int64")  # one hash per value, whatever chunk dtype
            stats.unique.add(values.to_frame())


def _widen(stats: _Column) -> tuple[Any, Any]:
    """Observed min/max pushed out by MARGIN of the range."""
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]

    low, high = stats.low, stats.high
    if stats.dtype in ("datetime64", "date"):
        low, high = pd.Timestamp(low), pd.Timestamp(high)
        margin = (high - low) * MARGIN
        low, high = low - margin, high + margin
        if stats.dtype == "date":
            return low.date(), (high + pd.Timedelta(days=1)).normalize().date()
        return low.isoformat(), high.isoformat()
    low, high = float(low), float(high)
    span = high - low
    margin = span * MARGIN if span > 0 else max(abs(high) * MARGIN, 1.0)
    new_low, new_high = low - margin, high + margin
    if low >= 0:
        new_low = max(0.0, new_low)
    dtype = stats.dtype or "float64"
    if dtype.startswith(("int", "uint")):
        info = np.iinfo(dtype)
        return max(math.floor(new_low), int(info.min)), min(math.ceil(new_high), int(info.max))
    step = 10.0 ** (math.floor(math.log10(span or abs(high) or 1.0)) - 2)
    return math.floor(new_low / step) * step, math.ceil(new_high / step) * step


def _column_spec(stats: _Column) -> dict[str, Any]:
    spec: dict[str, Any] = {"dtype": stats.dtype or "string"}
    if stats.tz:
        spec["tz"] = stats.tz
    spec["nullable"] = stats.nulls > 0
    if stats.low is not None:
        low, high = _widen(stats)
        spec["min"], spec["max"] = (round(low, 10), round(high, 10)) \
            if isinstance(low, float) else (low, high)
    if stats.distinct is not None and spec["dtype"] in ("string", "category") and stats.distinct:
        spec["allowed"] = sorted(stats.distinct)
    elif stats.unique is not None and stats.unique.duplicates()[0] == 0:
        spec["unique"] = True
    return spec


def _render(name: str, source: str, rows: int, columns: dict[str, dict[str, Any]]) -> str:
    import yaml

    def flow(value: dict[str, Any]) -> str:
        return str(yaml.safe_dump(value, default_flow_style=True, width=10**9,
                                  sort_keys=False)).strip()[1:-1]

    lines = [f"# Inferred by `sluice data infer {name}` from {source} ({rows} rows).",
             "# REVIEW BEFORE RELYING ON IT: bounds are the observed ranges widened by "
             f"{MARGIN:.0%},",
             "# `allowed` lists only the values seen, `unique` only held on this data.",
             "# Format: docs/data.md.", "version: 1", "strict: true", "columns:"]
    lines += [f"  {flow({column: spec})}" for column, spec in columns.items()]
    lines += ["checks:", f"  rows: {{min: {math.floor(rows * ROWS_FRACTION)}}}"]
    return "\n".join(lines) + "\n"


def infer_schema(project: Project, name: str, output: Path | None = None, force: bool = False,
                 *, max_allowed: int = MAX_ALLOWED, chunk_rows: int = CHUNK_ROWS) -> Path:
    """Write a starter schema for dataset ``name``; returns where it was written.

    ``output`` defaults to ``schemas/<name>.yaml``; a relative one is taken from
    the project root. An existing file is kept unless ``force``.
    """
    spec = dataset_spec(project, name)
    target = project.root / (output or Path("schemas") / f"{name}.yaml")
    if target.exists() and not force:
        shown = target.relative_to(project.root) if target.is_relative_to(project.root) \
            else target
        raise UsageError(f"{shown} already exists",
                         hint="pass --force to overwrite it, or --output to write elsewhere")
    path = project.root / spec.path
    _, fmt = partitions(path, spec.format)
    stats: dict[str, _Column] = {}
    rows = 0
    for chunk in iter_parts(path, fmt, None, chunk_rows):
        for column in chunk.frame.columns:
            if str(column) not in stats:
                stats[str(column)] = _Column(unique=DuplicateFinder("unique", str(column),
                                                                   [str(column)], True))
            source = chunk.source_types.get(column) if chunk.source_types else None
            _observe(stats[str(column)], chunk.frame[column], source, max_allowed)
        rows += len(chunk.frame)
    if not stats:
        raise UsageError(f"dataset `{name}` has no columns to infer a schema from",
                         hint=f"check that {spec.path} holds data")
    text = _render(name, spec.path, rows, {c: _column_spec(s) for c, s in stats.items()})
    parse_schema(text.encode(), str(target))  # never write a schema we could not read back
    atomic_write_bytes(target, text.encode())
    return target
