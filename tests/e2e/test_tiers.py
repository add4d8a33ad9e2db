"""End-to-end: tiers, cheap-before-expensive gating, budgets and the ledger."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import sluice
from tests.e2e.pipelines import write_project

PIPELINE = """\
params: params.yaml
stages:
  data:
    kind: transform
    cmd: echo rows > ${outs.table}
    outs: {table: build/data.txt}
  validate:
    kind: check
    cmd: test -s ${stages.data.outs.table}
  unit:
    kind: check
    cmd: test -f tests_pass
  features:
    kind: transform
    cmd: >-
      cp ${stages.data.outs.table} ${outs.f};
      echo "$SLUICE_FRACTION ${tier.fraction}" > ${outs.frac}
    outs: {f: build/features.txt, frac: build/fraction.txt}
  train:
    kind: train
    cmd: >-
      echo "seed $SLUICE_SEED" >> ../train-calls.log; sleep ${params.train.seconds};
      echo "model $SLUICE_SEED" > ${outs.model}; echo "$SLUICE_FRACTION" > ${outs.frac}
    inputs: [stages.features.outs.f]
    params: [train]
    outs: {model: build/model.txt, frac: build/train-fraction.txt}
  evaluate:
    kind: evaluate
    cmd: cat ${stages.train.outs.model} > ${outs.preds}
    outs: {preds: build/preds.txt}
models:
  m: {train: train, evaluate: evaluate, artifact: model}
tiers:
  pr:
    trigger: pull_request
    fraction: 0.02
    budget: {wall: 10m}
  nightly:
    trigger: {schedule: "0 3 * * *"}
    select: all
    seeds: 3
