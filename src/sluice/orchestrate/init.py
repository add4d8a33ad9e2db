"""``sluice init``: the starter ``sluice.yaml`` and copying an example project."""

from __future__ import annotations

import shutil
from pathlib import Path

from sluice.config.base import CONFIG_FILE
from sluice.errors import UsageError
from sluice.util.fs import atomic_write_bytes
from sluice.util.suggest import did_you_mean

STARTER = """\
# sluice.yaml: the pipeline of this repository. Every key is described in
# docs/config.md in the sluice repository.
version: 1

# Stage parameters live in a params file; a stage depends on the keys it lists.
params: params.yaml

# Named data. A stage reads it through `inputs: [datasets.NAME]`.
datasets:
  raw: data/raw.csv

stages:
  # kind: check (cheap gate) | transform | train | evaluate
  unit:
    kind: check
    cmd: python -m pytest -q tests
    deps: [src/, tests/]

  features:
    kind: transform
    # ${...} is replaced (shell-quoted) before the command runs.
    cmd: python src/features.py --in ${datasets.raw} --out ${outs.table}
    deps: [src/features.py]
    inputs: [datasets.raw]
    outs:
      table: data/features.parquet

  train:
    kind: train
    cmd: python src/train.py --features ${stages.features.outs.table} --out ${outs.model}
    deps: [src/train.py]
    inputs: [stages.features.outs.table]
    params: [train]            # every key under `train:` in params.yaml
    outs:
      model: models/model.pkl
    resources: {cpus: 2, memory: 4GB}
    timeout: 30m

  evaluate:
    kind: evaluate
    cmd: >-
      python src/evaluate.py --model ${stages.train.outs.model}
      --features ${stages.features.outs.table} --out ${outs.predictions}
    deps: [src/evaluate.py]
    inputs: [stages.train.outs.model, stages.features.outs.table]
    outs:
      predictions: reports/predictions.parquet

models:
  model:
    train: train
    evaluate: evaluate
    artifact: model

# Tiers: how CI runs the pipeline. Checks always run first and gate the rest.
tiers:
  pr:                          # every pull request: a cheap smoke run
    trigger: pull_request
    select: affected           # only the stages the change touches
    fraction: 0.02             # train on 2 % of the data (${tier.fraction})
    budget: {wall: 10m}
  merge:                       # merges to main: full training of what changed
    trigger: {push: {branches: [main]}}
    select: affected
    budget: {wall: 2h}
  nightly:                     # every night: retrain everything
    trigger: {schedule: "0 3 * * *"}
    select: all
    budget: {wall: 6h}

# Prices turn CPU- and GPU-hours into money for budgets (USD).
prices:
  cpu_hour: 0.05
  gpu_hour: 2.50

# Rolling budgets summed from the ledger; see `sluice budget`.
budgets:
  weekly: {gpu_hours: 100, usd: 500}
"""


STARTER_PARAMS = """\
# Values the stages are tuned with; a stage reruns when a key it lists changes.
train:
  lr: 0.01
  epochs: 5
"""


def write_starter(folder: Path, *, force: bool = False) -> list[Path]:
    """Write the starter sluice.yaml, and the params.yaml it names unless one exists."""
    target = folder / CONFIG_FILE
    if target.exists() and not force:
        raise UsageError(f"{target} already exists",
                         hint="edit it, or pass --force to overwrite it with the starter")
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder", hint="create it first")
    atomic_write_bytes(target, STARTER.encode())
    written = [target]
    params = folder / "params.yaml"
    if not params.exists():  # never overwrite a user's values, even with --force
        atomic_write_bytes(params, STARTER_PARAMS.encode())
        written.append(params)
    return written


def examples_root() -> Path:
    """Where example projects live: inside the installed package, or the source tree."""
    packaged = Path(__file__).parents[1] / "_examples"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "examples"


def available_examples() -> list[str]:
    root = examples_root()
    return sorted(p.name for p in root.iterdir() if (p / CONFIG_FILE).is_file()) \
        if root.is_dir() else []


_IGNORED = shutil.ignore_patterns(".sluice", "__pycache__", "*.pyc", ".pytest_cache",
                                  "data/raw*", "data/features*", "models", "reports")


def copy_example(name: str, dest: Path) -> list[Path]:
    """Copy example ``name`` into ``dest`` (missing or empty); returns the files written."""
    names = available_examples()
    if name not in names:
        raise UsageError(f"no example named `{name}`" + did_you_mean(name, names),
                         hint="available: " + (", ".join(names) or "(none installed)"))
    if dest.exists() and any(dest.iterdir()):
        raise UsageError(f"{dest} is not empty",
                         hint="choose a new or empty folder for the example")
    shutil.copytree(examples_root() / name, dest, ignore=_IGNORED, dirs_exist_ok=True)
    return [p for p in dest.rglob("*") if p.is_file()]
