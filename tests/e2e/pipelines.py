"""Small pipelines that end-to-end tests write into temporary git repos."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from tests.conftest import git, sluice

# A diamond with a side branch:  prepare → {left, right} → join;  other is independent.
DIAMOND = """\
params: params.yaml
stages:
  prepare:
    cmd: python3 src/prepare.py ${outs.table}
    deps: [src/prepare.py, data/input.txt]
    outs: {table: build/table.txt}
  left:
    cmd: python3 src/scale.py ${stages.prepare.outs.table} ${params.left.factor} ${outs.result}
    deps: [src/scale.py]
    params: [left.factor]
    outs: {result: build/left.txt}
  right:
    cmd: python3 src/scale.py ${stages.prepare.outs.table} ${params.right.factor} ${outs.result}
    deps: [src/scale.py]
    params: [right]
    outs: {result: build/right.txt}
  join:
    cmd: cat ${stages.left.outs.result} ${stages.right.outs.result} > ${outs.joined}
    outs: {joined: build/joined.txt}
  other:
    cmd: echo independent > ${outs.x}
    outs: {x: build/other.txt}
"""

FILES = {
    "params.yaml": "left:\n  factor: 2\nright:\n  factor: 3\nunused: 1\n",
    "data/input.txt": "1\n2\n3\n",
    "src/prepare.py": """\
        import sys
        from pathlib import Path
        numbers = Path("data/input.txt").read_text().split()
        Path(sys.argv[1]).write_text("\\n".join(numbers) + "\\n")
        """,
    "src/scale.py": """\
        import sys
        from pathlib import Path
        source, factor, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
        values = [float(x) * factor for x in Path(source).read_text().split()]
        Path(out).write_text("\\n".join(f"{v:g}" for v in values) + "\\n")
        """,
}


def write_files(root: Path, files: dict[str, str]) -> None:
    """Each of ``files`` (path under ``root`` → text, dedented), its folders made."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def write_project(repo: Path, config: str = DIAMOND,
                  files: dict[str, str] | None = None, commit: bool = True) -> None:
    (repo / "sluice.yaml").write_text(config)
    write_files(repo, FILES if files is None else files)
    (repo / ".gitignore").write_text(".sluice/\nbuild/\n")
    if commit:
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "pipeline")


def on_feature_branch(repo: Path, config: str, files: dict[str, str]) -> Path:
    """``config`` and ``files`` committed on `main`, then a branch `feature` checked out:
    what `sluice affected --base main` compares. Nothing is git-ignored."""
    (repo / "sluice.yaml").write_text(config)
    write_files(repo, files)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "checkout", "-q", "-b", "feature")
    return repo


# A model sluice scores itself: `train` writes a "model" that is just its quality
# (params `quality`), `evaluate` writes `rows` predictions (params `rows`) whose
# scores are that good. Tests append the model's gates, tiers and so on.
MODEL_PIPELINE = """\
params: params.yaml
stages:
  train:
    kind: train
    cmd: echo "model ${params.quality}" > ${outs.model}
    outs: {model: build/model.txt}
  evaluate:
    kind: evaluate
    cmd: python3 predict.py ${stages.train.outs.model} ${params.rows} ${outs.predictions}
    deps: [predict.py]
    inputs: [stages.train.outs.model]
    outs: {predictions: build/predictions.csv}
models:
  churn:
    train: train
    evaluate: evaluate
    artifact: model
"""
# The model of MODEL_PIPELINE gated on ROC AUC; the merge tier registers each version
# and promotes it to staging when the gate passes.
GATED_TO_STAGING = """\
    gates:
      - {metric: roc_auc, min: 0.6}
tiers:
  merge: {select: all, register: true, promote: staging}
promotion:
  staging: {gates: pass}
"""

PREDICT = """\
import random, sys
model, count, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
quality = float(open(model).read().split()[1])  # the "model" is its quality
random.seed(7)
rows = ["id,y_true,y_score"]
for i in range(count):
    y = random.random() < 0.5
    score = min(max(0.5 + (quality if y else -quality) + random.gauss(0, 0.2), 0), 1)
    rows.append(f"{i},{int(y)},{score:.4f}")
open(out, "w").write("\\n".join(rows) + "\\n")
"""

# An MLflow Project with one entry point, `main`, taking one float parameter: the e2e
# tests of `uses: mlflow-project` run it, the unit tests read its entry scripts.
MLPROJECT = """\
name: churn
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.1}
    command: "python train.py --alpha {alpha}"
"""


def bootstrap_first_version(repo: Path, env: dict[str, str] | None = None) -> None:
    """The first version has no baseline: INCONCLUSIVE, registered, promoted by hand."""
    first = sluice(repo, "run", "--tier", "merge", check=4, env=env)
    assert "no version of `churn` holds `staging` yet" in first.stdout
    assert re.search(r"INCONCLUSIVE +roc_auc max_regression 0.01: no baseline evidence: "
                     r"no version of `churn` holds `staging` yet", first.stdout)
    assert "registered churn version 1 (INCONCLUSIVE)" in first.stdout
    assert "version 1 did not pass its gates (INCONCLUSIVE)" in first.stdout
    # Bootstrapping (docs/gates.md): one manual promotion under a relaxed policy.
    strict = (repo / "sluice.yaml").read_text()
    (repo / "sluice.yaml").write_text(strict.replace("staging: {gates: pass}",
                                                     "staging: {gates: any}"))
    sluice(repo, "promote", "churn", "1", "--to", "staging", "--reason", "bootstrap")
    (repo / "sluice.yaml").write_text(strict)
