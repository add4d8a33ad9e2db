"""sluice.data.sampling: the canonical key bytes, the keep rule, and materialise_sample on files."""

from __future__ import annotations

import datetime
import json
import math
import os
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]
import pytest

import sluice
import sluice.sdk  # loaded now, not lazily inside a test
from sluice.data.sampling import (
    canonical_bytes,
    keep_flags,
    key_hashes,
    materialise_sample,
    threshold,
)
from sluice.errors import DataInvalid, UsageError

# --------------------------------------------------------------------------- the rule


@pytest.mark.parametrize(("value", "expected"), [
    ("abc", b"abc"), ("é", "é".encode()), (b"\x00\x01", b"\x00\x01"),
    (42, b"42"), (-7, b"-7"), (np.int64(42), b"42"), (np.uint8(7), b"7"),
    (42.0, b"42"), (np.float32(3.0), b"3"), (0.5, b"0.5"), (1e300, b"%d" % int(1e300)),
    (math.inf, b"inf"), (None, b""), (math.nan, b""), (pd.NA, b""), (pd.NaT, b""),
    (True, b"True"), (np.bool_(False), b"False"),
    (datetime.date(2024, 1, 2), b"2024-01-02"),
    (datetime.datetime(2024, 1, 2, 3, 4, 5), b"2024-01-02T03:04:05"),
    (pd.Timestamp("2024-01-02 03:04:05"), b"2024-01-02T03:04:05"),
    ([1, "a"], b'[1,"a"]'), ({"b": 1, "a": 2}, b'{"a":2,"b":1}'),
    ((1, "ab"), b"\x01\x00\x00\x001\x02\x00\x00\x00ab"), (Decimal("1.50"), b"1.50"),
])
def test_canonical_bytes(value: object, expected: bytes) -> None:
    assert canonical_bytes(value) == expected


def test_composite_keys_do_not_collide_by_concatenation() -> None:
    assert canonical_bytes(("ab", "c")) != canonical_bytes(("a", "bc"))


def test_threshold_bounds() -> None:
    assert threshold(1.0) == 2**64
    assert threshold(0.5) == 2**63
    assert 0 < threshold(1e-12) < threshold(0.02) < 2**64


def test_keep_flags_fallback_keeps_every_row_of_the_smallest_key() -> None:
    hashes = [10, 5, 5, 7, 2**63]
    strata = ["a", "a", "a", "a", "b"]
    assert keep_flags(hashes, 1e-19, strata) == [False, True, True, False, True]
    assert keep_flags(hashes, 1e-19) == [False] * 5
    with pytest.raises(UsageError, match="labels"):
        keep_flags(hashes, 0.5, ["a"])


# --------------------------------------------------------------------------- file round trips

N = 3000


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "id": [f"{i:06d}" for i in range(N)],  # leading zeros must survive CSV
        "n": np.arange(N),
        "x": np.arange(N) * 0.25,
        "label": ["rare" if i < 3 else ("a" if i % 3 else "b") for i in range(N)],
        "text": ['comma, "quote"\nnewline' if i % 7 == 0 else "plain" for i in range(N)],
    })


def _write(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype={"id": str})
    if path.suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    return pd.read_json(path, lines=True, dtype={"id": str})


@pytest.mark.parametrize("name", ["data.csv", "data.parquet", "data.pq", "data.jsonl",
                                  "data.ndjson"])
def test_round_trip_matches_sdk_sample(tmp_path: Path, name: str) -> None:
    frame = _frame()
    src, dst = tmp_path / name, tmp_path / "out" / f"sample-{name}"
    _write(frame, src)
    count = materialise_sample(src, dst, 0.1, "id", None, seed=3)
    expected = sluice.sample(frame, 0.1, key="id", seed=3).reset_index(drop=True)
    assert count == len(expected) > 0
    got = _read(dst)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert [p.name for p in dst.parent.iterdir()] == [dst.name]  # no temporary files left


