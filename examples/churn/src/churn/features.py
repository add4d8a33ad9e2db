"""Stage `features`: turn raw customers into model-ready train and test tables.

* joins the region attributes from ``data/regions.csv`` (a small dataset kept in git);
* encodes categoricals (one-hot for plan and region, ordinal for contract length);
* adds log transforms, ratios and a missing-value flag for the satisfaction survey;
* splits train/test by hashing ``customer_id``, so a customer always lands on the
  same side whatever the row order, sample size or library version;
* in a reduced tier (``--fraction`` / ``$SLUICE_FRACTION`` below 1) keeps a
  deterministic hash sample of the *training* rows but always the full test set,
  so metrics from a quick run are measured on the same customers as a full run.

Every transformation is row-wise (no statistics are fitted), so train and test
are encoded identically and nothing leaks from test into train.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Iterable
from pathlib import Path

if not __package__:  # run as a script: make `src/` (not `src/churn/`) the import root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np
import numpy.typing as npt
import pandas as pd

from churn.common import (
    CONTRACTS,
    ID_COL,
    LABEL_COL,
    PLANS,
    SLICE_COL,
    log,
    read_parquet,
    tier_fraction,
    timed,
    write_parquet,
)

REGION_ATTRIBUTES = ("population_density", "median_income_k", "fiber_coverage")
RAW_COLUMNS = (
    ID_COL, "region", "plan", "contract", "tenure_months", "monthly_charges",
    "total_charges", "discount_pct", "support_calls", "satisfaction_score",
    "avg_monthly_gb", "days_since_last_login", "num_products", "payment_failures_12m",
    "paperless_billing", "age", LABEL_COL,
)
# Raw numeric columns copied into the feature table as they are.
PASSTHROUGH = (
    "tenure_months", "monthly_charges", "discount_pct", "support_calls", "avg_monthly_gb",
    "num_products", "payment_failures_12m", "age",
)
_HASH_SCALE = float(2**64)


def load_regions(path: str | Path) -> pd.DataFrame:
    """Read and check the region table: one row per region, no missing attributes."""
    regions = pd.read_csv(path)
    missing = [c for c in ("region", *REGION_ATTRIBUTES) if c not in regions.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}")
    if regions["region"].duplicated().any():
        raise ValueError(f"{path}: duplicate regions")
    if regions[list(REGION_ATTRIBUTES)].isna().any().any():
        raise ValueError(f"{path}: missing values")
    return regions.astype({"region": str}).reset_index(drop=True)


def unit_hash(ids: Iterable[str], salt: str) -> npt.NDArray[np.float64]:
    """A number in [0, 1) for each id from BLAKE2b(``salt:id``).

    Stable across runs, machines and library versions, unlike Python's ``hash``.
    """
    prefix = f"{salt}:".encode()
    values = [int.from_bytes(hashlib.blake2b(prefix + str(i).encode(), digest_size=8).digest(),
                             "big") for i in ids]
    return np.asarray(values, dtype=np.float64) / _HASH_SCALE


def in_test_split(ids: Iterable[str], test_fraction: float,
                  salt: str) -> npt.NDArray[np.bool_]:
    """True for the ids that belong to the test split."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    return unit_hash(ids, salt) < test_fraction


def sample_mask(ids: Iterable[str], fraction: float, salt: str) -> npt.NDArray[np.bool_]:
    """True for the ids kept in a ``fraction`` sample.

    Uses a different hash than the split, and a smaller fraction keeps a subset
    of what a larger one keeps.
    """
    return unit_hash(ids, f"{salt}/sample") < fraction


def _one_hot(values: pd.Series, categories: Iterable[str], prefix: str) -> pd.DataFrame:
    """0/1 columns ``prefix_<category>`` for a fixed category list (stable columns)."""
    return pd.DataFrame({f"{prefix}_{c}": (values == c).astype(np.float64).to_numpy()
                         for c in categories}, index=values.index)


def _check_values(values: pd.Series, allowed: Iterable[str], what: str) -> None:
    unknown = sorted(set(values.dropna().unique()) - set(allowed))
    if unknown or values.isna().any():
        raise ValueError(f"unexpected {what} values {unknown or ['<missing>']}; "
                         f"expected one of {sorted(allowed)}")


