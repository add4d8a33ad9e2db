"""Gate wiring: verdicts from prediction files, Holm across gates, slices, seeds, bad input."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from sluice.gates import evaluate_model
from sluice.pipeline import TierPlan, evaluate
from sluice.project import Project, load_project
from sluice.run import RunResult, StageOutcome
from sluice.tiers import DEFAULT_TIER_SPEC, TierRun

CONFIG = """\
stages:
  train:
    kind: train
    cmd: "true"
    outs: {model: model.txt}
  evaluate:
    kind: evaluate
    cmd: "true"
    outs: {predictions: preds.csv}
models:
  m:
    train: train
    evaluate: evaluate
    artifact: model
    baseline: {predictions: base.csv}
    gates:
GATES
tiers:
  nightly: {select: all}
"""


def _predictions(path: Path, quality: float, seed: int, n: int = 2000) -> None:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.4
    score = np.clip(np.where(y, 0.5 + quality, 0.5 - quality) + rng.normal(0, 0.25, n), 0, 1)
    rows = ["id,y_true,y_score,y_pred,region"]
    rows += [f"{i},{int(t)},{s:.5f},{int(s > 0.5)},{'ab'[i % 2]}"
             for i, (t, s) in enumerate(zip(y, score, strict=True))]
    path.write_text("\n".join(rows) + "\n")


def _project(tmp_path: Path, gates: str, candidate: float, baseline: float) -> Project:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "sluice.yaml").write_text(CONFIG.replace("GATES", gates))
    _predictions(tmp_path / "preds.csv", candidate, seed=1)
    _predictions(tmp_path / "base.csv", baseline, seed=1)
    return load_project(tmp_path)


def _result(project: Project, *stages: str) -> RunResult:
    """As if ``stages`` had just run: the outputs they have stored and recorded."""
    from sluice.outputs import save_outputs
    from sluice.records import write_record

    outcomes = []
    for name in stages:
        outs = {n: p for n, p in project.config.stages[name].outs.items()
                if (project.root / p).exists()}
        recorded = save_outputs(project, replace(project.config.stages[name], outs=outs))
        write_record(project, name, f"fp-{name}", {}, recorded, 1.0)
        outcomes.append(StageOutcome(name, "ran", fingerprint=f"fp-{name}"))
    return RunResult("run", outcomes, 1.0)


def test_clearly_better_passes_and_clearly_worse_fails(tmp_path: Path) -> None:
    gates = "      - {metric: roc_auc, max_regression: 0.01}\n"
    better = _project(tmp_path / "a", gates, 0.3, 0.1)
    evaluation = evaluate_model(better, "m", better.config.models["m"], "merge",
                                _result(better, "train", "evaluate"))
    assert evaluation is not None and evaluation.verdict == "PASS"
    worse = _project(tmp_path / "b", gates, 0.1, 0.3)
    evaluation = evaluate_model(worse, "m", worse.config.models["m"], "merge",
                                _result(worse, "train", "evaluate"))
    assert evaluation is not None and evaluation.verdict == "FAIL"
    assert "the whole interval breaks the rule" in evaluation.gates[0].reason


def test_holm_widens_intervals_and_slices_obey_min_size(tmp_path: Path) -> None:
    gates = ("      - {metric: roc_auc, max_regression: 0.01}\n"
             "      - {metric: accuracy, max_regression: 0.01, slices: [region],"
             " min_slice_size: 1500}\n"
             "      - {metric: accuracy, min: 0.5, tiers: [nightly]}\n")
    project = _project(tmp_path, gates, 0.3, 0.1)
    evaluation = evaluate_model(project, "m", project.config.models["m"], "merge",
                                _result(project, "train", "evaluate"))
    assert evaluation is not None
    # The nightly-only gate does not apply; the slices (1000 rows each) are too small.
    assert [(g.metric, g.slice) for g in evaluation.gates] == [("roc_auc", None),
                                                                ("accuracy", None)]
    # Two gates under Holm: the first one decided is tested at 1 − 0.05/2.
    assert max(g.confidence for g in evaluation.gates) == 0.975
    assert any("Holm" in note for note in evaluation.notes)
    assert any("not gated: region=a (1000 examples), region=b (1000 examples)" in note
               for note in evaluation.notes)


def test_a_missing_baseline_makes_its_gates_inconclusive_never_dropped(tmp_path: Path) -> None:
    gates = ("      - {metric: roc_auc, max_regression: 0.01}\n"
             "      - {metric: roc_auc, max_regression: 0.02, slices: [region],"
             " min_slice_size: 10}\n"
             "      - {metric: roc_auc, min: 0.6}\n")
    project = _project(tmp_path, gates, 0.3, 0.1)
    (tmp_path / "base.csv").unlink()
    evaluation = evaluate_model(project, "m", project.config.models["m"], "merge",
                                _result(project, "train", "evaluate"))
    assert evaluation is not None and evaluation.verdict == "INCONCLUSIVE"
    # Every configured gate is listed, slices included: the paired ones INCONCLUSIVE.
    assert sorted((g.rule, str(g.slice), g.verdict) for g in evaluation.gates) == [
        ("max_regression 0.01", "None", "INCONCLUSIVE"),
        ("max_regression 0.02", "None", "INCONCLUSIVE"),
        ("max_regression 0.02", "region=a", "INCONCLUSIVE"),
        ("max_regression 0.02", "region=b", "INCONCLUSIVE"),
        ("min 0.6", "None", "PASS")]
    missing = [g for g in evaluation.gates if not g.evaluated]
    assert len(missing) == 4
    assert all("baseline predictions `base.csv` do not exist" in g.reason for g in missing)
    assert evaluation.to_json()["gates_evaluated"] == 1
    assert evaluation.evidence["baseline"]["hash"] is None


def test_unreadable_predictions_give_inconclusive_never_pass(tmp_path: Path) -> None:
    gates = "      - {metric: roc_auc, max_regression: 0.01}\n"
    project = _project(tmp_path, gates, 0.3, 0.1)
    (tmp_path / "preds.csv").write_text("id,y_true,y_score\n1,1,nan\n2,0,0.3\n")
    plan = TierPlan(TierRun("merge", DEFAULT_TIER_SPEC, None, [0]), [])
    [evaluation] = evaluate(project, plan, _result(project, "train", "evaluate"))
    assert evaluation.verdict == "INCONCLUSIVE"
    assert "could not evaluate" in evaluation.gates[0].reason