def test_same_ids_whatever_the_format(tmp_path: Path) -> None:
    frame = _frame()
    kept = []
    for name in ("d.csv", "d.parquet", "d.jsonl"):
        _write(frame, tmp_path / name)
        materialise_sample(tmp_path / name, tmp_path / f"s-{name}", 0.2, "n", "label")
        kept.append(list(_read(tmp_path / f"s-{name}")["id"]))
    assert kept[0] == kept[1] == kept[2]


def test_materialise_is_deterministic_and_overwrites(tmp_path: Path) -> None:
    _write(_frame(), tmp_path / "d.csv")
    dst = tmp_path / "s.csv"
    dst.write_text("old contents\n")
    materialise_sample(tmp_path / "d.csv", dst, 0.05, "id", "label")
    first = dst.read_bytes()
    materialise_sample(tmp_path / "d.csv", dst, 0.05, "id", "label")
    assert dst.read_bytes() == first and b"old contents" not in first


def test_csv_values_survive_as_text(tmp_path: Path) -> None:
    src = tmp_path / "d.csv"
    src.write_text("id,v,empty\n007,1.50,\n008,NA,x\n009,1e3,\n", encoding="utf-8")
    dst = tmp_path / "s.csv"
    materialise_sample(src, dst, 0.9999, "id", None)
    keep = sluice.sample_mask(["007", "008", "009"], 0.9999)
    lines = src.read_text().splitlines()
    assert dst.read_text().splitlines() == [lines[0]] + [
        line for line, k in zip(lines[1:], keep, strict=True) if k]


def test_jsonl_lines_are_copied_verbatim(tmp_path: Path) -> None:
    records = [{"id": i, "big": 2**70 + i, "nested": {"z": [i]}, "t": "2024-01-01"}
               for i in range(500)]
    src = tmp_path / "d.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    dst = tmp_path / "s.jsonl"
    count = materialise_sample(src, dst, 0.2, "id", None)
    keep = sluice.sample_mask(list(range(500)), 0.2)
    assert dst.read_text().splitlines() == [
        json.dumps(r) for r, k in zip(records, keep, strict=True) if k]
    assert count == sum(keep)


def test_parquet_keeps_schema_and_types(tmp_path: Path) -> None:
    frame = _frame().assign(when=pd.date_range("2024-01-01", periods=N, freq="h"),
                            maybe=pd.array([None if i % 5 == 0 else i for i in range(N)],
                                           dtype="Int64"))
    src, dst = tmp_path / "d.parquet", tmp_path / "s.parquet"
    frame.to_parquet(src, index=False)
    materialise_sample(src, dst, 0.1, "maybe", "label")
    got = pd.read_parquet(dst)
    assert dict(got.dtypes) == dict(pd.read_parquet(src).dtypes)
    assert got["maybe"].isna().any() == (got["maybe"].isna().sum() > 0)


def test_stratified_file_sample_keeps_rare_class(tmp_path: Path) -> None:
    _write(_frame(), tmp_path / "d.parquet")
    count = materialise_sample(tmp_path / "d.parquet", tmp_path / "s.parquet", 0.01, "id",
                               "label")
    got = pd.read_parquet(tmp_path / "s.parquet")
    assert count == len(got)
    assert set(got["label"]) == {"a", "b", "rare"}


def test_composite_key(tmp_path: Path) -> None:
    frame = _frame()
    _write(frame, tmp_path / "d.parquet")
    count = materialise_sample(tmp_path / "d.parquet", tmp_path / "s.parquet", 0.2,
                               ["label", "n"])
    expected = sluice.sample(frame, 0.2, key=["label", "n"])
    assert count == len(expected)
    assert list(pd.read_parquet(tmp_path / "s.parquet")["id"]) == list(expected["id"])


def test_fraction_one_copies_byte_for_byte(tmp_path: Path) -> None:
    for name in ("d.csv", "d.parquet", "d.jsonl"):
        _write(_frame(), tmp_path / name)
        assert materialise_sample(tmp_path / name, tmp_path / f"s-{name}", 1.0, "id") == N
        assert (tmp_path / f"s-{name}").read_bytes() == (tmp_path / name).read_bytes()


