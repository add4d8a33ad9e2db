"""Stage `generate`: synthesise the raw customer table (stands in for a warehouse export).

scikit-learn's ``make_classification`` draws a seeded, labelled point cloud;
each of its columns is then turned into something that looks like a telecom
customer attribute (tenure, charges, support calls, contract, region, ...) and
oriented so that the signal points the intuitive way (short tenure and many
support calls mean more churn). The result is written as one Parquet file.

    python src/churn/generate.py --settings '{"rows": 200000, ...}' --out data/raw/customers.parquet
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

if not __package__:  # run as a script: make `src/` (not `src/churn/`) the import root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification

from churn.common import (
    CONTRACTS,
    ID_COL,
    LABEL_COL,
    PLANS,
    log,
    parse_json_object,
    timed,
    write_parquet,
)

# Must all appear in data/regions.csv (tests/test_features.py checks).
REGIONS = ("north", "south", "east", "west")

# Named columns, in the order they take make_classification's columns (which,
# unshuffled, come informative first, then redundant, then noise). The number
# says which way the column should push churn: +1 up, -1 down, 0 no preference.
NAMED_COLUMNS: tuple[tuple[str, int], ...] = (
    ("tenure_months", -1),
    ("monthly_charges", +1),
    ("support_calls", +1),
    ("contract", -1),
    ("satisfaction_score", -1),
    ("avg_monthly_gb", -1),
    ("days_since_last_login", +1),
    ("num_products", -1),
    ("payment_failures_12m", +1),
    ("plan", 0),
    ("paperless_billing", 0),
    ("region", 0),
    ("age", -1),
    ("discount_pct", -1),
)


@dataclass(frozen=True)
class GeneratorSettings:
    """The ``data`` section of params.yaml."""

    rows: int = 200_000
    n_features: int = 20
    n_informative: int = 10
    n_redundant: int = 4
    class_sep: float = 0.6
    flip_y: float = 0.08
    churn_rate: float = 0.25
    satisfaction_missing: float = 0.3
    seed: int = 42

    def __post_init__(self) -> None:
        if self.rows < 10:
            raise ValueError("data.rows must be at least 10")
        if self.n_features < len(NAMED_COLUMNS):
            raise ValueError(f"data.n_features must be at least {len(NAMED_COLUMNS)}")
        if self.n_informative + self.n_redundant > self.n_features:
            raise ValueError("data.n_informative + data.n_redundant must not exceed n_features")
        if not 0.0 < self.churn_rate < 1.0:
            raise ValueError("data.churn_rate must be between 0 and 1")
        if not 0.0 <= self.satisfaction_missing < 1.0:
            raise ValueError("data.satisfaction_missing must be in [0, 1)")


def _to_unit(z: np.ndarray) -> np.ndarray:
    """Map a standard-normal-ish column into (0, 1) (a logistic approximation of its CDF)."""
    return 1.0 / (1.0 + np.exp(-1.702 * z))


def _pick(labels: tuple[str, ...], u: np.ndarray, cuts: list[float]) -> np.ndarray:
    """Bucket ``u`` in (0, 1) into ``labels`` at the cut points."""
    return np.asarray(labels, dtype=object)[np.digitize(u, cuts)]


def generate_customers(settings: GeneratorSettings) -> pd.DataFrame:
    """The raw customer table, fully determined by ``settings`` (including its seed)."""
    x, y = make_classification(
        n_samples=settings.rows,
        n_features=settings.n_features,
        n_informative=settings.n_informative,
        n_redundant=settings.n_redundant,
        n_repeated=0,
        n_classes=2,
        weights=[1.0 - settings.churn_rate],
        flip_y=settings.flip_y,
        class_sep=settings.class_sep,
        shuffle=False,  # keep columns in informative/redundant/noise order ...
        random_state=settings.seed,
    )
    rng = np.random.default_rng(settings.seed)
    order = rng.permutation(settings.rows)  # ... but shuffle rows, which come sorted by class
    x, y = x[order], y[order]

    z = (x - x.mean(axis=0)) / x.std(axis=0)
    for j, (_, direction) in enumerate(NAMED_COLUMNS):
        if direction and direction * np.corrcoef(z[:, j], y)[0, 1] < 0:
            z[:, j] = -z[:, j]
    col = {name: z[:, j] for j, (name, _) in enumerate(NAMED_COLUMNS)}
    unit = {name: _to_unit(v) for name, v in col.items()}
    n = settings.rows

    # 1..72 months, skewed towards newer customers.
    tenure = (1 + np.floor(71.999 * unit["tenure_months"] ** 1.3)).astype(np.int64)
    monthly = np.round(18.0 + 100.0 * unit["monthly_charges"], 2)
    discount = np.asarray([0, 5, 10, 15, 20])[np.digitize(unit["discount_pct"],
                                                          [0.5, 0.7, 0.85, 0.95])]
    total = np.round(tenure * monthly * (1 - discount / 100) * rng.uniform(0.95, 1.05, n), 2)

    satisfaction = np.clip(np.round(1 + 4 * unit["satisfaction_score"]), 1, 5)
    # Disengaged customers skip the survey more often, so missingness carries signal.
    p_missing = settings.satisfaction_missing * (0.5 + unit["days_since_last_login"])
    satisfaction = np.where(rng.random(n) < p_missing, np.nan, satisfaction)

    frame = pd.DataFrame({
        ID_COL: [f"C{i:07d}" for i in range(1, n + 1)],
        "region": _pick(REGIONS, unit["region"], [0.3, 0.55, 0.8]),
        "plan": _pick(PLANS, unit["plan"], [0.45, 0.8]),
        "contract": _pick(CONTRACTS, unit["contract"], [0.55, 0.8]),
        "tenure_months": tenure,
        "monthly_charges": monthly,
        "total_charges": total,
        "discount_pct": discount.astype(np.int64),
        "support_calls": rng.poisson(np.exp(0.6 * col["support_calls"])),
        "satisfaction_score": satisfaction,
        "avg_monthly_gb": np.round(35.0 * np.exp(0.5 * col["avg_monthly_gb"]), 1),
        "days_since_last_login": np.clip(
            np.floor(np.exp(1.1 * col["days_since_last_login"] + 2.0)), 0, 365).astype(np.int64),
        "num_products": (1 + np.floor(3.999 * unit["num_products"])).astype(np.int64),
        "payment_failures_12m": rng.poisson(np.exp(0.8 * col["payment_failures_12m"] - 1.5)),
        "paperless_billing": col["paperless_billing"] > 0,
        "age": np.clip(np.round(18 + 60 * unit["age"]), 18, 80).astype(np.int64),
    })
    # The rest of the columns are behavioural scores bought from a vendor: mostly noise.
    for j in range(len(NAMED_COLUMNS), settings.n_features):
        frame[f"engagement_score_{j - len(NAMED_COLUMNS) + 1:02d}"] = np.round(z[:, j], 4)
    frame[LABEL_COL] = y.astype(np.int8)
    return frame


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", required=True, type=parse_json_object,
                        help="the `data` params as a JSON object")
    parser.add_argument("--out", required=True, type=Path, help="Parquet file to write")
    args = parser.parse_args(argv)

    settings = GeneratorSettings(**args.settings)
    log(f"settings: {asdict(settings)}")
    with timed("generating"):
        frame = generate_customers(settings)
    write_parquet(frame, args.out)
    log(f"wrote {len(frame):,} customers x {frame.shape[1]} columns to {args.out} "
        f"(churn rate {frame[LABEL_COL].mean():.3f})")


if __name__ == "__main__":
    main()
