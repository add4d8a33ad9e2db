"""End-to-end: a run that changed nothing reuses the last report and its verdicts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import sluice
from tests.e2e.pipelines import MODEL_PIPELINE, PREDICT

CONFIG = MODEL_PIPELINE + """\
    baseline: {predictions: baseline.csv}
    gates:
      - {metric: roc_auc, min: MIN}
"""


def _baseline(repo: Path, quality: float) -> None:
    (repo / "base-model.txt").write_text(f"model {quality}\n")
    subprocess.run([sys.executable, "predict.py", "base-model.txt", "400", "baseline.csv"],
                   cwd=repo, check=True)


def _latest(repo: Path) -> str:
    return (repo / ".sluice/reports/latest").read_text().strip()


def test_a_no_op_run_reuses_the_report_until_an_input_of_the_verdict_changes(
        repo: Path) -> None:
    (repo / "sluice.yaml").write_text(CONFIG.replace("MIN", "0.6"))
    (repo / "params.yaml").write_text("quality: 0.3\nrows: 400\n")
    (repo / "predict.py").write_text(PREDICT)
    _baseline(repo, 0.1)
    first = sluice(repo, "run")
    assert "model churn: PASS" in first.stdout
    computed = _latest(repo)

    again = sluice(repo, "run")
    assert f"nothing changed since run {computed}: its report and verdicts stand" in again.stdout
    assert "model churn: PASS" in again.stdout  # the verdicts are still shown
    assert _latest(repo) == computed

    # A gate changed in sluice.yaml: the verdict is computed again (and now fails).
    (repo / "sluice.yaml").write_text(CONFIG.replace("MIN", "0.99"))
    stricter = sluice(repo, "run", check=1)
    assert "model churn: FAIL" in stricter.stdout and _latest(repo) != computed
    report = json.loads(sluice(repo, "report", "--json").stdout)
    assert report["models"][0]["verdict"] == "FAIL"

    # So is a changed baseline file, though no stage reruns for it.
    reused = _latest(repo)
    assert "nothing changed" in sluice(repo, "run", check=1).stdout
    _baseline(repo, 0.2)
    assert "nothing changed" not in sluice(repo, "run", check=1).stdout
    assert _latest(repo) != reused


def test_a_model_that_cannot_be_evaluated_still_gets_a_report(repo: Path) -> None:
    (repo / "sluice.yaml").write_text(CONFIG.replace("MIN", "0.6"))
    (repo / "params.yaml").write_text("quality: 0.3\nrows: 400\n")
    (repo / "predict.py").write_text(PREDICT)
    (repo / "baseline.csv").write_text("id,y_true,y_score\n9000,1,0.9\n9001,0,0.2\n")
    result = sluice(repo, "run", check=None)
    assert result.returncode in (1, 4), result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(sluice(repo, "report", "--json").stdout)
    assert report["models"][0]["verdict"] == "INCONCLUSIVE"
    assert any("could not evaluate" in g["reason"] for g in report["models"][0]["gates"])


def test_a_custom_metric_is_always_computed_afresh(repo: Path) -> None:
    # Its code is the project's: a change to it must change the verdict at once.
    (repo / "sluice.yaml").write_text(CONFIG.replace("{metric: roc_auc, min: MIN}",
                                                     "{metric: 'mymetric:score', min: 0.5}"))
    (repo / "params.yaml").write_text("quality: 0.3\nrows: 400\n")
    (repo / "predict.py").write_text(PREDICT)
    (repo / "mymetric.py").write_text("def score(y_true, y, weight):\n    return 0.9\n")
    _baseline(repo, 0.1)
    assert "model churn: PASS" in sluice(repo, "run").stdout
    (repo / "mymetric.py").write_text("def score(y_true, y, weight):\n    return 0.1\n")
    again = sluice(repo, "run", check=1)
    assert "nothing changed" not in again.stdout and "model churn: FAIL" in again.stdout
    # A metric that raises is reported, with no traceback.
    (repo / "mymetric.py").write_text("def score(y_true, y, weight):\n    return 1 / 0\n")
    broken = sluice(repo, "run", check=None)
    assert "Traceback" not in broken.stderr and broken.returncode in (1, 2, 4)
    assert "custom metric `mymetric:score` raised ZeroDivisionError" in \
        broken.stdout + broken.stderr
