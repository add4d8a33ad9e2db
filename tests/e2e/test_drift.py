"""End-to-end: drift against the base revision, from git and from sluice.lock pins."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import git, sluice

ROWS = 4000


def _customers(seed: int, income_mean: float = 50.0, plan_p: tuple[float, ...] = (
        1 / 3, 1 / 3, 1 / 3)) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"age": rng.integers(18, 80, ROWS),
                         "income": rng.normal(income_mean, 10, ROWS),
                         "plan": rng.choice(["basic", "pro", "max"], ROWS, p=list(plan_p))})


def _commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def _project(repo: Path, on_drift: str, path: str = "data/customers.csv") -> Path:
    (repo / "sluice.yaml").write_text(f"""\
datasets:
  customers:
    path: {path}
    drift: {{reference: base, on_drift: {on_drift}, columns: {{age: {{ignore: true}}}}}}
stages:
  train:
    kind: train
    cmd: python -c "print('trained')" > ${{outs.model}}
    inputs: [datasets.customers]
    outs: {{model: model.txt}}
""")
    (repo / "data").mkdir(exist_ok=True)
    return repo


def test_a_drift_failure_gates_training_and_is_reported(repo: Path) -> None:
    _project(repo, "fail")
    _customers(0).to_csv(repo / "data/customers.csv", index=False)
    _commit(repo, "base")
    # No shift (a fresh sample of the same distributions): nothing drifts.
    _customers(1).to_csv(repo / "data/customers.csv", index=False)
    same = sluice(repo, "data", "drift", "customers", "--base", "main", "--json")
    assert json.loads(same.stdout)["drifted"] == []
    # The income mean moves by 0.6 sd and a plan takes 30 more points.
    _customers(2, income_mean=56, plan_p=(0.6, 0.2, 0.2)).to_csv(
        repo / "data/customers.csv", index=False)
    found = json.loads(sluice(repo, "data", "drift", "customers", "--base", "main", "--json",
                              check=1).stdout)
    assert found["reference"].startswith("base ")
    assert sorted(found["drifted"]) == ["income", "plan"]
    assert found["ignored"] == ["age"]
    run = sluice(repo, "run", "--base", "main", check=1)
    assert "drift FAIL against base" in run.stdout + run.stderr
    assert "gated by failing check `drift-customers`" in run.stdout + run.stderr
    assert not (repo / "model.txt").exists()
    report = json.loads(sluice(repo, "report", "--json").stdout)
    assert report["data"]["drift"][0]["failed"] is True
    folder = repo / ".sluice/reports" / report["run_id"]
    assert len(report["data"]["images"]) == 2
    assert all((folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
               for name in report["data"]["images"])
    assert "### Drift of `customers` against base" in (folder / "report.md").read_text()


def test_a_warning_does_not_stop_the_run(repo: Path) -> None:
    _project(repo, "warn")
    _customers(0).to_csv(repo / "data/customers.csv", index=False)
    _commit(repo, "base")
    _customers(2, income_mean=60).to_csv(repo / "data/customers.csv", index=False)
    run = sluice(repo, "run", "--base", "main")
    assert "drift warning against base" in run.stdout + run.stderr
    assert (repo / "model.txt").read_text() == "trained\n"
    # A plain run has no base revision to compare with: no drift, and no noise about it.
    run = sluice(repo, "run", "--force")
    assert "drift" not in run.stdout + run.stderr


@pytest.mark.slow
def test_pinned_parquet_reference_comes_from_the_store(repo: Path) -> None:
    _project(repo, "fail", path="data/customers")
    folder = repo / "data/customers"
    folder.mkdir(parents=True)
    frame = _customers(0)
    frame.iloc[:2000].to_parquet(folder / "part-0.parquet")
    frame.iloc[2000:].to_parquet(folder / "part-1.parquet")
    sluice(repo, "data", "add", "data/customers")
    _commit(repo, "base with pinned data")
    shifted = _customers(3, income_mean=58)
    shifted.to_parquet(folder / "part-0.parquet")
    (folder / "part-1.parquet").unlink()
    sluice(repo, "data", "add", "data/customers")
    found = json.loads(sluice(repo, "data", "drift", "customers", "--base", "main", "--json",
                              check=1).stdout)
    assert found["reference_rows"] == ROWS and found["current_rows"] == ROWS
    assert "income" in found["drifted"]
    missing = sluice(repo, "data", "drift", "nope", "--base", "main", check=2)
    assert "no dataset named `nope`" in missing.stderr
