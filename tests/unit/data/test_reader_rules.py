"""One rule set for which files of a dataset folder count: validation and sampling agree."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd  # type: ignore[import-untyped, unused-ignore]
import pytest

from sluice.data.sampling import materialise_sample
from sluice.data.validation.readers import iter_chunks
from sluice.errors import DataInvalid


def _lines(path: Path, ids: range) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": i, "x": i / 10}) + "\n" for i in ids))


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "events"
    _lines(folder / "part-0.jsonl", range(0, 5))
    _lines(folder / "day=2" / "part-1.json", range(5, 9))  # Spark writes JSON lines as .json
    _lines(folder / ".hidden.jsonl", range(100, 103))
    _lines(folder / "_temporary" / "part-2.jsonl", range(200, 203))
    (folder / "_SUCCESS").write_text("")
    (folder / ".part-0.jsonl.crc").write_bytes(b"\x00")
    return folder


def _sampled_ids(folder: Path, dst: Path) -> list[int]:
    materialise_sample(folder, dst, 1.0, "id")
    ids = []
    for file in sorted(p for p in dst.rglob("*") if p.is_file()):
        ids += [json.loads(line)["id"] for line in file.read_text().splitlines()]
    return ids


def test_validation_and_sampling_read_the_same_rows(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    validated = pd.concat(list(iter_chunks(folder)))["id"].tolist()
    assert sorted(validated) == list(range(9))  # hidden and `_` files and folders are not data
    assert _sampled_ids(folder, tmp_path / "sample") == validated


def test_an_unknown_file_is_an_error_for_both(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "day=2" / "notes.txt").write_text("not data")
    with pytest.raises(DataInvalid, match=r"notes\.txt.*not a CSV, Parquet or JSON-lines"):
        list(iter_chunks(folder))
    with pytest.raises(DataInvalid, match=r"notes\.txt.*not a CSV, Parquet or JSON-lines"):
        materialise_sample(folder, tmp_path / "sample", 0.5, "id")
    # An explicit format reads every (non-hidden) file in it: here the .txt fails as JSON.
    with pytest.raises(DataInvalid, match=r"notes\.txt:1: not valid JSON"):
        list(iter_chunks(folder, "jsonl"))


def test_a_json_document_is_refused_at_its_first_line(tmp_path: Path) -> None:
    data = tmp_path / "d.json"
    data.write_text('[\n  {"id": 1}\n]\n')
    with pytest.raises(DataInvalid, match=r"d\.json:1: not valid JSON"):
        list(iter_chunks(data))
    with pytest.raises(DataInvalid, match=r"d\.json:1: not valid JSON"):
        materialise_sample(data, tmp_path / "s.json", 0.5, "id")