"""
PARAMS = "train:\n  seconds: 0\n"
# PIPELINE with its train stage on one GPU.
GPU_PIPELINE = PIPELINE.replace("    params: [train]\n",
                                "    params: [train]\n    resources: {gpus: 1}\n")


def project(repo: Path, extra: str = "", params: str = PARAMS, config: str = PIPELINE,
            files: dict[str, str] | None = None) -> Path:
    write_project(repo, config + extra,
                  files={"params.yaml": params, "tests_pass": "", **(files or {})})
    return repo


def run(repo: Path, *args: str, check: int = 0,
        env: dict[str, str] | None = None) -> dict[str, dict[str, object]]:
    result = sluice(repo, "run", "--json", *args, check=check, env=env)
    return {s["stage"]: s for s in json.loads(result.stdout)["stages"]}


def test_failing_check_gates_every_expensive_stage_and_only_those(repo: Path) -> None:
    project(repo)
    (repo / "tests_pass").unlink()
    stages = run(repo, "--tier", "pr", check=1)
    assert {s: v["status"] for s, v in stages.items()} == {
        "data": "ran", "validate": "ran", "unit": "failed",
        "features": "gated", "train": "gated", "evaluate": "gated"}
    assert stages["train"]["reason"] == "gated by failing check `unit`"
    plain = sluice(repo, "run", "--tier", "pr", check=1)
    assert "gated      train" in plain.stderr
    assert "did not start because a check failed" in plain.stdout
    assert not (repo.parent / "train-calls.log").exists()


def test_checks_run_before_expensive_stages(repo: Path) -> None:
    project(repo)
    result = sluice(repo, "run", "--tier", "pr", "--jobs", "4")
    order = [line.split()[1] for line in result.stderr.splitlines()
             if line.strip().startswith("ran")]
    assert order.index("unit") < order.index("features") < order.index("train")


def test_fraction_reaches_the_stage(repo: Path) -> None:
    project(repo)
    first = run(repo, "--tier", "pr")
    # Training sees the tier's fraction; a data step only through ${tier.fraction}.
    assert (repo / "build/train-fraction.txt").read_text() == "0.02\n"
    assert (repo / "build/fraction.txt").read_text() == "1.0 0.02\n"
    # The fraction is part of those fingerprints: a full run recomputes them, and
    # shares the data step that does not use it.
    stages = run(repo)
    assert first["data"]["status"] == "ran" and stages["data"]["status"] == "cached"
    assert stages["features"]["status"] == "ran" and stages["train"]["status"] == "ran"
    assert (repo / "build/fraction.txt").read_text() == "1.0 1.0\n"
    assert (repo / "build/train-fraction.txt").read_text() == "1.0\n"


def test_seeds_train_each_seed_and_leave_seed_0(repo: Path) -> None:
    project(repo)
    stages = run(repo, "--tier", "nightly")
    assert [s for s in stages if s.startswith("train")] == \
        ["train", "train@seed1", "train@seed2"]
    assert (repo.parent / "train-calls.log").read_text().split("\n")[:3] == \
        ["seed 0", "seed 1", "seed 2"]
    assert (repo / "build/model.txt").read_text() == "model 0\n"
    assert stages["data"]["status"] == "ran" and "data@seed1" not in stages
    again = run(repo, "--tier", "nightly")
    assert {v["status"] for v in again.values()} == {"cached"}


def test_unknown_tier_suggests_the_closest(repo: Path) -> None:
    project(repo)
    result = sluice(repo, "run", "--tier", "nightyl", check=2)
    assert "unknown tier `nightyl`; did you mean `nightly`?" in result.stderr


def _train_seconds(repo: Path, seconds: float) -> None:
    """Make the train stage take ``seconds`` (a new fingerprint: it runs again)."""
    (repo / "params.yaml").write_text(f"train:\n  seconds: {seconds}\n")


def _history(repo: Path, seconds: float = 0.5) -> None:
    """Build ledger history: the train stage takes ``seconds``."""
    _train_seconds(repo, seconds)
    run(repo)


def _ledger(repo: Path) -> sqlite3.Connection:
    return sqlite3.connect(repo / ".sluice/sluice.db")


def test_budget_refusal_before_start_says_which_budget_and_how_to_proceed(
        repo: Path) -> None:
    project(repo, extra="  tight:\n    select: all\n    budget: {wall: 0.3s}\n")
    _history(repo, 1.0)
    _train_seconds(repo, 1.01)
    plan = sluice(repo, "plan", "--tier", "tight").stdout
    assert "est. 1.0 s from 1 run(s)" in plan and "OVER BUDGET" in plan
    result = sluice(repo, "run", "--tier", "tight", check=3)
    assert "run of tier `tight` refused" in result.stderr
    assert "tier `tight` budget: wall estimate" in result.stderr
    assert "--allow-over-budget" in result.stderr and "fraction" in result.stderr
    assert (repo.parent / "train-calls.log").read_text().count("seed") == 1
    # The override runs it anyway; the tier's wall budget then stops the stage.
    stages = run(repo, "--tier", "tight", "--allow-over-budget", check=3)
    assert stages["train"]["status"] == "budget"


def test_stage_killed_by_the_tier_budget_with_its_process_group(repo: Path) -> None:
    marker = f"sluice-budget-marker-{os.getpid()}"
    extra = "  quick:\n    select: [slow]\n    budget: {wall: 1.5s}\n"
    spawn = ("import subprocess, sys, time\n"
             "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', "
             f"'{marker}'])\n"
             "time.sleep(60)\n")
    config = PIPELINE.replace(
        "stages:\n", f"stages:\n  slow:\n    kind: train\n    cmd: {sys.executable} spawn.py\n",
        1)
    project(repo, extra, config=config, files={"spawn.py": spawn})
    stages = run(repo, "--tier", "quick", check=3)
    assert stages["slow"]["status"] == "budget"
    assert "tier `quick` budget (wall) is spent" in str(stages["slow"]["reason"])
    from tests.e2e.test_failures import _alive_in_group

    deadline = time.monotonic() + 30
    while _alive_in_group(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _alive_in_group(marker) == []


def test_period_budget_sums_runs_and_refuses_when_spent(repo: Path) -> None:
    extra = ("prices: {cpu_hour: 3600}\n"  # one dollar per CPU-second
             "budgets:\n  weekly: {usd: 100, tiers: [nightly, full]}\n"
             "  daily_all: {window: 1d, cpu_hours: 100}\n")
    project(repo, extra=PIPELINE_TIER_FULL + extra)
    _history(repo, 0.6)  # default tier: not in the weekly budget's tiers
    _train_seconds(repo, 0.61)
    run(repo, "--tier", "full")
    report = json.loads(sluice(repo, "budget", "--json").stdout)
    weekly = next(p for p in report["periods"] if p["name"] == "weekly")
    # A 0.61 s stage costs at least $0.6; how much more depends on the machine's load.
    assert weekly["spent"]["runs"] == 1 and 0.6 < weekly["spent"]["usd"] < 10
    daily = next(p for p in report["periods"] if p["name"] == "daily_all")
    assert daily["spent"]["runs"] == 2
    assert set(report["tiers"]) >= {"default", "full"}
    _train_seconds(repo, 0.62)
    run(repo, "--tier", "full")
    report = json.loads(sluice(repo, "budget", "--json").stdout)
    spent = next(p for p in report["periods"] if p["name"] == "weekly")["spent"]["usd"]
    # Less left than one more run costs (≥ $0.6), whatever the two runs cost here.
    config = (repo / "sluice.yaml").read_text()
    (repo / "sluice.yaml").write_text(config.replace("usd: 100", f"usd: {spent + 0.3:.3f}"))
    _train_seconds(repo, 0.63)
    result = sluice(repo, "run", "--tier", "full", check=3)
    assert "weekly budget: usd estimate" in result.stderr
    text = sluice(repo, "budget").stdout
    assert "weekly (last 7 days, nightly, full, 2 runs)" in text


PIPELINE_TIER_FULL = "  full:\n    select: all\n"


def test_skip_expensive_runs_checks_and_skips_training(repo: Path) -> None:
    project(repo, extra="  thrifty:\n    select: all\n    budget: {wall: 0.2s}\n"
                        "    on_budget: skip-expensive\n")
    _history(repo, 0.5)
    _train_seconds(repo, 0.51)
    stages = run(repo, "--tier", "thrifty", check=3)
    assert stages["unit"]["status"] == "cached" and stages["features"]["status"] == "cached"
    assert stages["train"]["status"] == "budget"
    assert "skip-expensive" in str(stages["train"]["reason"])


def test_gpu_accounting_uses_nvml_type_and_price(repo: Path, tmp_path: Path) -> None:
    fake = tmp_path / "fake_nvml"
    fake.mkdir()
    # NVML mocked at the library boundary: a stand-in `pynvml` module.
    (fake / "pynvml.py").write_text(
        "def nvmlInit(): pass\n"
        "def nvmlShutdown(): pass\n"
        "def nvmlDeviceGetCount(): return 1\n"
        "def nvmlDeviceGetHandleByIndex(i): return i\n"
        "def nvmlDeviceGetName(h): return b'NVIDIA H100 80GB HBM3'\n")
    project(repo, "prices: {gpu_hour: {a100: 3600, h100: 7200}}\n",
            params="train:\n  seconds: 0.3\n", config=GPU_PIPELINE)
    env = {"SLUICE_GPUS": "1",
           "PYTHONPATH": f"{fake}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    run(repo, env=env)
    db = _ledger(repo)
    wall, gpu_s, gpu_type, cost = db.execute(
        "SELECT wall_s, gpu_s, gpu_type, cost_usd FROM executions WHERE stage='train'"
    ).fetchone()
    assert gpu_type == "NVIDIA H100 80GB HBM3"
    assert gpu_s == pytest.approx(wall)
    assert cost == pytest.approx(2 * gpu_s)  # $7200 per GPU-hour = $2 per GPU-second


def test_unknown_gpu_type_in_prices_is_a_clear_error(repo: Path) -> None:
    project(repo, "prices: {gpu_hour: {a100: 3.4}, gpu_type: t4}\nbudgets:\n  daily: {usd: 9}\n",
            config=GPU_PIPELINE)
    result = sluice(repo, "run", check=2, env={"SLUICE_GPUS": "1"})
    assert "no GPU price for GPU type `t4`" in result.stderr
    assert "prices.gpu_hour" in result.stderr


def test_locked_ledger_is_a_clear_error_and_writes_nothing(repo: Path) -> None:
    project(repo)
    run(repo)  # creates the database
    _train_seconds(repo, 0.01)
    holder = sqlite3.connect(repo / ".sluice/sluice.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = sluice(repo, "run", check=1, env={"SLUICE_DB_BUSY_TIMEOUT": "0.5"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "cannot record the run" in result.stderr and "locked" in result.stderr
    assert "Traceback" not in result.stderr
    rows = _ledger(repo).execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    assert rows == 1


def test_unreachable_database_url(repo: Path) -> None:
    project(repo)
    result = sluice(repo, "budget", check=1, env={
        "SLUICE_DATABASE_URL": "postgresql+psycopg://sluice:hunter2@127.0.0.1:9/ledger"})
    assert "cannot use the database postgresql+psycopg://sluice:***@127.0.0.1:9/ledger" \
        in result.stderr
    assert "hunter2" not in result.stderr


def test_clock_going_backwards_is_reported(repo: Path) -> None:
    project(repo)
    run(repo)
    db = _ledger(repo)
    db.execute("UPDATE runs SET started_at = ?", (time.time() + 3600,))
    db.commit()
    db.close()
    text = sluice(repo, "budget").stdout
    assert "dated in the future: the clock went backwards" in text


@pytest.mark.parametrize(("snippet", "message"), [
    ("  bad:\n    trigger: {schedule: '61 * * * *'}\n", "minute `61` in `61 * * * *`"),
    ("  bad:\n    fraction: 1.5\n", "`fraction` of tier `bad` must be at most 1"),
    ("  bad:\n    fraction: 0\n", "`fraction` of tier `bad` must be a number greater than 0"),
    ("  bad:\n    budget: {usd: -5}\n", "`budget.usd` of tier `bad` must be greater than 0"),
    ("  bad:\n    budget: {wall: 0s}\n", "`budget.wall` of tier `bad` must be"),
])
def test_bad_tier_config(repo: Path, snippet: str, message: str) -> None:
    project(repo, extra=snippet)
    result = sluice(repo, "plan", check=2)
    assert message in result.stderr, result.stderr


def _sampled_project(repo: Path, config: str, csv: str) -> None:
    """``config`` with 2,000 customers (a quarter churned) in ``csv`` and a tier `pr`
    that samples 10% of its datasets, run once in that tier."""
    rows = "".join(f"{i},{i % 4 == 0:d}\n" for i in range(2000))
    write_project(repo, config + "tiers:\n  pr: {fraction: 0.1}\n",
                  files={csv: "id,churned\n" + rows})
    run(repo, "--tier", "pr")


def test_dataset_sample_is_materialised_for_smoke_runs(repo: Path) -> None:
    config = """\
