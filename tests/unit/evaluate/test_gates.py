"""Gate wiring: verdicts from prediction files, Holm across gates, slices, seeds, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sluice.evaluate.gates import ModelEvaluation, evaluate_model
from sluice.orchestrate.tier import evaluate
from sluice.orchestrate.tier_plan import TierPlan
from sluice.pipeline.base import RunResult
from sluice.pipeline.fingerprint import RunContext
from sluice.pipeline.tiers import DEFAULT_TIER_SPEC, TierRun, resolve_tier
from sluice.workspace.project import Project, load_project
from sluice.workspace.records import read_record
from tests.unit._util import problems, recorded_result

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




def test_clearly_better_passes_and_clearly_worse_fails(tmp_path: Path) -> None:
    gates = "      - {metric: roc_auc, max_regression: 0.01}\n"
    better = _project(tmp_path / "a", gates, 0.3, 0.1)
    evaluation = evaluate_model(better, "m", better.config.models["m"], "merge",
                                recorded_result(better, "train", "evaluate"))
    assert evaluation is not None and evaluation.verdict == "PASS"
    worse = _project(tmp_path / "b", gates, 0.1, 0.3)
    evaluation = evaluate_model(worse, "m", worse.config.models["m"], "merge",
                                recorded_result(worse, "train", "evaluate"))
    assert evaluation is not None and evaluation.verdict == "FAIL"
    assert "the whole interval breaks the rule" in evaluation.gates[0].reason


def test_holm_widens_intervals_and_slices_obey_min_size(tmp_path: Path) -> None:
    gates = ("      - {metric: roc_auc, max_regression: 0.01}\n"
             "      - {metric: accuracy, max_regression: 0.01, slices: [region],"
             " min_slice_size: 1500}\n"
             "      - {metric: accuracy, min: 0.5, tiers: [nightly]}\n")
    project = _project(tmp_path, gates, 0.3, 0.1)
    evaluation = evaluate_model(project, "m", project.config.models["m"], "merge",
                                recorded_result(project, "train", "evaluate"))
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
                                recorded_result(project, "train", "evaluate"))
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
    [evaluation] = evaluate(project, plan, recorded_result(project, "train", "evaluate"))
    assert evaluation.verdict == "INCONCLUSIVE"
    assert "could not evaluate" in evaluation.gates[0].reason


STAGED = """\
stages:
  train:
    kind: train
    cmd: echo model > ${outs.model}
    outs: {model: model.txt}
  evaluate:
    kind: evaluate
    cmd: cp cand-src.csv ${outs.predictions}
    deps: [cand-src.csv]
    outs: {predictions: preds.csv}
  train_baseline:
    kind: train
    cmd: cp base-src.csv ${outs.model}
    deps: [base-src.csv]
    outs: {model: base-model.csv}
  evaluate_baseline:
    kind: evaluate
    cmd: cp ${stages.train_baseline.outs.model} ${outs.predictions}
    inputs: [stages.train_baseline.outs.model]
    outs: {predictions: reports/base.csv}
models:
  m:
    train: train
    evaluate: evaluate
    artifact: model
    baseline: {predictions: reports/base.csv}
    gates:
      - {metric: roc_auc, max_regression: 0.01}
      - {metric: roc_auc, min: 0.6}
tiers:
  pr: {select: [evaluate], fraction: 0.5}
  all: {select: all, fraction: 0.5}
