"""Gate methods (mcnemar, delong): refused at load where they cannot compute what the gate
names, decided by the test they name, INCONCLUSIVE on weights, combined over seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sluice.config.schema import GateSpec
from sluice.errors import UsageError
from sluice.evaluate.gates import _interval, evaluate_model
from sluice.stats import paired as S
from sluice.stats.prediction_columns import from_arrays
from sluice.stats.predictions import Predictions
from sluice.workspace.project import load_project
from tests.conftest import sluice
from tests.unit._util import load, problems, recorded_result

MODEL = """\
stages:
  train: {kind: train, cmd: "true", outs: {model: model.txt}}
  evaluate: {kind: evaluate, cmd: "true", outs: {predictions: preds.csv}}
models:
  m: {train: train, evaluate: evaluate, artifact: model, baseline: {predictions: base.csv},
      gates: GATES}
"""


def _config(metric: str, rule: str, method: str, tiers: str = "") -> str:
    gate = f"[{{metric: {metric}, {rule}, method: {method}}}]"
    return MODEL.replace("GATES", gate) + tiers


def _refusals(tmp_path: Path, config: str) -> list[tuple[str, int | None]]:
    return [(p.message, p.location.line if p.location else None)
            for p in problems(tmp_path, config)]


# --------------------------------------------------------------------------- at load


@pytest.mark.parametrize(("method", "metric", "right"), [
    ("mcnemar", "f1", "accuracy"), ("mcnemar", "recall", "accuracy"),
    ("mcnemar", "log_loss", "accuracy"), ("mcnemar", "roc_auc", "accuracy"),
    ("delong", "accuracy", "roc_auc"), ("delong", "pr_auc", "roc_auc")])
def test_a_method_on_another_metric_is_refused_at_load(tmp_path: Path, method: str,
                                                       metric: str, right: str) -> None:
    found = _refusals(tmp_path, _config(metric, "max_regression: 0", method))
    assert found == [(f"gate 1 of model `m`: {method} applies to {right}; use method: "
                      f"bootstrap for {metric}", 6)]


def test_mcnemar_takes_a_margin_of_zero_only(tmp_path: Path) -> None:
    found = _refusals(tmp_path / "a", _config("accuracy", "max_regression: 0.01", "mcnemar"))
    assert found == [("gate 1 of model `m`: McNemar's exact test decides only whether "
                      "accuracy is equal, so it takes a margin of 0, not `max_regression: "
                      "0.01`", 6)]
    found = _refusals(tmp_path / "b", _config("accuracy", "min_improvement: 2%", "mcnemar"))
    assert "not `min_improvement: 2%`" in found[0][0]
    for i, rule in enumerate(["max_regression: 0", "min_improvement: 0", "max_regression: 0%"]):
        load(tmp_path / f"ok{i}", _config("accuracy", rule, "mcnemar"))


@pytest.mark.parametrize("method", ["mcnemar", "delong"])
def test_a_test_of_two_models_cannot_bound_one(tmp_path: Path, method: str) -> None:
    metric = "accuracy" if method == "mcnemar" else "roc_auc"
    found = _refusals(tmp_path, _config(metric, "min: 0.8", method))
    assert found == [(f"gate 1 of model `m`: method: {method} compares the candidate with "
                      "the baseline; `min` and `max` bound the candidate's own value", 6)]


def test_mcnemar_is_refused_on_a_tier_of_several_seeds(tmp_path: Path) -> None:
    tiers = "tiers:\n  pr: {seeds: 1}\n  nightly: {seeds: 3}\n"
    found = _refusals(tmp_path / "a", _config("accuracy", "max_regression: 0", "mcnemar",
                                              tiers))
    assert found == [("gate 1 of model `m`: McNemar's exact test compares one candidate, "
                      "but tier `nightly` trains 3 seeds", 6)]
    # limited to the single-seed tier it loads; delong combines seeds, so it always loads
    load(tmp_path / "b", _config("accuracy", "max_regression: 0, tiers: [pr]",
                                 "mcnemar", tiers))
    load(tmp_path / "c", _config("roc_auc", "max_regression: 0.01", "delong", tiers))


def test_the_cli_refuses_with_file_line_and_exit_2(repo: Path) -> None:
    (repo / "sluice.yaml").write_text(_config("f1", "max_regression: 0.01", "mcnemar"))
    result = sluice(repo, "plan", check=2)
    out = result.stdout + result.stderr
    assert "sluice.yaml:6:" in out
    assert "mcnemar applies to accuracy; use method: bootstrap for f1" in out


# --------------------------------------------------------------------------- McNemar


def _correct(only_c: int, only_b: int, both: int = 50, neither: int = 30) -> tuple[
        Predictions, Predictions]:
    """Predictions whose table of right/wrong is as given (all labels are 1)."""
    cand = [1] * both + [1] * only_c + [0] * only_b + [0] * neither
    base = [1] * both + [0] * only_c + [1] * only_b + [0] * neither
    y = np.ones(len(cand), dtype=int)
    return from_arrays(y, cand), from_arrays(y, base)


def _gate(**fields: Any) -> GateSpec:
    return GateSpec.model_validate(fields)


def test_mcnemar_decides_by_the_exact_test_not_newcombes_interval() -> None:
    # Cavo et al. (2012): 6 vs 16 discordant, exact p = 0.0525 (not significant), while
    # Newcombe's interval (−0.1186, −0.0046) excludes 0: the old verdict was FAIL.
    cand, base = _correct(6, 16, both=59, neither=80)
    iv = _interval(_gate(metric="accuracy", max_regression=0, method="mcnemar"), "accuracy",
                   [cand], base, "max_regression")
    assert iv.method == "mcnemar, exact p = 0.0525"
    assert iv.low < 0 < iv.high
    assert S.verdict(iv, 0, "max_regression") == "INCONCLUSIVE"
    assert S.mcnemar_exact(cand.y_pred == 1, base.y_pred == 1).newcombe.high < 0


def test_the_mcnemar_verdict_is_the_exact_test_on_every_table() -> None:
    rng = np.random.default_rng(12)
    seen = set()
    for i in range(300):
        d = int(rng.integers(0, 60))
        b = int(rng.binomial(d, rng.uniform(0.2, 0.8)))
        result = S.mcnemar_exact([True] * b + [False] * (d - b) + [True] * 5,
                                 [False] * b + [True] * (d - b) + [True] * 5)
        significant = result.p_value <= 0.05
        no_worse = S.verdict(result.interval, 0, "max_regression")
        better = S.verdict(result.interval, 0, "min_improvement")
        assert no_worse == ("PASS" if (significant and b > d - b) or d == 0 else
                            "FAIL" if significant and b < d - b else "INCONCLUSIVE")
        assert (better == "PASS") == (significant and b > d - b)
        # Holm orders gates by this p: for McNemar, it is the exact p itself
        if d and b > d - b and i % 10 == 0:
            assert S.gate_p_value(result.interval, 0, "max_regression") == pytest.approx(
                result.p_value, rel=1e-6, abs=1e-9)
        seen.add(no_worse)
    assert seen == {"PASS", "FAIL", "INCONCLUSIVE"}


def test_mcnemar_on_several_seeds_or_without_labels_has_no_interval() -> None:
    cand, base = _correct(10, 3)
    gate = _gate(metric="accuracy", max_regression=0, method="mcnemar")
    with pytest.raises(UsageError, match="compares one candidate, not 2 seeds"):
        _interval(gate, "accuracy", [cand, cand], base, "max_regression")
    scores = from_arrays([0, 1, 1, 0], y_score=[0.1, 2.0, 3.0, -1.0])
    with pytest.raises(UsageError, match="needs predicted labels"):
        _interval(gate, "accuracy", [scores], scores, "max_regression")


# --------------------------------------------------------------------------- DeLong


def _scored(seed: int, n: int = 400, weight: Any = None) -> tuple[Predictions, Predictions]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return (from_arrays(y, y_score=y + rng.normal(size=n), weight=weight),
            from_arrays(y, y_score=0.8 * y + rng.normal(size=n), weight=weight))


def test_delong_combines_seeds_like_the_bootstrap() -> None:
    seeds = [_scored(0), _scored(0)]
    base = seeds[0][1]
    rng = np.random.default_rng(5)
    cands = [seeds[0][0]] + [from_arrays(base.y_true, y_score=base.y_true
                                                     + rng.normal(size=base.n))
                             for _ in range(2)]
    gate = _gate(metric="roc_auc", max_regression=0.01, method="delong")
    iv = _interval(gate, "roc_auc", cands, base, "max_regression")
    each = [S.delong(c.y_true, c.y_score, base.y_score).interval for c in cands]
    expected = S.seed_interval([e.point for e in each], each)
    assert iv.method == "seeds"
    assert (iv.low, iv.point, iv.high) == pytest.approx((expected.low, expected.point,
                                                         expected.high))
    # one seed: DeLong's own interval
    assert _interval(gate, "roc_auc", cands[:1], base, "max_regression") == each[0]


def test_delong_refuses_multiclass_scores() -> None:
    y = np.arange(30) % 3
    scores = np.full((30, 3), 0.2) + 0.6 * np.eye(3)[y]
    multi = from_arrays(y, y_score=scores)
    gate = _gate(metric="roc_auc", max_regression=0.01, method="delong")
    with pytest.raises(UsageError, match="binary ROC AUCs"):
        _interval(gate, "roc_auc", [multi], multi, "max_regression")


# --------------------------------------------------------------------------- end to end


PROJECT = MODEL.replace("GATES", "[{metric: accuracy, max_regression: 0, method: mcnemar},\n"
                        "        {metric: roc_auc, max_regression: 0.01, method: delong}]")


def _write(path: Path, preds: Predictions, weight: bool) -> None:
    assert preds.y_score is not None
    rows = ["id,y_true,y_score,y_pred" + (",weight" if weight else "")]
    rows += [f"{i},{t},{s:.6f},{int(s > 0.5)}" + (f",{1 + i % 3}" if weight else "")
             for i, (t, s) in enumerate(zip(preds.y_true, preds.y_score, strict=True))]
    path.write_text("\n".join(rows) + "\n")


def _evaluate(tmp_path: Path, weight: bool) -> Any:
    tmp_path.mkdir()
    (tmp_path / "sluice.yaml").write_text(PROJECT)
    cand, base = _scored(3)
    _write(tmp_path / "preds.csv", cand, weight)
    _write(tmp_path / "base.csv", base, weight)
    project = load_project(tmp_path)
    (tmp_path / "model.txt").write_text("a model")
    return evaluate_model(project, "m", project.config.models["m"], "merge",
                          recorded_result(project, "train", "evaluate"))


def test_weights_make_mcnemar_and_delong_gates_inconclusive(tmp_path: Path) -> None:
    plain = _evaluate(tmp_path / "plain", weight=False)
    assert [g.method.split(",")[0] for g in plain.gates] == ["mcnemar", "delong"]
    assert "exact p = " in plain.gates[0].method
    assert f"%; {plain.gates[0].method}); rule: " in plain.gates[0].reason
    weighted = _evaluate(tmp_path / "weighted", weight=True)
    assert [g.verdict for g in weighted.gates] == ["INCONCLUSIVE", "INCONCLUSIVE"]
    for gate, method in zip(weighted.gates, ["mcnemar", "delong"], strict=True):
        assert gate.reason == (f"no interval: method: {method} counts every example once, "
                               "and these predictions have a `weight` column; use method: "
                               "bootstrap, which weighs examples")
