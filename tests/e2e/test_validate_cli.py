"""End-to-end: `sluice data validate` and `sluice data infer` through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tests.conftest import sluice


def _write(repo: Path, datasets: str) -> None:
    (repo / "sluice.yaml").write_text("datasets:\n" + datasets)


def test_infer_validate_and_exit_codes(repo: Path) -> None:
    (repo / "data").mkdir()
    frame = pd.DataFrame({"id": range(50), "plan": ["basic", "pro"] * 25,
                          "age": [20 + i % 40 for i in range(50)]})
    frame.to_csv(repo / "data/c.csv", index=False)
    bad = frame.copy()
    bad.loc[4, "age"] = -1
    bad.loc[9, "plan"] = "gold"
    bad.to_csv(repo / "data/bad.csv", index=False)
    _write(repo, "  c: data/c.csv\n")
    out = sluice(repo, "data", "infer", "c").stdout
    assert "wrote schemas/c.yaml" in out
    assert "already exists" in sluice(repo, "data", "infer", "c", check=2).stderr
    sluice(repo, "data", "infer", "c", "--force")

    _write(repo, "  c: {path: data/c.csv, schema: schemas/c.yaml}\n"
                 "  bad: {path: data/bad.csv, schema: schemas/c.yaml}\n")
    assert "c: OK (50 rows" in sluice(repo, "data", "validate", "c").stdout
    result = sluice(repo, "data", "validate", "--json", check=1)
    report = json.loads(result.stdout)
    assert report["ok"] is False
    by_name = {d["dataset"]: d for d in report["datasets"]}
    assert by_name["c"]["ok"] and by_name["c"]["cached"]
    failures = {(f["column"], f["check"]): f for f in by_name["bad"]["failures"]}
    assert set(failures) == {("age", "min"), ("plan", "allowed")}
    assert failures[("age", "min")]["examples"] == [{"row": 4, "value": -1}]
    assert failures[("plan", "allowed")]["failing_rows"] == 1
    markdown = sluice(repo, "data", "validate", "bad", "--format", "markdown", check=1).stdout
    assert "| `plan` | allowed | 1 |" in markdown
    assert "did you mean `bad`" in sluice(repo, "data", "validate", "bda", check=2).stderr


def test_schema_errors_and_unreadable_data(repo: Path) -> None:
    (repo / "schemas").mkdir()
    (repo / "schemas/s.yaml").write_text("columns:\n  id: {dtype: int64, uniqe: true}\n")
    (repo / "d.csv").write_text("id\n1\n2,3\n")
    _write(repo, "  d: {path: d.csv, schema: schemas/s.yaml}\n  raw: d.csv\n")
    err = sluice(repo, "data", "validate", "d", check=2).stderr
    assert "unknown column check `uniqe`; did you mean `unique`? (schemas/s.yaml:2:22)" in err
    (repo / "schemas/s.yaml").write_text("columns:\n  id: {dtype: int64}\n")
    err = sluice(repo, "data", "validate", "d", check=1).stderr
    assert "malformed CSV" in err and "row 1 has 2 field(s)" in err
    assert "has no schema" in sluice(repo, "data", "validate", "raw", check=2).stderr
