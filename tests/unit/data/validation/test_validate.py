"""The project API: datasets by name, the result cache, and inference round trips."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sluice.data.validation import engine as engine_module
from sluice.data.validation import infer_schema, validate_dataset, validate_datasets
from sluice.data.validation.render import render_json, render_markdown, render_text
from sluice.errors import UsageError
from sluice.workspace.project import load_project
from tests.unit.data.validation._helpers import write

SCHEMA = "columns:\n  id: {dtype: int64, unique: true}\n  age: {dtype: int64, min: 0}\n"


def _customers(n: int = 400, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "customer_id": np.arange(n), "age": rng.integers(18, 90, n),
        "plan": rng.choice(["basic", "pro", "enterprise"], n),
        "score": rng.random(n), "email": [f"u{i}@example.com" for i in range(n)],
        "signup": pd.date_range("2021-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
    })


def _project(root: Path, datasets: str, files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "sluice.yaml").write_text("datasets:\n" + datasets)
    for rel, text in (files or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_cached_result_does_not_read_the_data(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    root = _project(tmp_path / "p", "  d: {path: d.parquet, schema: s.yaml}\n",
                    {"s.yaml": SCHEMA})
    write(pd.DataFrame({"id": [1, 2, 2], "age": [1, -1, 3]}), root / "d.parquet")
    project = load_project(root)
    first = validate_dataset(project, "d")
    assert not first.ok and not first.cached
    reads: list[Path] = []
    real = engine_module.iter_parts
    monkeypatch.setattr(engine_module, "iter_parts",
                        lambda path, *a, **k: reads.append(path) or real(path, *a, **k))
    again = validate_dataset(load_project(root), "d")
    assert again.cached and reads == []
    assert again.to_json()["failures"] == first.to_json()["failures"]
    (root / "s.yaml").write_text(SCHEMA.replace("min: 0", "min: -5"))  # new schema: re-read
    third = validate_dataset(load_project(root), "d")
    assert not third.cached and reads and [f.check for f in third.failures] == ["unique"]
    assert not validate_dataset(load_project(root), "d", use_cache=False).cached


def test_unknown_dataset_and_missing_schema(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", "  customers: {path: d.csv}\n")
    project = load_project(root)
    with pytest.raises(UsageError, match="unknown dataset `custmers`; did you mean `customers`"):
        validate_dataset(project, "custmers")
    with pytest.raises(UsageError, match="dataset `customers` has no schema") as info:
        validate_dataset(project, "customers")
    assert "sluice data infer customers" in (info.value.hint or "")
    assert validate_datasets(project, None) == []


def test_infer_round_trip_and_corrupted_copy(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", "  c: {path: data/c.csv}\n")
    write(_customers(), root / "data/c.csv")
    out = infer_schema(load_project(root), "c", None, False)
    assert out == root / "schemas/c.yaml"
    text = out.read_text()
    assert text.startswith("# Inferred by `sluice data infer c`")
    assert "customer_id: {dtype: int64, nullable: false, min: 0, max: 439, unique: true}" in text
    assert "plan: {dtype: string, nullable: false, allowed: [basic, enterprise, pro]}" in text
    assert "signup: {dtype: date" in text and "rows: {min: 200}" in text
    with pytest.raises(UsageError, match="already exists"):
        infer_schema(load_project(root), "c", None, False)
    infer_schema(load_project(root), "c", None, True)

    (root / "sluice.yaml").write_text(
        "datasets:\n  c: {path: data/c.csv, schema: schemas/c.yaml}\n"
        "  bad: {path: data/bad.csv, schema: schemas/c.yaml}\n")
    bad = _customers()
    bad.loc[3, "age"] = -4
    bad.loc[5, "plan"] = "platinum"
    bad.loc[7, "score"] = None
    bad = bad.rename(columns={"email": "e_mail"})
    write(bad, root / "data/bad.csv")
    good, broken = validate_datasets(load_project(root), None)
    assert good.ok, render_text([good])
    found = {(f.column, f.check): f for f in broken.failures}
    assert set(found) == {("age", "min"), ("plan", "allowed"), ("score", "nullable"),
                          ("email", "required"), ("e_mail", "strict")}
    assert found[("age", "min")].examples[0].value == -4
    assert found[("plan", "allowed")].examples[0].row == 5
    text = render_text([good, broken])
    assert "bad: FAILED, 5 check(s)" in text and "e.g. 'platinum' (row 5)" in text
    markdown = render_markdown([broken])
    assert "| `age` | min | 1 | values below min " in markdown and "| -4 (row 3) |" in markdown
    assert render_json([good, broken])["ok"] is False


def test_infer_parquet_folder_with_categories_and_nulls(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", "  e: {path: data/e}\n")
    frame = _customers(60).assign(plan=lambda f: f.plan.astype("category"),
                                  score=lambda f: f.score.mask(f.index % 7 == 0))
    write(frame.iloc[:30], root / "data/e/part-0.parquet")
    write(frame.iloc[30:], root / "data/e/part-1.parquet")
    out = infer_schema(load_project(root), "e", Path("schemas/events.yaml"), False)
    text = out.read_text()
    assert "plan: {dtype: category" in text
    assert "score: {dtype: float64, nullable: true, min: 0.0" in text
    shutil.copy(out, root / "schemas/e.yaml")
    (root / "sluice.yaml").write_text("datasets:\n  e: {path: data/e, schema: schemas/e.yaml}\n")
    result = validate_dataset(load_project(root), "e")
    assert result.ok and result.rows == 60 and result.files == 2