def test_superset_when_rows_are_appended(tmp_path: Path) -> None:
    frame = _frame()
    _write(frame.iloc[:1000], tmp_path / "old.csv")
    _write(frame, tmp_path / "new.csv")
    materialise_sample(tmp_path / "old.csv", tmp_path / "s-old.csv", 0.1, "id", None)
    materialise_sample(tmp_path / "new.csv", tmp_path / "s-new.csv", 0.1, "id", None)
    old, new = _read(tmp_path / "s-old.csv"), _read(tmp_path / "s-new.csv")
    assert set(old["id"]) <= set(new["id"])
    assert set(new["id"]) - set(old["id"]) <= set(frame["id"].iloc[1000:])


def test_empty_inputs(tmp_path: Path) -> None:
    (tmp_path / "e.jsonl").write_text("")
    assert materialise_sample(tmp_path / "e.jsonl", tmp_path / "s.jsonl", 0.1, "id") == 0
    assert (tmp_path / "s.jsonl").read_text() == ""
    (tmp_path / "h.csv").write_text("id,x\n")
    assert materialise_sample(tmp_path / "h.csv", tmp_path / "s.csv", 0.1, "id") == 0
    assert (tmp_path / "s.csv").read_text() == "id,x\n"


# --------------------------------------------------------------------------- partitions

def test_directory_of_partitions(tmp_path: Path) -> None:
    frame = _frame()
    src = tmp_path / "parts"
    _write(frame.iloc[:1000], src / "label=a" / "part-0.parquet")
    _write(frame.iloc[1000:2000], src / "label=a" / "part-1.parquet")
    _write(frame.iloc[2000:], src / "part-2.pq")
    (src / "_SUCCESS").write_text("")
    (src / ".part-0.crc").write_text("x")
    dst = tmp_path / "out" / "parts"
    count = materialise_sample(src, dst, 0.1, "id", None)
    files = sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file())
    assert files == ["label=a/part-0.parquet", "label=a/part-1.parquet", "part-2.pq"]
    got = pd.concat([_read(dst / f) for f in files], ignore_index=True)
    expected = sluice.sample(frame, 0.1, key="id").reset_index(drop=True)
    assert count == len(got) == len(expected)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert sorted(os.listdir(dst.parent)) == ["parts"]  # no temporary folders left
    _write(frame.iloc[:10], src / "part-3.csv")  # one format per dataset, as validation reads it
    with pytest.raises(DataInvalid, match=r"mixes formats \(csv, parquet\)"):
        materialise_sample(src, dst, 0.1, "id", None)


def test_directory_stratified_over_the_whole_dataset(tmp_path: Path) -> None:
    frame = _frame()
    src = tmp_path / "parts"
    for i in range(3):
        _write(frame.iloc[i * 1000:(i + 1) * 1000], src / f"p{i}.parquet")
    dst = tmp_path / "sample"
    materialise_sample(src, dst, 0.001, "id", "label")
    got = pd.concat([pd.read_parquet(dst / f"p{i}.parquet") for i in range(3)])
    expected = sluice.sample(frame, 0.001, key="id", stratify="label")
    assert list(got["id"]) == list(expected["id"])
    assert got["label"].value_counts().to_dict() == expected["label"].value_counts().to_dict()
    assert set(got["label"]) == {"a", "b", "rare"}


