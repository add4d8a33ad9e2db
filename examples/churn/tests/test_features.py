"""Unit tests of the feature code (the `unit` stage runs them; no pipeline data needed)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churn.common import ID_COL, LABEL_COL, SLICE_COL, feature_columns
from churn.features import (
    build_features,
    in_test_split,
    load_regions,
    sample_mask,
    split,
    unit_hash,
)
from churn.generate import REGIONS, GeneratorSettings, generate_customers

PROJECT = Path(__file__).resolve().parents[1]
SALT = "churn-v1"


@pytest.fixture(scope="module")
def regions() -> pd.DataFrame:
    return load_regions(PROJECT / "data" / "regions.csv")


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return generate_customers(GeneratorSettings(rows=3000, seed=3))


@pytest.fixture(scope="module")
def features(raw: pd.DataFrame, regions: pd.DataFrame) -> pd.DataFrame:
    return build_features(raw, regions)


def one_customer(**overrides: object) -> pd.DataFrame:
    """A one-row raw table with readable values."""
    row: dict[str, object] = {
        ID_COL: "C0000001", "region": "east", "plan": "premium", "contract": "one_year",
        "tenure_months": 24, "monthly_charges": 80.0, "total_charges": 1920.0,
        "discount_pct": 10, "support_calls": 4, "satisfaction_score": np.nan,
        "avg_monthly_gb": 40.0, "days_since_last_login": 9, "num_products": 2,
        "payment_failures_12m": 1, "paperless_billing": True, "age": 40, LABEL_COL: 1,
    }
    row.update(overrides)
    return pd.DataFrame([row])


def test_every_generated_region_is_in_the_region_table(regions: pd.DataFrame) -> None:
    assert set(REGIONS) <= set(regions["region"])


def test_generated_table_is_seeded(raw: pd.DataFrame) -> None:
    again = generate_customers(GeneratorSettings(rows=3000, seed=3))
    pd.testing.assert_frame_equal(raw, again)
    assert 0.15 < raw[LABEL_COL].mean() < 0.35


def test_feature_table_is_numeric_complete_and_keeps_rows(
        raw: pd.DataFrame, features: pd.DataFrame) -> None:
    assert list(features[ID_COL]) == list(raw[ID_COL])
    assert list(features[LABEL_COL]) == list(raw[LABEL_COL])
    assert list(features[SLICE_COL]) == list(raw["region"])
    values = features[feature_columns(features)]
    assert all(dtype == np.float64 for dtype in values.dtypes)
    assert np.isfinite(values.to_numpy()).all()


def test_one_hot_columns_are_exclusive(features: pd.DataFrame) -> None:
    plans = features[["plan_basic", "plan_standard", "plan_premium"]].sum(axis=1)
    regions = features[[f"region_{r}" for r in REGIONS]].sum(axis=1)
    assert (plans == 1).all()
    assert (regions == 1).all()
    for region in REGIONS:
        assert ((features[SLICE_COL] == region) == (features[f"region_{region}"] == 1)).all()


def test_encodings_of_one_customer(regions: pd.DataFrame) -> None:
    row = build_features(one_customer(), regions, satisfaction_fill=2.5).iloc[0]
    east = regions.set_index("region").loc["east"]
    assert row["contract_term"] == 1.0
    assert row["plan_premium"] == 1.0 and row["plan_basic"] == 0.0
    assert row["satisfaction_score"] == 2.5 and row["satisfaction_missing"] == 1.0
    assert row["charges_per_tenure_month"] == pytest.approx(1920.0 / 24)
    assert row["support_calls_per_year"] == pytest.approx(4 * 12 / 24)
    assert row["charges_per_product"] == pytest.approx(40.0)
    assert row["total_charges_log"] == pytest.approx(math.log1p(1920.0))
    assert row["population_density_log"] == pytest.approx(math.log(east["population_density"]))
    assert row["fiber_coverage"] == pytest.approx(east["fiber_coverage"])
    assert row["paperless_billing"] == 1.0


def test_brand_new_customer_does_not_divide_by_zero(regions: pd.DataFrame) -> None:
    row = build_features(one_customer(tenure_months=0, total_charges=0.0), regions).iloc[0]
    assert row["charges_per_tenure_month"] == 0.0
    assert row["support_calls_per_year"] == pytest.approx(48.0)


@pytest.mark.parametrize(("column", "value"), [
    ("region", "atlantis"), ("plan", "platinum"), ("contract", "lifetime"), ("region", None)])
def test_unknown_categories_are_rejected(regions: pd.DataFrame, column: str,
                                         value: str | None) -> None:
    with pytest.raises(ValueError, match=column):
        build_features(one_customer(**{column: value}), regions)


def test_missing_raw_column_is_rejected(regions: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="tenure_months"):
        build_features(one_customer().drop(columns=["tenure_months"]), regions)


def test_region_table_with_duplicates_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "regions.csv"
    path.write_text("region,population_density,median_income_k,fiber_coverage\n"
                    "north,1,2,0.5\nnorth,3,4,0.5\n")
    with pytest.raises(ValueError, match="duplicate"):
        load_regions(path)


def test_unit_hash_is_stable_and_in_range() -> None:
    ids = [f"C{i:07d}" for i in range(1000)]
    values = unit_hash(ids, SALT)
    assert ((values >= 0) & (values < 1)).all()
    # Pinned: the split must never move between runs, machines or library versions.
    assert unit_hash(["C0000001"], SALT)[0] == pytest.approx(0.8367927271, abs=1e-9)
    assert not np.array_equal(values, unit_hash(ids, "other-salt"))


def test_split_is_by_id_not_by_row_order(features: pd.DataFrame) -> None:
    _, test = split(features, 0.2, SALT)
    shuffled = features.sample(frac=1.0, random_state=0)
    _, test_shuffled = split(shuffled, 0.2, SALT)
    assert set(test[ID_COL]) == set(test_shuffled[ID_COL])
    assert 0.17 < len(test) / len(features) < 0.23
    assert in_test_split(test[ID_COL], 0.2, SALT).all()


def test_fraction_samples_train_rows_only(features: pd.DataFrame) -> None:
    full_train, full_test = split(features, 0.2, SALT)
    small_train, small_test = split(features, 0.2, SALT, fraction=0.1)
    tiny_train, _ = split(features, 0.2, SALT, fraction=0.05)
    pd.testing.assert_frame_equal(small_test, full_test)
    assert set(tiny_train[ID_COL]) <= set(small_train[ID_COL]) <= set(full_train[ID_COL])
    assert 0.06 < len(small_train) / len(full_train) < 0.14
    assert sample_mask(small_train[ID_COL], 0.1, SALT).all()
