"""The schema file format (YAML) a dataset is validated against, and its parser.

A schema names the columns with their dtype and value checks, plus dataset-level
checks that must hold over the whole data (row count, unique keys, no duplicate
rows). Every problem is reported with ``file:line:column``, all at once, and an
unknown key, check or dtype gets a "did you mean". See docs/data.md.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluice.errors import ConfigError, ConfigErrors
from sluice.util.suggest import did_you_mean
from sluice.util.yamlsource import PathKey, YamlSource, parse_yaml_bytes

SCHEMA_VERSION = 1

INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
FLOAT_DTYPES = ("float32", "float64")
DTYPES = (*INT_DTYPES, *FLOAT_DTYPES, "bool", "string", "category", "datetime64", "date")
ORDERED = (*INT_DTYPES, *FLOAT_DTYPES, "datetime64", "date")  # dtypes min/max apply to
TEXT = ("string", "category")

COLUMN_KEYS = ("dtype", "nullable", "unique", "min", "max", "exclusive_min", "exclusive_max",
               "allowed", "regex", "required", "tz", "description")
DATASET_CHECKS = ("rows", "unique", "no_duplicate_rows")
TOP_KEYS = ("version", "strict", "columns", "checks", "description")

Bound = int | float | dt.datetime | dt.date | str


@dataclass(frozen=True)
class ColumnRule:
    """What one column must look like."""

    name: str
    dtype: str
    nullable: bool = False
    unique: bool = False
    required: bool = True
    min: Bound | None = None
    max: Bound | None = None
    exclusive_min: bool = False  # `exclusive_min: 3` is stored as min=3, exclusive_min=True
    exclusive_max: bool = False
    allowed: tuple[Any, ...] | None = None
    regex: str | None = None
    tz: str | None = None


@dataclass(frozen=True)
class Schema:
    """A parsed schema file."""

    file: str
    columns: dict[str, ColumnRule]
    strict: bool = True
    rows_min: int = 1  # an empty dataset is almost always a broken export
    rows_max: int | None = None
    unique_keys: tuple[tuple[str, ...], ...] = ()
    no_duplicate_rows: bool = False
    raw: bytes = field(default=b"", repr=False)


class _Problems:
    """Collects located errors so one pass reports all of them."""

    def __init__(self, src: YamlSource) -> None:
        self.src = src
        self.errors: list[ConfigError] = []

    def add(self, path: PathKey, message: str, hint: str, *, key: bool = False) -> None:
        self.errors.append(ConfigError(f"{self.src.file}: {message}", hint=hint,
                                       location=self.src.locate(path, key=key)))

    def unknown_keys(self, mapping: dict[str, Any], path: PathKey, known: tuple[str, ...],
                     what: str) -> None:
        for key in mapping:
            if key not in known:
                self.add((*path, key), f"unknown {what} `{key}`{did_you_mean(str(key), known)}",
                         f"valid {what}s: {', '.join(known)}", key=True)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _bool(p: _Problems, spec: dict[str, Any], path: PathKey, key: str, default: bool) -> bool:
    value = spec.get(key, default)
    if not isinstance(value, bool):
        p.add((*path, key), f"`{key}` must be true or false, not {value!r}",
              f"write `{key}: true` or `{key}: false`")
        return default
    return value


def _bound(p: _Problems, spec: dict[str, Any], path: PathKey, key: str,
           dtype: str) -> Bound | None:
    value = spec.get(key)
    if value is None:
        return None
    if dtype in ("datetime64", "date"):
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                dt.datetime.fromisoformat(value)
            except ValueError:
                p.add((*path, key), f"`{key}: {value}` is not an ISO date or time",
                      "write it as 2024-01-31 or 2024-01-31T12:00:00")
                return None
            return value
        p.add((*path, key), f"`{key}` of a {dtype} column must be a date or time, "
              f"not {value!r}", "write it as 2024-01-31 or 2024-01-31T12:00:00")
        return None
    if not _is_number(value):
        p.add((*path, key), f"`{key}` must be a number, not {value!r}",
              f"write e.g. `{key}: 0`")
        return None
    return value  # type: ignore[no-any-return]


def _column(p: _Problems, name: str, spec: Any, path: PathKey) -> ColumnRule | None:
    if isinstance(spec, str):  # shorthand: `age: int64`
        spec = {"dtype": spec}
    if not isinstance(spec, dict):
        p.add(path, f"column `{name}` must be a mapping of checks such as "
              "`{dtype: int64, min: 0}`", "give at least its `dtype`")
        return None
    p.unknown_keys(spec, path, COLUMN_KEYS, "column check")
    dtype = spec.get("dtype")
    if dtype is None:
        p.add(path, f"column `{name}` has no `dtype`", f"add one of: {', '.join(DTYPES)}")
        return None
    if dtype not in DTYPES:
        p.add((*path, "dtype"), f"unknown dtype `{dtype}`{did_you_mean(str(dtype), DTYPES)}",
              f"valid dtypes: {', '.join(DTYPES)}")
        return None
    bounds: dict[str, Bound | None] = {}
    exclusive = {"min": False, "max": False}
    for side in ("min", "max"):
        both = side in spec and f"exclusive_{side}" in spec
        if both:
            p.add((*path, f"exclusive_{side}"), f"`{side}` and `exclusive_{side}` both given",
                  f"keep one: `{side}` includes the bound, `exclusive_{side}` excludes it")
        key = f"exclusive_{side}" if f"exclusive_{side}" in spec else side
        exclusive[side] = key != side
        bounds[side] = _bound(p, spec, path, key, dtype)
        if bounds[side] is not None and dtype not in ORDERED:
            p.add((*path, key), f"`{key}` does not apply to a {dtype} column",
                  "min and max apply to numbers, dates and times; use `allowed` for the rest")
            bounds[side] = None
    low, high = bounds["min"], bounds["max"]
    if _is_number(low) and _is_number(high) and low > high:  # type: ignore[operator]
        p.add((*path, "max"), f"column `{name}`: max ({high}) is below min ({low})",
              "swap them or fix one")
    allowed = spec.get("allowed")
    if allowed is not None and (not isinstance(allowed, list) or not allowed):
        p.add((*path, "allowed"), "`allowed` must be a non-empty list of values",
              "write e.g. `allowed: [basic, pro]`")
        allowed = None
    regex = spec.get("regex")
    if regex is not None:
        if dtype not in TEXT:
            p.add((*path, "regex"), f"`regex` applies to string columns, not {dtype}",
                  "change the dtype to string or remove the regex")
            regex = None
        elif not isinstance(regex, str):
            p.add((*path, "regex"), "`regex` must be a string", "quote it: regex: '^[a-z]+$'")
            regex = None
        else:
            try:
                re.compile(regex)
            except re.error as exc:
                p.add((*path, "regex"), f"invalid regex: {exc}",
                      "check the brackets and escapes; quote it with single quotes in YAML")
                regex = None
    tz = spec.get("tz")
    if tz is not None and (dtype != "datetime64" or not isinstance(tz, str)):
        p.add((*path, "tz"), "`tz` applies only to datetime64 columns and names a time zone",
              "write e.g. `tz: UTC` on a datetime64 column")
        tz = None
    return ColumnRule(
        name=name, dtype=dtype, nullable=_bool(p, spec, path, "nullable", False),
        unique=_bool(p, spec, path, "unique", False),
        required=_bool(p, spec, path, "required", True), min=low, max=high,
        exclusive_min=exclusive["min"], exclusive_max=exclusive["max"],
        allowed=tuple(allowed) if allowed is not None else None, regex=regex, tz=tz)


def _keys(p: _Problems, value: Any, path: PathKey,
          columns: dict[str, ColumnRule]) -> tuple[tuple[str, ...], ...]:
    """``unique: [a, b]`` (one composite key) or ``unique: [[a], [b, c]]`` (several)."""
    if not isinstance(value, list) or not value:
        p.add(path, "`unique` must list the key's columns", "write e.g. `unique: [customer_id]`")
        return ()
    groups = value if all(isinstance(v, list) for v in value) else [value]
    keys = []
    for g, group in enumerate(groups):
        at = (*path, g) if groups is value else path
        if not group or not all(isinstance(c, str) for c in group):
            p.add(at, "a unique key is a list of column names", "write e.g. `[customer_id]`")
            continue
        for i, col in enumerate(group):
            if col not in columns:
                p.add((*at, i), f"unique key column `{col}` is not in `columns`"
                      f"{did_you_mean(col, list(columns))}", "declare it under `columns`")
        keys.append(tuple(group))
    return tuple(keys)


def _dataset_checks(p: _Problems, checks: Any, columns: dict[str, ColumnRule]
                    ) -> tuple[int, int | None, tuple[tuple[str, ...], ...], bool]:
    rows_min, rows_max = 1, None
    if checks is None:
        return rows_min, rows_max, (), False
    if not isinstance(checks, dict):
        p.add(("checks",), "`checks` must be a mapping", "write e.g. `checks: {rows: {min: 1}}`")
        return rows_min, rows_max, (), False
    p.unknown_keys(checks, ("checks",), DATASET_CHECKS, "dataset check")
    rows = checks.get("rows")
    if rows is not None:
        if not isinstance(rows, dict):
            p.add(("checks", "rows"), "`rows` must be `{min: N, max: N}`",
                  "write e.g. `rows: {min: 1000}`")
        else:
            p.unknown_keys(rows, ("checks", "rows"), ("min", "max"), "rows bound")
            for key in ("min", "max"):
                value = rows.get(key)
                if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                          or value < 0):
                    p.add(("checks", "rows", key), f"rows `{key}` must be a whole number >= 0",
                          f"write e.g. `{key}: 1000`")
            if isinstance(rows.get("min"), int):
                rows_min = rows["min"]
            if isinstance(rows.get("max"), int):
                rows_max = rows["max"]
    keys = _keys(p, checks["unique"], ("checks", "unique"), columns) if "unique" in checks else ()
    no_dups = _bool(p, checks, ("checks",), "no_duplicate_rows", False)
    return rows_min, rows_max, keys, no_dups


def parse_schema(raw: bytes, file: str) -> Schema:
    """Parse schema file content; raises ConfigError(s) located in ``file``."""
    src = parse_yaml_bytes(raw, file)
    p = _Problems(src)
    data = src.data
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: a schema must be a mapping with `columns:`",
                          location=src.locate(()), hint="see docs/data.md for the format, or "
                          "write one with `sluice data infer DATASET`")
    p.unknown_keys(data, (), TOP_KEYS, "schema key")
    version = data.get("version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        p.add(("version",), f"unsupported schema version {version!r}",
              f"this sluice reads `version: {SCHEMA_VERSION}`")
    strict = _bool(p, data, (), "strict", True)
    raw_columns = data.get("columns")
    columns: dict[str, ColumnRule] = {}
    if not isinstance(raw_columns, dict) or not raw_columns:
        p.add(("columns",) if "columns" in data else (), "the schema declares no `columns`",
              "list each column with its dtype, e.g. `columns: {age: {dtype: int64}}`")
    else:
        for name, spec in raw_columns.items():
            rule = _column(p, str(name), spec, ("columns", name))
            if rule is not None:
                columns[str(name)] = rule
    rows_min, rows_max, keys, no_dups = _dataset_checks(p, data.get("checks"), columns)
    if rows_max is not None and rows_max < rows_min:
        p.add(("checks", "rows", "max"), f"rows max ({rows_max}) is below min ({rows_min})",
              "swap them or fix one")
    if p.errors:
        raise ConfigErrors(p.errors) if len(p.errors) > 1 else p.errors[0]
    return Schema(file=file, columns=columns, strict=strict, rows_min=rows_min,
                  rows_max=rows_max, unique_keys=keys, no_duplicate_rows=no_dups, raw=raw)


def load_schema(path: Path, display: str) -> Schema:
    """Read and parse the schema file at ``path`` (shown to users as ``display``)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"schema file {display} not found",
                          hint="create it, or write a starter with `sluice data infer DATASET`"
                          ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read schema file {display}: {exc.strerror}",
                          hint="check that it exists and is readable") from None
    return parse_schema(raw, display)
