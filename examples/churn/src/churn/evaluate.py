"""Stages `evaluate_churn` and `evaluate_baseline`: score a model on the test features.

Writes two files:

* per-customer predictions (Parquet) with columns ``id``, ``y_true``, ``y_score``
  (probability of churn), ``y_pred`` (``y_score >= threshold``) and the slice
  column ``region``, so metrics can be recomputed or sliced after the fact;
* headline metrics (JSON): ``roc_auc``, ``accuracy``, ``log_loss`` and ``n``.

    python src/churn/evaluate.py --model models/churn.pkl \\
        --test data/features/test.parquet --threshold 0.5 \\
        --predictions reports/churn/predictions.parquet --metrics reports/churn/metrics.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

if not __package__:  # run as a script: make `src/` (not `src/churn/`) the import root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from churn.common import (
    ID_COL,
    LABEL_COL,
    SLICE_COL,
    load_model,
    log,
    read_parquet,
    write_json,
    write_parquet,
)


def predict(bundle: dict[str, Any], frame: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Per-example predictions of the bundled model on a feature table."""
    missing = [c for c in bundle["features"] if c not in frame.columns]
    if missing:
        raise ValueError(f"test table lacks the model's features {missing}")
    scores = bundle["model"].predict_proba(frame[bundle["features"]].to_numpy())[:, 1]
    return pd.DataFrame({
        "id": frame[ID_COL].astype(str),
        "y_true": frame[LABEL_COL].astype(np.int64),
        "y_score": scores.astype(np.float64),
        "y_pred": (scores >= threshold).astype(np.int64),
        SLICE_COL: frame[SLICE_COL].astype(str),
    })


def metrics(y_true: npt.ArrayLike, y_score: npt.ArrayLike, y_pred: npt.ArrayLike) -> dict[str, Any]:
    """Headline metrics of one set of predictions."""
    return {
        "roc_auc": float(roc_auc_score(y_true, y_score)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "log_loss": float(log_loss(y_true, y_score, labels=[0, 1])),
        "n": int(np.asarray(y_true).size),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path, help="pickled model bundle")
    parser.add_argument("--test", required=True, type=Path, help="test features (Parquet)")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="score at or above which a customer is predicted to churn")
    parser.add_argument("--predictions", required=True, type=Path)
    parser.add_argument("--metrics", required=True, type=Path)
    args = parser.parse_args(argv)

    bundle = load_model(args.model)
    preds = predict(bundle, read_parquet(args.test), args.threshold)
    result = metrics(preds["y_true"], preds["y_score"], preds["y_pred"])
    write_parquet(preds, args.predictions)
    write_json(result, args.metrics)
    log(f"{bundle['kind']} trained on {bundle['train_rows']:,} rows: "
        + ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in result.items()))
    for region, part in preds.groupby(SLICE_COL, sort=True):
        auc = (f"{roc_auc_score(part['y_true'], part['y_score']):.4f}"
               if part["y_true"].nunique() == 2 else "n/a")
        log(f"  {SLICE_COL}={region}: n={len(part):,} roc_auc={auc}")


if __name__ == "__main__":
    main()