datasets:
  customers: {path: data/customers.csv, sample: {key: id, stratify: churned}}
stages:
  count:
    cmd: tail -n +2 ${datasets.customers} | wc -l > ${outs.n}
    inputs: [datasets.customers]
    outs: {n: build/n.txt}
"""
    _sampled_project(repo, config, "data/customers.csv")
    smoke = int((repo / "build/n.txt").read_text())
    assert 150 < smoke < 250
    assert run(repo, "--tier", "pr")["count"]["status"] == "cached"
    run(repo)
    assert int((repo / "build/n.txt").read_text()) == 2000
    # The same sample again: restored from the cache, not recomputed.
    assert run(repo, "--tier", "pr")["count"]["restored"] is True
    assert int((repo / "build/n.txt").read_text()) == smoke


def test_an_evaluate_stage_reads_a_sampled_dataset_in_full(repo: Path) -> None:
    # A sampled test split left the baseline without most of its ids: every smoke gate
    # was INCONCLUSIVE. Training stages see the sample; evaluate stages never do.
    config = """\
datasets:
  holdout: {path: data/holdout.csv, sample: {key: id}}
stages:
  fit:
    kind: train
    cmd: tail -n +2 ${datasets.holdout} | wc -l > ${outs.n}
    inputs: [datasets.holdout]
    outs: {n: build/fit.txt}
  score:
    kind: evaluate
    cmd: tail -n +2 ${datasets.holdout} | wc -l > ${outs.n}
    inputs: [datasets.holdout]
    outs: {n: build/score.txt}
