"""Helpers shared by every stage script: column names, tier settings, I/O and logging.

The stage scripts are run as ``python src/churn/<stage>.py`` from the project
root, so they only import from this module and third-party packages. Anything
that changes how data or models are read and written belongs here, which is why
every stage lists ``src/churn/common.py`` among its ``deps`` in ``sluice.yaml``.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ID_COL = "customer_id"
LABEL_COL = "churned"
SLICE_COL = "region"
# Columns of the feature tables that are carried along but never fed to a model.
NON_FEATURE_COLS = (ID_COL, LABEL_COL, SLICE_COL)
# Allowed values of the raw table's categorical columns (regions come from data/regions.csv).
PLANS = ("basic", "standard", "premium")
CONTRACTS = ("month_to_month", "one_year", "two_year")


def log(message: str) -> None:
    """Print a progress line to stderr, prefixed with the stage name sluice runs."""
    stage = os.environ.get("SLUICE_STAGE") or Path(sys.argv[0]).stem
    print(f"[{stage}] {message}", file=sys.stderr, flush=True)


@contextmanager
def timed(what: str) -> Iterator[None]:
    """Log how long the block took."""
    start = time.perf_counter()
    yield
    log(f"{what} took {time.perf_counter() - start:.2f}s")


def tier_fraction(value: float | None = None) -> float:
    """The fraction of training data to use: ``value``, else ``$SLUICE_FRACTION``, else 1.0."""
    if value is None:
        value = float(os.environ.get("SLUICE_FRACTION") or 1.0)
    if not 0.0 < value <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {value}")
    return value


def tier_seed(value: int | None = None) -> int:
    """The run's seed: ``value``, else ``$SLUICE_SEED``, else 0."""
    if value is None:
        value = int(os.environ.get("SLUICE_SEED") or 0)
    if value < 0:
        raise ValueError(f"seed must be non-negative, got {value}")
    return value


def combine_seeds(*seeds: int) -> int:
    """Mix several seeds (e.g. a params seed and the tier seed) into one 31-bit seed."""
    state = np.random.SeedSequence(list(seeds)).generate_state(1)[0]
    return int(state) & 0x7FFFFFFF


def parse_json_object(text: str) -> dict[str, Any]:
    """Parse a JSON object given on the command line (sluice renders a params mapping
    such as ``${params.train.gbm}`` as compact JSON)."""
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {text!r}")
    return value


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The model inputs of a feature table: every column but id, label and slice."""
    return [c for c in frame.columns if c not in NON_FEATURE_COLS]


def read_parquet(path: str | Path) -> pd.DataFrame:
    """Read a Parquet file written by :func:`write_parquet`."""
    return pd.read_parquet(path, engine="pyarrow")


def write_parquet(frame: pd.DataFrame, path: str | Path) -> None:
    """Write ``frame`` without its index, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, engine="pyarrow", index=False)


def write_json(data: dict[str, Any], path: str | Path) -> None:
    """Write ``data`` as stable, human-readable JSON (sorted keys, trailing newline)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def save_model(bundle: dict[str, Any], path: str | Path) -> None:
    """Pickle a model bundle (the estimator plus the metadata needed to use it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pickle.dump(bundle, handle, protocol=pickle.HIGHEST_PROTOCOL)


def load_model(path: str | Path) -> dict[str, Any]:
    """Load a bundle written by :func:`save_model`. Only load files you produced:
    unpickling runs code."""
    with Path(path).open("rb") as handle:
        bundle = pickle.load(handle)
    if not isinstance(bundle, dict) or "model" not in bundle or "features" not in bundle:
        raise ValueError(f"{path} is not a model bundle written by train.py")
    return bundle