def test_directory_replaces_an_existing_sample(tmp_path: Path) -> None:
    src = tmp_path / "parts"
    _write(_frame(), src / "p0.csv")
    dst = tmp_path / "sample"
    (dst / "stale").mkdir(parents=True)
    (dst / "stale" / "old.csv").write_text("id\n1\n")
    materialise_sample(src, dst, 0.5, "id", None)
    assert sorted(p.name for p in dst.iterdir()) == ["p0.csv"]


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("name", ["d.csv", "d.parquet", "d.jsonl"])
def test_missing_column_names_file_column_and_columns(tmp_path: Path, name: str) -> None:
    _write(_frame(), tmp_path / name)
    dst = tmp_path / f"s-{name}"
    dst.write_text("previous")
    with pytest.raises(UsageError) as info:
        materialise_sample(tmp_path / name, dst, 0.1, "user_id", None)
    text = str(info.value)
    assert name in text and "`user_id`" in text and "id, n, x, label, text" in text
    with pytest.raises(UsageError, match=r"(?s)stratify column `lable`.*did you mean `label`"):
        materialise_sample(tmp_path / name, dst, 0.1, "id", "lable")
    assert dst.read_text() == "previous"  # a failed sample leaves the old one alone
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, dst.name])


def test_missing_column_in_one_partition(tmp_path: Path) -> None:
    src = tmp_path / "parts"
    _write(_frame(), src / "p0.parquet")
    _write(_frame().drop(columns="label"), src / "p1.parquet")
    with pytest.raises(UsageError, match=r"`label`.*p1\.parquet"):
        materialise_sample(src, tmp_path / "s", 0.1, "id", "label")
    assert not (tmp_path / "s").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parts"]


@pytest.mark.parametrize("fraction", [0, -1, 1.5, math.nan])
def test_invalid_fraction(tmp_path: Path, fraction: float) -> None:
    _write(_frame(), tmp_path / "d.csv")
    with pytest.raises(UsageError, match="fraction"):
        materialise_sample(tmp_path / "d.csv", tmp_path / "s.csv", fraction, "id", None)


def test_bad_paths(tmp_path: Path) -> None:
    _write(_frame(), tmp_path / "d.csv")
    with pytest.raises(UsageError, match="does not exist"):
        materialise_sample(tmp_path / "nope.csv", tmp_path / "s.csv", 0.1, "id", None)
    with pytest.raises(UsageError, match="keeps its source's format"):
        materialise_sample(tmp_path / "d.csv", tmp_path / "s.parquet", 0.1, "id", None)
    (tmp_path / "d.txt").write_text("id\n1\n")
    with pytest.raises(DataInvalid, match="cannot tell the format"):
        materialise_sample(tmp_path / "d.txt", tmp_path / "s.txt", 0.1, "id", None)
    (tmp_path / "parts").mkdir()
    with pytest.raises(DataInvalid, match="holds no data files"):
        materialise_sample(tmp_path / "parts", tmp_path / "s", 0.1, "id", None)
    (tmp_path / "parts" / "notes.txt").write_text("x")
    with pytest.raises(DataInvalid, match=r"notes\.txt"):
        materialise_sample(tmp_path / "parts", tmp_path / "s", 0.1, "id", None)
    with pytest.raises(UsageError, match="is a file"):
        materialise_sample(tmp_path / "parts", tmp_path / "d.csv", 0.1, "id", None)


def test_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"id": 1}\n{oops\n')
    with pytest.raises(DataInvalid, match=r"bad\.jsonl:2: not valid JSON"):
        materialise_sample(tmp_path / "bad.jsonl", tmp_path / "s.jsonl", 0.1, "id", None)
    (tmp_path / "list.jsonl").write_text('[1, 2]\n')
    with pytest.raises(DataInvalid, match="must be an object"):
        materialise_sample(tmp_path / "list.jsonl", tmp_path / "s.jsonl", 0.1, "id", None)
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(DataInvalid, match="not a readable Parquet"):
        materialise_sample(tmp_path / "bad.parquet", tmp_path / "s.parquet", 0.1, "id", None)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataInvalid, match="empty"):
        materialise_sample(tmp_path / "empty.csv", tmp_path / "s.csv", 0.1, "id", None)


def test_key_hashes_of_file_values_match_frame_values() -> None:
    """Parquet ints with a null read back as floats in pandas: same keys either way."""
    assert key_hashes([1, None, 3]) == key_hashes([1.0, math.nan, 3.0])
