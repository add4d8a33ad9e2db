"""Every column and dataset check, with passing and failing data, through the chunked engine."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import pytest

from sluice.data.validation.checks import to_pandera
from tests.unit.data.validation._helpers import failures, rows_of, schema, values_of, write

FRAME = pd.DataFrame({
    "id": [1, 2, 3, 4, 5, 6],
    "age": [20, 30, 40, 50, 60, 70],
    "plan": ["basic", "pro", "pro", "enterprise", "basic", "pro"],
    "email": ["a@x", "b@x", "c@x", "d@x", "e@x", "f@x"],
    "score": [0.1, 0.2, 0.3, 0.4, 0.5, 1.0],
})

# (column spec or dataset checks, a change that breaks it, expected (column, check), rows)
CASES = [
    ("age: {dtype: int64, min: 20}", {"age": [20, 30, 19, 50, 60, 70]}, ("age", "min"), [2]),
    ("age: {dtype: int64, max: 70}", {"age": [20, 30, 40, 50, 60, 71]}, ("age", "max"), [5]),
    ("age: {dtype: int64, exclusive_min: 19}", {"age": [19, 30, 40, 50, 60, 70]},
     ("age", "exclusive_min"), [0]),
    ("score: {dtype: float64, exclusive_max: 1.5}", {"score": [0.1, 1.5, 0.3, 0.4, 0.5, 1.0]},
     ("score", "exclusive_max"), [1]),
    ("plan: {dtype: string, allowed: [basic, pro, enterprise]}",
     {"plan": ["basic", "pro", "gold", "enterprise", "basic", "pro"]}, ("plan", "allowed"), [2]),
    ("email: {dtype: string, regex: '[^@]+@[^@]+'}",
     {"email": ["a@x", "b@x", "c@x@y", "d@x", "nope", "f@x"]}, ("email", "regex"), [2, 4]),
    ("email: {dtype: string, unique: true}",
     {"email": ["a@x", "b@x", "a@x", "d@x", "e@x", "f@x"]}, ("email", "unique"), [0, 2]),
    ("score: {dtype: float64, nullable: false}",
     {"score": [0.1, None, 0.3, 0.4, 0.5, 1.0]}, ("score", "nullable"), [1]),
    ("age: {dtype: int8}", {"age": [20, 300, 40, 50, 60, 70]}, ("age", "dtype"), [1]),
    ("age: {dtype: uint8}", {"age": [20, -3, 40, 50, 60, 70]}, ("age", "dtype"), [1]),
]


@pytest.mark.parametrize(("spec", "change", "expected", "rows"), CASES)
@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_column_check_passes_then_fails(tmp_path: Path, spec: str,
                                        change: dict[str, list[object]],
                                        expected: tuple[str, str], rows: list[int],
                                        suffix: str) -> None:
    text = f"strict: false\ncolumns:\n  {spec}\n"
    assert failures(write(FRAME, tmp_path / f"ok{suffix}"), text) == {}
    found = failures(write(FRAME.assign(**change), tmp_path / f"bad{suffix}"), text)
    assert list(found) == [expected]
    assert found[expected].failing_rows == len(rows)
    assert rows_of(found[expected]) == rows


def test_nullable_true_allows_missing_values(tmp_path: Path) -> None:
    data = write(FRAME.assign(score=[0.1, None, 0.3, None, 0.5, 1.0]), tmp_path / "d.parquet")
    assert failures(data, "strict: false\ncolumns:\n  score: {dtype: float64, nullable: true, "
                    "max: 1.0}\n") == {}


def test_int_column_with_nulls_in_every_format(tmp_path: Path) -> None:
    frame = pd.DataFrame({"n": pd.array([1, None, 3], dtype="Int64")})
    for suffix in (".parquet", ".csv", ".jsonl"):
        data = write(frame, tmp_path / f"n{suffix}")
        assert failures(data, "columns:\n  n: {dtype: int64, nullable: true, min: 1}\n") == {}
        assert list(failures(data, "columns:\n  n: {dtype: int64}\n")) == [("n", "nullable")]


def test_dates_times_and_bools(tmp_path: Path) -> None:
    frame = pd.DataFrame({"day": pd.to_datetime(["2024-01-01", "2024-02-01"]),
                          "at": pd.to_datetime(["2024-01-01 10:00", "2024-01-02 11:00"],
                                               utc=True),
                          "flag": [True, False]})
    text = """\
        columns:
          day: {dtype: date, min: 2024-01-01, max: 2024-12-31}
          at: {dtype: datetime64, tz: UTC, max: '2024-01-02T10:30:00'}
          flag: {dtype: bool}
        """
    for suffix in (".parquet", ".csv"):
        found = failures(write(frame, tmp_path / f"t{suffix}"), text)
        assert list(found) == [("at", "max")], suffix
        assert rows_of(found[("at", "max")]) == [1]


def test_key_unique_and_duplicate_rows(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1, 1, 2, 2], "b": ["x", "y", "x", "x"]})
    found = failures(write(frame, tmp_path / "d.parquet"), """\
        columns: {a: {dtype: int64}, b: {dtype: string}}
        checks: {unique: [a, b], no_duplicate_rows: true, rows: {min: 5}}
        """)
    assert list(found) == [("<dataset>", "unique"), ("<dataset>", "rows"),
                           ("<dataset>", "no_duplicate_rows")]
    assert rows_of(found[("<dataset>", "unique")]) == [2, 3]
    assert values_of(found[("<dataset>", "unique")])[0] == {"a": 2, "b": "x"}
    assert found[("<dataset>", "rows")].message == "4 rows; the schema wants at least 5"


def test_missing_and_extra_columns_strict_and_lenient(tmp_path: Path) -> None:
    data = write(FRAME.rename(columns={"age": "agee"}), tmp_path / "d.parquet")
    strict = failures(data, "columns:\n  id: {dtype: int64}\n  age: {dtype: int64}\n")
    assert set(strict) == {("age", "required"), ("agee", "strict"), ("plan", "strict"),
                           ("email", "strict"), ("score", "strict")}
    assert strict[("age", "required")].message == "column is missing"
    lenient = failures(data, "strict: false\ncolumns:\n  id: {dtype: int64}\n"
                             "  age: {dtype: int64, required: false}\n")
    assert lenient == {}


def test_wrong_stored_dtype_in_parquet_is_a_column_problem(tmp_path: Path) -> None:
    data = write(FRAME, tmp_path / "d.parquet")
    found = failures(data, "strict: false\ncolumns:\n  plan: {dtype: int64}\n"
                           "  age: {dtype: string}\n")
    message = found[("plan", "dtype")].message
    assert "string" in message and message.endswith("; the schema says int64")
    assert found[("age", "dtype")].failing_rows == 6
    assert found[("age", "dtype")].message.startswith("stored as int64")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_mixed_types_in_text_formats_report_rows(tmp_path: Path, suffix: str) -> None:
    frame = pd.DataFrame({"age": [20, "twenty", 40, None, "4x"]}, dtype=object)
    found = failures(write(frame, tmp_path / f"d{suffix}"),
                     "columns:\n  age: {dtype: int64, nullable: true, min: 0}\n")
    assert list(found) == [("age", "dtype")]
    assert rows_of(found[("age", "dtype")]) == [1, 4]
    assert values_of(found[("age", "dtype")]) == ["twenty", "4x"]


def test_whole_translation_to_pandera_agrees(tmp_path: Path) -> None:
    parsed = schema("""\
        columns:
          id: {dtype: int64, unique: true}
          age: {dtype: int64, min: 0, max: 120}
          plan: {dtype: string, allowed: [basic, pro, enterprise]}
          email: {dtype: string, regex: '[^@]+@[^@]+'}
          score: {dtype: float64, min: 0.0, max: 1.0}
        checks: {rows: {min: 1}, unique: [id]}
        """)
    checker = to_pandera(parsed, whole=True)
    checker.validate(FRAME, lazy=True)
    with pytest.raises(pa.errors.SchemaErrors) as info:
        checker.validate(FRAME.assign(age=[-1, 30, 40, 50, 60, 70], extra=1), lazy=True)
    assert {"column_in_schema", "greater_than_or_equal_to(0)"} <= set(
        info.value.failure_cases["check"])
