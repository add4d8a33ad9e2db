"""A schema's column checks as pandera checks, plus the format-aware dtype check.

Values are checked by pandera: each chunk goes through a ``DataFrameSchema`` made
by :func:`to_pandera` (nullable, min/max, allowed, regex). The dtype check comes
first and is sluice's own, because what "int64" means depends on the format:
Parquet stores types, so a column stored as text where the schema says int64 is
wrong as a whole; CSV and JSON lines store text, so every *value* must parse as
the dtype and the ones that do not are reported row by row. :func:`normalise`
does that and hands pandera values of one consistent dtype per column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sluice.data.validation.schema_file import FLOAT_DTYPES, INT_DTYPES, TEXT, ColumnRule, Schema

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]
    import pandera.pandas as pa

# Which stored (Parquet/Arrow) kinds each declared dtype accepts.
_ACCEPTS = {"int": {"int"}, "float": {"float", "int"}, "bool": {"bool"}, "text": {"text"},
            "datetime": {"datetime", "date"}, "date": {"date", "datetime"}}


def family(dtype: str) -> str:
    if dtype in INT_DTYPES:
        return "int"
    if dtype in FLOAT_DTYPES:
        return "float"
    if dtype in TEXT:
        return "text"
    return {"datetime64": "datetime"}.get(dtype, dtype)


def arrow_kind(type_name: str) -> str:
    """The kind of an Arrow type as ``str(pyarrow.DataType)`` spells it."""
    for prefix, kind in (("int", "int"), ("uint", "int"), ("float", "float"),
                         ("double", "float"), ("halffloat", "float"), ("decimal", "float"),
                         ("bool", "bool"), ("string", "text"), ("large_string", "text"),
                         ("timestamp", "datetime"), ("date", "date"), ("null", "null")):
        if type_name.startswith(prefix):
            return kind
    if type_name.startswith("dictionary<values=") and "string" in type_name:
        return "text"
    return "other"


@dataclass
class Normalised:
    """A column ready for pandera, the rows whose value is not of the dtype, or a problem."""

    values: pd.Series | None  # None: the column cannot be checked further
    bad: np.ndarray | None = None  # bool mask of values that are not of the dtype
    problem: str | None = None  # the whole column is of the wrong type


def _numeric(series: pd.Series) -> tuple[pd.Series, np.ndarray | None]:
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]
    from pandas.api import types  # type: ignore[import-untyped, unused-ignore]

    if types.is_bool_dtype(series.dtype):  # true/false is not a number
        return pd.Series(np.nan, index=series.index), series.notna().to_numpy()
    if types.is_numeric_dtype(series.dtype):
        return series, None
    parsed = pd.to_numeric(series.astype(object), errors="coerce")
    bad = (series.notna() & parsed.isna()).to_numpy()
    return parsed, bad if bad.any() else np.zeros(len(series), dtype=bool)


def _merge(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return b
    return a if b is None else a | b


def _to_int(series: pd.Series, dtype: str) -> Normalised:
    import numpy as np
    from pandas.api import types  # type: ignore[import-untyped, unused-ignore]

    info = np.iinfo(dtype)
    values, bad = _numeric(series)
    if types.is_integer_dtype(values.dtype) and not types.is_extension_array_dtype(values.dtype):
        stored = np.iinfo(values.dtype)
        if stored.min >= info.min and stored.max <= info.max:
            return Normalised(values)  # the fast path: nothing to convert
    floats = values.astype("float64")
    outside = floats.notna() & ((floats % 1 != 0) | (floats < info.min) | (floats > info.max))
    bad = _merge(bad, outside.to_numpy(dtype=bool))
    assert bad is not None
    kept = floats.mask(bad)
    target = dtype if not kept.isna().any() else dtype.capitalize().replace("Uint", "UInt")
    return Normalised(kept.astype(target), bad if bad.any() else None)


def _to_float(series: pd.Series, dtype: str) -> Normalised:
    from pandas.api import types  # type: ignore[import-untyped, unused-ignore]

    values, bad = _numeric(series)
    if types.is_float_dtype(values.dtype) and not types.is_extension_array_dtype(values.dtype):
        return Normalised(values, bad)
    return Normalised(values.astype("float64"), bad)


def _to_bool(series: pd.Series) -> Normalised:
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]
    from pandas.api import types  # type: ignore[import-untyped, unused-ignore]

    if types.is_bool_dtype(series.dtype):
        return Normalised(series)
    words = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}
    parsed = series.astype(object).map(lambda v: words.get(str(v).strip().lower()),
                                       na_action="ignore")
    bad = (series.notna() & parsed.isna()).to_numpy()
    return Normalised(parsed.astype("boolean"), bad if bad.any() else None) \
        if len(parsed) else Normalised(pd.Series([], dtype="boolean"))


def _to_text(series: pd.Series, typed: bool) -> Normalised:
    from pandas.api import types  # type: ignore[import-untyped, unused-ignore]

    if isinstance(series.dtype, types.CategoricalDtype) or types.is_string_dtype(series.dtype):
        if series.dtype != object or types.infer_dtype(series, skipna=True) in ("string",
                                                                                 "empty"):
            return Normalised(series)
        is_text = series.map(lambda v: isinstance(v, str), na_action="ignore")
        bad = (series.notna() & ~is_text.fillna(True).astype(bool)).to_numpy()
        return Normalised(series.mask(bad), bad)
    if typed:
        return Normalised(None, problem=f"stored as {series.dtype}")
    # CSV and JSON lines: digits in a text column (zip codes, ids) are still text.
    return Normalised(series.astype(object).where(series.notna()).map(str, na_action="ignore"))


def _to_datetime(series: pd.Series, rule: ColumnRule) -> Normalised:
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]
    from pandas.api import types  # type: ignore[import-untyped, unused-ignore]

    values = series
    bad = None
    if not types.is_datetime64_any_dtype(series.dtype):
        text = series.astype(object)
        try:
            values = pd.to_datetime(text, errors="coerce", format="ISO8601",
                                    utc=rule.tz is not None)
        except (ValueError, TypeError):
            values = pd.to_datetime(text, errors="coerce", utc=True)
        mask = (series.notna() & values.isna()).to_numpy()
        bad = mask if mask.any() else None
    tz = getattr(values.dtype, "tz", None)
    if rule.tz is None and tz is not None:
        return Normalised(None, problem=f"has time zone {tz}; the schema declares none "
                          "(add `tz:` to the column)")
    if rule.tz is not None:
        if tz is None:
            return Normalised(None, problem=f"has no time zone; the schema says tz {rule.tz}")
        values = values.dt.tz_convert(rule.tz)
    if rule.dtype == "date":
        timed = (values.notna() & (values != values.dt.normalize())).to_numpy()
        if timed.any():
            bad = _merge(bad, timed)
            values = values.mask(timed)
    return Normalised(values, bad)


def normalise(series: pd.Series, rule: ColumnRule, source_type: str | None) -> Normalised:
    """Check ``series`` against ``rule.dtype``; return it in one dtype for pandera.

    ``source_type`` is the stored Arrow type for typed formats, None for text formats.
    """
    fam = family(rule.dtype)
    if source_type is not None:
        kind = arrow_kind(source_type)
        if kind != "null" and kind not in _ACCEPTS[fam]:
            return Normalised(None, problem=f"stored as {source_type}")
    if fam == "int":
        return _to_int(series, rule.dtype)
    if fam == "float":
        return _to_float(series, rule.dtype)
    if fam == "bool":
        return _to_bool(series)
    if fam == "text":
        return _to_text(series, source_type is not None)
    return _to_datetime(series, rule)


def _bound(value: Any, rule: ColumnRule) -> Any:
    if family(rule.dtype) in ("datetime", "date"):
        import pandas as pd  # type: ignore[import-untyped, unused-ignore]

        stamp = pd.Timestamp(value)
        if rule.tz is not None:
            stamp = stamp.tz_localize(rule.tz) if stamp.tz is None else stamp.tz_convert(rule.tz)
        return stamp
    return value


def _fullmatch(pattern: str) -> Any:
    wrapped = f"(?:{pattern})"

    def check(series: pd.Series) -> pd.Series:
        return series.astype(str).str.fullmatch(wrapped) if series.dtype == "category" \
            else series.str.fullmatch(wrapped)
    return check


def value_checks(rule: ColumnRule) -> list[tuple[str, pa.Check]]:
    """(sluice check name, pandera check) for each value check of ``rule``, in order."""
    import pandera.pandas as pa

    checks: list[tuple[str, pa.Check]] = []
    if rule.min is not None:
        low = _bound(rule.min, rule)
        checks.append(("exclusive_min", pa.Check.gt(low)) if rule.exclusive_min
                      else ("min", pa.Check.ge(low)))
    if rule.max is not None:
        high = _bound(rule.max, rule)
        checks.append(("exclusive_max", pa.Check.lt(high)) if rule.exclusive_max
                      else ("max", pa.Check.le(high)))
    if rule.allowed is not None:
        checks.append(("allowed", pa.Check.isin(list(rule.allowed))))
    if rule.regex is not None:
        checks.append(("regex", pa.Check(_fullmatch(rule.regex), name="regex")))
    return checks


_PANDERA_DTYPES = {**{d: d for d in (*INT_DTYPES, *FLOAT_DTYPES)}, "bool": "bool",
                   "category": "category"}


def to_pandera(schema: Schema, *, whole: bool = True) -> pa.DataFrameSchema:
    """The schema as a pandera ``DataFrameSchema``.

    ``whole=False`` gives the per-chunk part (value checks only): dtypes are
    checked by :func:`normalise` and everything that must hold over all rows
    (uniqueness, row counts, missing and extra columns) is checked once per
    dataset. ``whole=True`` translates everything, for data already in memory.
    """
    import pandera.pandas as pa

    columns = {}
    for name, rule in schema.columns.items():
        columns[name] = pa.Column(
            _PANDERA_DTYPES.get(rule.dtype) if whole else None,
            checks=[check for _, check in value_checks(rule)], nullable=rule.nullable,
            unique=rule.unique and whole, required=rule.required and whole, name=name)
    if not whole:
        return pa.DataFrameSchema(columns, strict=False)
    frame_checks = [pa.Check(lambda df: schema.rows_min <= len(df) <= (schema.rows_max or
                             len(df)), name="rows")]
    keys: list[str] = [c for key in schema.unique_keys for c in key]
    if len(schema.unique_keys) > 1:
        frame_checks += [pa.Check(lambda df, k=list(key): ~df.duplicated(k, keep=False),
                                  name="unique") for key in schema.unique_keys]
        keys = []
    if schema.no_duplicate_rows:
        frame_checks.append(pa.Check(lambda df: ~df.duplicated(keep=False),
                                     name="no_duplicate_rows"))
    return pa.DataFrameSchema(columns, checks=frame_checks, strict=schema.strict,
                              unique=keys or None)


__all__ = ["Normalised", "arrow_kind", "family", "normalise", "to_pandera", "value_checks"]
