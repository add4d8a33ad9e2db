"""Stages `train_churn` and `train_baseline`: fit a classifier on the training features.

Two model kinds share this script:

* ``gbm``: scikit-learn's HistGradientBoostingClassifier (the production model);
* ``logreg``: StandardScaler + LogisticRegression (the baseline it must beat).

Hyperparameters arrive as one JSON object (sluice renders ``${params.train.gbm}``
that way) and are passed to the estimator unchanged, so a typo in params.yaml
fails loudly. The random seed mixes the seed in params.yaml with the run's tier
seed (``--seed`` / ``$SLUICE_SEED``). The fitted model is pickled together with
its feature list, which evaluate.py uses to select columns.

    python src/churn/train.py --model gbm --train data/features/train.parquet \\
        --hyperparams '{"max_iter": 200}' --base-seed 17 --out models/churn.pkl
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

if not __package__:  # run as a script: make `src/` (not `src/churn/`) the import root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np
import pandas as pd
import sklearn
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from churn.common import (
    LABEL_COL,
    combine_seeds,
    feature_columns,
    log,
    parse_json_object,
    read_parquet,
    save_model,
    tier_seed,
    timed,
)

MODEL_KINDS = ("gbm", "logreg")


def make_model(kind: str, hyperparams: dict[str, Any],
               seed: int) -> HistGradientBoostingClassifier | Pipeline:
    """An unfitted estimator of ``kind`` with ``hyperparams`` and ``seed``."""
    if kind == "gbm":
        return HistGradientBoostingClassifier(**hyperparams, random_state=seed)
    if kind == "logreg":
        return make_pipeline(StandardScaler(),
                             LogisticRegression(**hyperparams, random_state=seed))
    raise ValueError(f"unknown model kind {kind!r}; expected one of {MODEL_KINDS}")


def train(frame: pd.DataFrame, kind: str, hyperparams: dict[str, Any],
          seed: int) -> dict[str, Any]:
    """Fit a model on ``frame`` and return the bundle that save_model pickles."""
    columns = feature_columns(frame)
    model = make_model(kind, hyperparams, seed)
    model.fit(frame[columns].to_numpy(), frame[LABEL_COL].to_numpy())
    return {
        "model": model,
        "kind": kind,
        "features": columns,
        "hyperparams": hyperparams,
        "seed": seed,
        "train_rows": len(frame),
        "sklearn_version": sklearn.__version__,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, choices=MODEL_KINDS)
    parser.add_argument("--train", required=True, type=Path, help="training features (Parquet)")
    parser.add_argument("--hyperparams", type=parse_json_object, default={},
                        help="estimator parameters as a JSON object")
    parser.add_argument("--base-seed", type=int, default=0, help="seed from params.yaml")
    parser.add_argument("--seed", type=int, default=None,
                        help="tier seed (default: $SLUICE_SEED or 0)")
    parser.add_argument("--out", required=True, type=Path, help="where to pickle the model")
    parser.add_argument("--shuffle-labels", type=lambda text: text.lower() == "true",
                        default=False, help="true: train on shuffled labels (a deliberately "
                                            "broken model, to watch a gate FAIL)")
    args = parser.parse_args(argv)

    seed = combine_seeds(args.base_seed, tier_seed(args.seed))
    frame = read_parquet(args.train)
    if args.shuffle_labels:
        shuffled = np.random.default_rng(seed).permutation(frame[LABEL_COL].to_numpy())
        frame = frame.assign(**{LABEL_COL: shuffled})
    log(f"{args.model} on {len(frame):,} rows x {len(feature_columns(frame))} features, "
        f"seed {seed}, hyperparams {args.hyperparams}")
    with timed("training"):
        bundle = train(frame, args.model, args.hyperparams, seed)
    save_model(bundle, args.out)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