"""


def _staged(tmp_path: Path) -> Project:
    """The candidate (quality 0.3) and a baseline stage (quality 0.1), all run once."""
    from sluice.orchestrate.tier import run_tier
    from sluice.orchestrate.tier_plan import TierRequest

    (tmp_path / "sluice.yaml").write_text(STAGED)
    _predictions(tmp_path / "cand-src.csv", 0.3, seed=1)
    _predictions(tmp_path / "base-src.csv", 0.1, seed=1)
    project = load_project(tmp_path)
    run_tier(project, TierRequest(tier="all"))
    return load_project(tmp_path)


def _pr(project: Project) -> tuple[RunResult, ModelEvaluation]:
    """The `pr` tier: runs the candidate only, never the baseline stage."""
    from sluice.orchestrate.tier import run_tier
    from sluice.orchestrate.tier_plan import TierRequest

    _, result = run_tier(project, TierRequest(tier="pr"))
    assert [o.stage for o in result.outcomes] == ["evaluate"]
    [evaluation] = result.evaluations
    return result, evaluation


def test_an_unrun_baseline_stage_is_restored_from_the_store_by_fingerprint(
        tmp_path: Path) -> None:
    project = _staged(tmp_path)
    recorded = project.store.get_run(read_record(project, "evaluate_baseline")["fingerprint"])
    # A fresh workspace: the baseline's predictions are not here, only in the store.
    (tmp_path / "reports/base.csv").unlink()
    _, evaluation = _pr(project)
    assert evaluation.verdict == "PASS"
    baseline = evaluation.evidence["baseline"]
    assert baseline["source"] == "store" and baseline["stage"] == "evaluate_baseline"
    assert recorded is not None and baseline["hash"] == recorded["outs"]["predictions"]["hash"]
    assert all(g.evidence["baseline"] == baseline["hash"] for g in evaluation.gates)
    assert not (tmp_path / "reports/base.csv").exists()  # restored to a scratch folder only


def test_a_stale_baseline_file_is_never_used(tmp_path: Path) -> None:
    _staged(tmp_path)
    # Another branch's (much worse) baseline predictions are left in the workspace, and
    # the baseline's current inputs were never run anywhere: no store has its evidence.
    _predictions(tmp_path / "reports/base.csv", 0.0, seed=1)
    _predictions(tmp_path / "base-src.csv", 0.25, seed=2)
    _, evaluation = _pr(load_project(tmp_path))
    assert evaluation.verdict == "INCONCLUSIVE"
    [paired] = [g for g in evaluation.gates if g.rule.startswith("max_regression")]
    assert paired.verdict == "INCONCLUSIVE" and not paired.evaluated and paired.point is None
    assert "in no readable store" in paired.reason
    assert "run the baseline stage or add it to the tier" in paired.reason
    assert "upstream `train_baseline`" in paired.reason


def test_a_failed_baseline_stage_leaves_no_stale_evidence(tmp_path: Path) -> None:
    from sluice.orchestrate.tier import run_tier
    from sluice.orchestrate.tier_plan import TierRequest

    _staged(tmp_path)
    _predictions(tmp_path / "reports/base.csv", 0.0, seed=1)  # another branch's file
    (tmp_path / "base-src.csv").unlink()  # train_baseline fails; evaluate_baseline skipped
    _, result = run_tier(load_project(tmp_path), TierRequest(tier="all"))
    assert {o.stage: o.status for o in result.outcomes}["evaluate_baseline"] == "skipped"
    [evaluation] = result.evaluations
    assert evaluation.verdict == "INCONCLUSIVE"
    assert "baseline predictions `reports/base.csv`" in evaluation.gates[-1].reason


def test_the_candidate_is_read_as_recorded_not_as_the_workspace_holds_it(
        tmp_path: Path) -> None:
    project = _staged(tmp_path)
    result, first = _pr(project)
    assert first.verdict == "PASS"
    # Another run overwrote the candidate's predictions with worse ones; its record
    # (and the store) still say what evaluate wrote for the current fingerprint.
    _predictions(tmp_path / "preds.csv", 0.0, seed=3)
    again = evaluate_model(project, "m", project.config.models["m"], "pr", result,
                           RunContext(tier="pr", fraction=0.5))
    assert again is not None and again.verdict == "PASS"
    assert again.evidence["candidate"]["hash"] == first.evidence["candidate"]["hash"]
    assert [g.point for g in again.gates] == [g.point for g in first.gates]


def test_the_report_is_reused_only_on_equal_evidence(tmp_path: Path) -> None:
    from sluice.report.reuse import evaluation_key

    project = _staged(tmp_path)
    result, _ = _pr(project)
    tier = resolve_tier(project, "pr")
    key = evaluation_key(project, tier, result)
    _predictions(tmp_path / "reports/base.csv", 0.0, seed=1)  # the workspace: not evidence
    assert evaluation_key(project, tier, result) == key
    # The baseline's inputs changed (its stage did not run): its evidence is gone.
    _predictions(tmp_path / "base-src.csv", 0.25, seed=2)
    assert evaluation_key(load_project(tmp_path), tier, result) != key



def test_a_baseline_file_outside_the_repository_is_refused_at_load(tmp_path: Path) -> None:
    config = """\
        stages:
          train: {kind: train, cmd: "true", outs: {model: model.txt}}
          evaluate: {kind: evaluate, cmd: "true", outs: {predictions: preds.csv}}
        models:
          m: {train: train, evaluate: evaluate, artifact: model,
              baseline: {predictions: ../elsewhere/base.csv},
              gates: [{metric: roc_auc, max_regression: 0.01}]}
        """
    found = problems(tmp_path, config)
    assert any("baseline predictions `../elsewhere/base.csv` of model `m` points outside "
               "the repository" in p.message and p.location and p.location.line == 6
               for p in found), [p.message for p in found]


def test_a_store_record_naming_a_path_as_its_hash_is_never_read(tmp_path: Path) -> None:
    from sluice.errors import CorruptObject
    from sluice.evaluate.evidence import Evidence, materialize

    project = _project(tmp_path, "      - {metric: roc_auc, max_regression: 0.01}\n", 0.3, 0.1)
    forged = Evidence("preds.csv", "../base.csv", "fp", "evaluate", "store")
    with pytest.raises(CorruptObject, match="not a sluice content hash"):
        materialize(project, forged, tmp_path / "scratch")
