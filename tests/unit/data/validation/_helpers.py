"""Helpers for the validation tests: write frames in each format and validate them."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pandas as pd

from sluice.data.validation.engine import validate_path
from sluice.data.validation.result import CheckFailure
from sluice.data.validation.schema_file import Schema, parse_schema


def schema(text: str) -> Schema:
    return parse_schema(textwrap.dedent(text).encode(), "schema.yaml")


def write(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    return path


def failures(path: Path, text: str, chunk_rows: int = 500_000) -> dict[tuple[str, str],
                                                                     CheckFailure]:
    _, _, found = validate_path(path, "auto", schema(text), chunk_rows=chunk_rows)
    return {(f.column, f.check): f for f in found}


def rows_of(failure: CheckFailure) -> list[Any]:
    return [e.row for e in failure.examples]


def values_of(failure: CheckFailure) -> list[Any]:
    return [e.value for e in failure.examples]
