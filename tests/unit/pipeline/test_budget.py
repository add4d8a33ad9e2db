"""Budgets: cron checks, prices, estimates from synthetic ledger history, the tracker."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sluice.config.checks import cron_problem
from sluice.config.schema import BudgetSpec, PricesSpec
from sluice.db import open_database
from sluice.errors import ConfigError
from sluice.pipeline.budget import Amounts, Limit, Tracker, check
from sluice.pipeline.costs import Rates, gpu_price
from sluice.pipeline.ledger import Execution, RunRecord, estimates, record_run, spend_since


@pytest.mark.parametrize("expression", ["0 3 * * *", "*/15 * * * 1-5", "0 0 1 jan,jul *",
                                        "30 2 * * sun", "0 */6 1-31/2 * 0,7"])
def test_valid_cron(expression: str) -> None:
    assert cron_problem(expression) is None


@pytest.mark.parametrize(("expression", "problem"), [
    ("0 3 * *", "has 4 field(s)"),
    ("60 * * * *", "minute `60`"),
    ("0 24 * * *", "hour `24`"),
    ("0 0 0 * *", "day of month `0`"),
    ("0 0 * 13 *", "month `13`"),
    ("0 0 * * 8", "day of week `8`"),
    ("0 0 * * fun", "day of week `fun`"),
    ("*/0 * * * *", "step `/0`"),
    ("a b c d e", "minute `a`"),
    ("1-2-3 * * * *", "is not a valid minute"),
])
def test_invalid_cron(expression: str, problem: str) -> None:
    found = cron_problem(expression)
    assert found is not None and problem in found


def test_gpu_price_by_type_substring_and_default() -> None:
    prices = PricesSpec(gpu_hour={"a100": 3.4, "h100": 4.9, "default": 2.0})
    assert gpu_price(prices, "NVIDIA H100 80GB HBM3") == 4.9
    assert gpu_price(prices, "NVIDIA A100-SXM4-80GB") == 3.4
    assert gpu_price(prices, "Tesla T4") == 2.0
    assert gpu_price(PricesSpec(gpu_hour=1.5), "anything") == 1.5
    with pytest.raises(ConfigError, match="no GPU price for GPU type `Tesla T4`"):
        gpu_price(PricesSpec(gpu_hour={"a100": 3.4}), "Tesla T4")


def _execution(stage: str, wall: float, fraction: float, started: float,
               outcome: str = "ran", tier: str = "pr") -> Execution:
    return Execution("r", stage, "train", tier, None, started, wall, wall, wall, 0.0, None,
                     None, wall * 0.001, outcome, fraction, 0, None, None)


def test_estimates_are_the_median_of_recent_runs_scaled_by_fraction(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
    now = time.time()
    history = [_execution("train", w, 1.0, now - 100 + i) for i, w in enumerate([10, 30, 20])]
    history += [_execution("train", 1.0, 0.1, now - 50)]   # 10 s at full data
    history += [_execution("train", 999, 1.0, now - 10, outcome="failed")]  # ignored
    history += [_execution("train", 5, 1.0, now - 1000 + i) for i in range(20)]  # too old
    record_run(db, RunRecord("r", "pr", now, 1.0, "ok", None, None, None, 0.0), history)
    found = estimates(db, ["train", "never"], fraction=0.5)
    # The last 10 successful runs: 10 (scaled from 0.1), 20, 30, 10 and six old 5 s runs;
    # their median is 5 s at full data, so 2.5 s at half.
    assert found["train"].samples == 10
    assert found["train"].wall_s == pytest.approx(0.5 * 5)
    assert estimates(db, ["train"], fraction=1.0)["train"].wall_s == pytest.approx(5.0)
    assert not found["never"].known and found["never"].samples == 0


def test_spend_since_filters_by_window_and_tier(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
    now = time.time()
    for run_id, tier, started, cost in [("a", "pr", now - 10, 1.0), ("b", "merge", now - 20, 2.0),
                                        ("c", "pr", now - 10_000, 4.0)]:
        record_run(db, RunRecord(run_id, tier, started, 60.0, "ok", None, None, None, cost),
                   [_execution("s", 60.0, 1.0, started, tier=tier)])
    assert spend_since(db, now - 100).usd == pytest.approx(3.0)
    recent_pr = spend_since(db, now - 100, ["pr"])
    assert recent_pr.usd == pytest.approx(1.0) and recent_pr.runs == 1
    assert recent_pr.cpu_hours == pytest.approx(60 / 3600)


def test_check_reports_each_exceeded_budget() -> None:
    from sluice.pipeline.ledger import Estimate

    limits = [Limit("tier `pr` budget", BudgetSpec(wall=100.0)),
              Limit("weekly budget", BudgetSpec(usd=10.0), Amounts(usd=9.5))]
    result = check(limits, {"a": Estimate("a", 3, 80.0, 80.0, 0.0, 0.3),
                            "b": Estimate("b", 1, 30.0, 30.0, 0.0, 0.3),
                            "c": Estimate("c", 0)})
    assert not result.ok and result.unknown == ["c"]
    assert result.over[0].startswith("tier `pr` budget: wall estimate 1 min 50 s exceeds")
    assert "weekly budget: usd estimate $0.60 exceeds what is left, $0.50 of $10.00" \
        in result.over[1]


def test_tracker_caps_stage_time_by_the_tightest_budget() -> None:
    rates = Rates(cpu_per_s=0.01, gpu_per_s=0.0, per_run=0.0, gpu_type=None)
    tracker = Tracker([Limit("tier `pr` budget", BudgetSpec(wall=100.0, usd=1.0))], rates)
    seconds, which = tracker.time_limit(cpus=2, gpus=0) or (0.0, "")
    assert seconds == pytest.approx(50.0, abs=0.5) and "usd" in which  # $1 at $0.02/s
    tracker.charge(wall_s=50.0, cpus=2, gpus=0)
    assert tracker.exhausted() == "tier `pr` budget (usd) is spent"


def test_one_type_for_budget_quantities() -> None:
    """Estimates, spend and limits are the same four quantities under the same names."""
    import dataclasses

    from sluice.pipeline.budget import UNITS
    from sluice.pipeline.ledger import Amounts as LedgerAmounts
    from sluice.pipeline.ledger import Spend

    assert Amounts is LedgerAmounts and issubclass(Spend, Amounts)
    assert tuple(f.name for f in dataclasses.fields(Amounts)) == UNITS
    assert tuple(BudgetSpec.model_fields) == UNITS
    spent = Spend(60.0, 1.0, 0.5, 2.0, runs=3)
    limit = Limit("weekly budget", BudgetSpec(wall=120, usd=10.0), spent)
    assert (limit.left("wall"), limit.left("usd"), limit.left("gpu_hours")) == (60.0, 8.0, None)


def test_estimates_use_runs_at_the_same_fraction_unscaled(tmp_path: Path) -> None:
    # An evaluate stage reads the full test set in every tier: it takes 4 s in a full
    # run and in a smoke run alike, and scaling its history by the fraction was wrong.
    db = open_database(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
    now = time.time()
    history = [_execution("evaluate", 4.0, 1.0, now - 100 + i) for i in range(5)]
    history += [_execution("evaluate", 4.0, 0.07, now - 50 + i) for i in range(2)]
    history += [_execution("train", 60.0, 1.0, now - 40)]
    record_run(db, RunRecord("r", "pr", now, 1.0, "ok", None, None, None, 0.0), history)
    found = estimates(db, ["evaluate", "train"], fraction=0.07)
    assert found["evaluate"].wall_s == pytest.approx(4.0) and found["evaluate"].samples == 2
    assert found["evaluate"].usd == pytest.approx(0.004)
    # No history at this fraction: the other runs, scaled to it.
    assert found["train"].wall_s == pytest.approx(60.0 * 0.07)
    assert estimates(db, ["evaluate"], fraction=1.0)["evaluate"].wall_s == pytest.approx(4.0)
