"""Bad input gives clear messages; chunks, partitions and global row numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sluice.data.validation.readers import iter_chunks
from sluice.errors import DataInvalid
from tests.unit.data.validation._helpers import failures, rows_of, write

SCHEMA = "columns:\n  id: {dtype: int64, unique: true}\n  x: {dtype: float64, max: 1.0}\n"


def _frame(start: int, n: int) -> pd.DataFrame:
    return pd.DataFrame({"id": np.arange(start, start + n), "x": np.linspace(0, 1, n)})


def test_duplicate_split_across_chunks_is_found_with_global_rows(tmp_path: Path) -> None:
    frame = _frame(0, 100)
    frame.loc[97, "id"] = 3  # the same id in chunk 0 (row 3) and chunk 9 (row 97)
    frame.loc[55, "x"] = 2.0
    for suffix in (".parquet", ".csv", ".jsonl"):
        found = failures(write(frame, tmp_path / f"d{suffix}"), SCHEMA, chunk_rows=10)
        assert rows_of(found[("id", "unique")]) == [3, 97], suffix
        assert found[("id", "unique")].failing_rows == 2
        assert rows_of(found[("x", "max")]) == [55]


def test_partitions_number_rows_globally_and_name_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    write(_frame(0, 30), folder / "part-0.parquet")
    second = _frame(30, 30)
    second.loc[5, "x"] = 5.0  # global row 35
    second.loc[9, "id"] = 2  # duplicates global row 2 of part-0
    write(second, folder / "part-1.parquet")
    (folder / "_SUCCESS").write_text("")
    found = failures(folder, SCHEMA, chunk_rows=7)
    (example,) = found[("x", "max")].examples
    assert (example.row, example.file, example.value) == (35, "part-1.parquet", 5.0)
    assert [(e.row, e.file) for e in found[("id", "unique")].examples] == [
        (2, "part-0.parquet"), (39, "part-1.parquet")]


def test_empty_files(tmp_path: Path) -> None:
    for name in ("empty.csv", "empty.parquet"):
        (tmp_path / name).write_bytes(b"")
        with pytest.raises(DataInvalid, match=r"is empty \(0 bytes\)"):
            failures(tmp_path / name, SCHEMA)
    (tmp_path / "header.csv").write_text("id,x\n")
    found = failures(tmp_path / "header.csv", SCHEMA)
    assert list(found) == [("<dataset>", "rows")]
    assert found[("<dataset>", "rows")].message == "0 rows; the schema wants at least 1"
    (tmp_path / "empty.jsonl").write_bytes(b"")
    assert list(failures(tmp_path / "empty.jsonl", SCHEMA)) == [
        ("id", "required"), ("x", "required"), ("<dataset>", "rows")]


def test_truncated_parquet(tmp_path: Path) -> None:
    data = write(_frame(0, 1000), tmp_path / "d.parquet")
    data.write_bytes(data.read_bytes()[:-100])
    with pytest.raises(DataInvalid, match="not a readable Parquet file") as info:
        failures(data, SCHEMA)
    assert "truncated" in (info.value.hint or "")


def test_ragged_csv_names_the_line(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("id,x\n" + "".join(f"{i},0.5\n" for i in range(30)) + "31,0.5,extra\n")
    with pytest.raises(DataInvalid, match="row 30 has 3 field"):
        list(iter_chunks(data, "csv", chunk_rows=8))


def test_a_short_csv_row_is_ragged_too(tmp_path: Path) -> None:
    # pandas would pad it with missing values; it is reported, with every ragged line.
    data = tmp_path / "d.csv"
    data.write_text('id,x,note\n1,0.5,"a, quoted\nvalue"\n2,0.5\n3,0.5,ok\n4\n')
    with pytest.raises(DataInvalid) as info:
        list(iter_chunks(data, "csv"))
    assert "row 1 has 2 field(s), row 3 has 1 field(s); the header has 3" in info.value.message


def test_broken_json_line_names_the_line(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"id": 1, "x": 0.1}\n{"id": 2, "x": 0.2}\n{"id": 3, "x"\n')
    with pytest.raises(DataInvalid, match=r"d\.jsonl:3: not valid JSON"):
        failures(data, SCHEMA)


def test_missing_data_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(DataInvalid, match="does not exist"):
        failures(tmp_path / "nope.parquet", SCHEMA)
    (tmp_path / "d.xlsx").write_text("x")
    with pytest.raises(DataInvalid, match="cannot tell the format"):
        failures(tmp_path / "d.xlsx", SCHEMA)


def test_iter_chunks_bounds_rows_and_columns(tmp_path: Path) -> None:
    data = write(_frame(0, 25), tmp_path / "d.parquet")
    chunks = list(iter_chunks(data, "auto", columns=["x"], chunk_rows=10))
    assert [len(c) for c in chunks] == [10, 10, 5]
    assert list(chunks[2].index) == list(range(20, 25))
    assert all(list(c.columns) == ["x"] for c in chunks)