"""
    _sampled_project(repo, config, "data/holdout.csv")
    assert 150 < int((repo / "build/fit.txt").read_text()) < 250
    assert int((repo / "build/score.txt").read_text()) == 2000


def test_an_executors_own_prices_cost_and_estimate_its_stages(repo: Path) -> None:
    priced = """\
prices: {cpu_hour: 3600}                 # one dollar per CPU-second here
executors:
  pricey: {type: local, prices: {cpu_hour: 36000}}   # ten there
stages:
  here: {cmd: 'sleep 0.2; echo a > ${outs.o}', outs: {o: build/a.txt}, params: [p]}
  there: {executor: pricey, cmd: 'sleep 0.2; echo b > ${outs.o}', outs: {o: build/b.txt},
          params: [p]}
params: params.yaml
tiers:
  capped: {select: all, budget: {usd: 1000}}
"""
    write_project(repo, priced, files={"params.yaml": "p: 1\n"})
    run(repo, "--tier", "capped")
    db = _ledger(repo)
    cost = {stage: (usd, cpu_alloc) for stage, usd, cpu_alloc in db.execute(
        "SELECT stage, cost_usd, cpu_alloc_s FROM executions")}
    assert cost["here"][0] == pytest.approx(cost["here"][1])
    assert cost["there"][0] == pytest.approx(10 * cost["there"][1])

    # Estimates use the prices where the stage will run, not what history paid.
    (repo / "sluice.yaml").write_text(priced.replace("36000", "72000"))
    (repo / "params.yaml").write_text("p: 2\n")
    plan = json.loads(sluice(repo, "plan", "--tier", "capped", "--json").stdout)
    estimates = plan["budget"]["estimates"]
    assert estimates["here"]["usd"] == pytest.approx(estimates["here"]["cpu_alloc_s"])
    assert estimates["there"]["usd"] == pytest.approx(20 * estimates["there"]["cpu_alloc_s"])