def build_features(raw: pd.DataFrame, regions: pd.DataFrame,
                   satisfaction_fill: float = 3.0) -> pd.DataFrame:
    """The feature table: id, region (for slicing), numeric features, label.

    Raises ValueError on missing columns or category values the encoding does
    not know (for instance a region absent from the region table).
    """
    missing = [c for c in RAW_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(f"raw table is missing columns {missing}")
    region_names = regions["region"].tolist()
    _check_values(raw["region"], region_names, "region")
    _check_values(raw["plan"], PLANS, "plan")
    _check_values(raw["contract"], CONTRACTS, "contract")

    tenure = raw["tenure_months"].clip(lower=1).astype(np.float64)
    monthly = raw["monthly_charges"].astype(np.float64)
    total = raw["total_charges"].astype(np.float64)
    attrs = regions.set_index("region").loc[raw["region"], list(REGION_ATTRIBUTES)]
    attrs.index = raw.index

    features = pd.DataFrame(
        {name: raw[name].astype(np.float64) for name in PASSTHROUGH}, index=raw.index)
    features["total_charges_log"] = np.log1p(total.clip(lower=0))
    features["days_since_last_login_log"] = np.log1p(raw["days_since_last_login"].clip(lower=0))
    features["paperless_billing"] = raw["paperless_billing"].astype(np.float64)
    features["satisfaction_missing"] = raw["satisfaction_score"].isna().astype(np.float64)
    features["satisfaction_score"] = raw["satisfaction_score"].fillna(satisfaction_fill)
    features["contract_term"] = raw["contract"].map(
        {name: float(i) for i, name in enumerate(CONTRACTS)})
    features["charges_per_tenure_month"] = total / tenure
    features["support_calls_per_year"] = raw["support_calls"] * 12.0 / tenure
    features["charges_per_product"] = monthly / raw["num_products"].clip(lower=1)
    features["gb_per_dollar"] = raw["avg_monthly_gb"] / monthly.clip(lower=1.0)
    features["population_density_log"] = np.log(attrs["population_density"].clip(lower=1e-3))
    features["median_income_k"] = attrs["median_income_k"].astype(np.float64)
    features["fiber_coverage"] = attrs["fiber_coverage"].astype(np.float64)
    extra = sorted(c for c in raw.columns if c.startswith("engagement_score_"))
    for name in extra:
        features[name] = raw[name].astype(np.float64)

    return pd.concat([
        pd.DataFrame({ID_COL: raw[ID_COL].astype(str), SLICE_COL: raw["region"].astype(str)}),
        features,
        _one_hot(raw["plan"], PLANS, "plan"),
        _one_hot(raw["region"], region_names, "region"),
        raw[[LABEL_COL]].astype(np.int8),
    ], axis=1).reset_index(drop=True)


def split(features: pd.DataFrame, test_fraction: float, salt: str,
          fraction: float = 1.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) by customer-id hash; ``fraction`` < 1 samples the train rows only."""
    ids = features[ID_COL].tolist()
    is_test = in_test_split(ids, test_fraction, salt)
    is_train = ~is_test
    if fraction < 1.0:
        is_train &= sample_mask(ids, fraction, salt)
    train = features[is_train].reset_index(drop=True)
    test = features[is_test].reset_index(drop=True)
    return train, test


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", required=True, type=Path, help="raw customers (Parquet)")
    parser.add_argument("--regions", required=True, type=Path, help="region table (CSV)")
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--salt", default="churn-v1", help="salt of the id hash for the split")
    parser.add_argument("--satisfaction-fill", type=float, default=3.0,
                        help="value for a missing satisfaction score")
    parser.add_argument("--fraction", type=float, default=None,
                        help="share of training rows to keep (default: $SLUICE_FRACTION or 1)")
    parser.add_argument("--train-out", required=True, type=Path)
    parser.add_argument("--test-out", required=True, type=Path)
    args = parser.parse_args(argv)

    fraction = tier_fraction(args.fraction)
    raw = read_parquet(args.raw)
    regions = load_regions(args.regions)
    with timed("building features"):
        features = build_features(raw, regions, args.satisfaction_fill)
        train, test = split(features, args.test_fraction, args.salt, fraction)
    if train.empty or train[LABEL_COL].nunique() < 2:
        raise SystemExit(f"fraction {fraction} leaves too few training rows ({len(train)}) "
                         "to train on; use a larger fraction")
    write_parquet(train, args.train_out)
    write_parquet(test, args.test_out)
    n_features = features.shape[1] - 3
    log(f"{n_features} features; train {len(train):,} rows (fraction {fraction:g}, churn "
        f"{train[LABEL_COL].mean():.3f}), test {len(test):,} rows "
        f"(churn {test[LABEL_COL].mean():.3f})")


if __name__ == "__main__":
    main()
