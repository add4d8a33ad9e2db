"""Drift statistics and reports: exact against scipy when small, within the documented
bounds when sketched, chunking invariance, no false alarms, known shifts, config, renders."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from sluice.config.schema import DriftSpec
from sluice.data.drift import compute_drift
from sluice.data.drift_render import plot_name, render_json, render_markdown, render_text


def spec(**values: Any) -> DriftSpec:
    return DriftSpec.model_validate(values)


def _chunks(frame: pd.DataFrame, pieces: int, seed: int) -> list[pd.DataFrame]:
    cuts = np.sort(np.random.default_rng(seed).integers(0, len(frame), pieces - 1))
    bounds = [0, *cuts.tolist(), len(frame)]
    return [frame.iloc[a:b] for a, b in itertools.pairwise(bounds)]


def _exact_psi(ref: np.ndarray, cur: np.ndarray, bins: int) -> float:
    """PSI as documented, computed independently: reference quantile edges, right-closed bins."""
    edges = np.unique(np.quantile(ref, np.arange(1, bins) / bins, method="inverted_cdf"))
    r = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=edges.size + 1)
    c = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=edges.size + 1)
    p, q = np.maximum(r / ref.size, 1e-4), np.maximum(c / cur.size, 1e-4)
    return float(np.sum((q - p) * np.log(q / p)))


def _pair(seed: int, n_ref: int, n_cur: int, shift: float = 0.0) -> tuple[pd.DataFrame, ...]:
    rng = np.random.default_rng(seed)

    def frame(n: int, delta: float) -> pd.DataFrame:
        return pd.DataFrame({
            "normal": rng.normal(10 + delta, 2, n),
            "lognormal": rng.lognormal(0, 1, n),
            "count": rng.poisson(3, n),
            "city": rng.choice(["paris", "lyon", "nice", "lille", "brest"], n,
                               p=[0.4, 0.3, 0.15, 0.1, 0.05]),
            "flag": rng.random(n) < 0.3,
            "sparse": np.where(rng.random(n) < 0.05, np.nan, rng.normal(0, 1, n)),
        })
    return frame(n_ref, 0.0), frame(n_cur, shift)


def test_small_data_matches_exact_statistics() -> None:
    ref, cur = _pair(0, 3_000, 2_000, shift=0.3)
    report = compute_drift([ref], [cur], spec())
    by_name = {c.name: c for c in report.columns}
    for name in ("normal", "lognormal", "count", "sparse"):
        r, c = ref[name].dropna().to_numpy(), cur[name].dropna().to_numpy()
        got = by_name[name].stats
        assert by_name[name].approx_error == 0.0  # below the sketch size: exact
        assert got["ks"] == pytest.approx(stats.ks_2samp(r, c).statistic, abs=1e-12)
        w1 = stats.wasserstein_distance(r, c) / r.std()
        assert got["wasserstein"] == pytest.approx(w1, rel=1e-9)
        assert got["psi"] == pytest.approx(_exact_psi(r, c, 10), rel=1e-9)
    keys = ["paris", "lyon", "nice", "lille", "brest"]
    p = ref["city"].value_counts(normalize=True).reindex(keys, fill_value=0)
    q = cur["city"].value_counts(normalize=True).reindex(keys, fill_value=0)
    city = by_name["city"].stats
    assert city["js"] == pytest.approx(jensenshannon(p, q, base=2), abs=1e-12)
    assert city["linf"] == pytest.approx(float(np.max(np.abs(p - q))), abs=1e-12)
    assert by_name["sparse"].stats["missing_ref"] == pytest.approx(ref["sparse"].isna().mean())


def test_sketched_statistics_stay_within_the_documented_error() -> None:
    ref, cur = _pair(1, 60_000, 45_000, shift=0.2)
    report = compute_drift([ref], [cur], spec(), sketch_size=256)
    for column in report.columns:
        if column.kind != "numeric":
            continue
        r, c = ref[column.name].dropna().to_numpy(), cur[column.name].dropna().to_numpy()
        bound = column.approx_error
        assert 0 < bound < 0.1
        assert abs(column.stats["ks"] - stats.ks_2samp(r, c).statistic) <= bound
        span = max(r.max(), c.max()) - min(r.min(), c.min())
        w1 = stats.wasserstein_distance(r, c) / r.std()
        assert abs(column.stats["wasserstein"] - w1) <= bound * span / r.std()


def test_report_does_not_depend_on_how_the_data_is_chunked() -> None:
    ref, cur = _pair(2, 20_000, 15_000, shift=0.4)
    ref["when"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(20_000), unit="min")
    cur["when"] = pd.Timestamp("2024-01-05") + pd.to_timedelta(np.arange(15_000), unit="min")
    one = compute_drift([ref], [cur], spec(), sketch_size=1024).to_json()
    many = compute_drift(_chunks(ref, 37, 1), iter(_chunks(cur, 37, 2)), spec(),
                         sketch_size=1024).to_json()
    assert _same(one, many)


def _same(one: Any, other: Any) -> bool:
    """Equal JSON, floats within 1e-9 (means and variances are summed in another order)."""
    if isinstance(one, dict):
        assert one.keys() == other.keys()
        return all(_same(one[k], other[k]) for k in one)
    if isinstance(one, list):
        assert len(one) == len(other)
        return all(_same(a, b) for a, b in zip(one, other, strict=True))
    if isinstance(one, float):
        assert other == pytest.approx(one, rel=1e-9, abs=1e-12)
        return True
    assert one == other
    return True


def test_no_shift_raises_no_alert_across_50_seeds() -> None:
    checked = spec(wasserstein=0.1)
    for seed in range(50):
        sizes = np.random.default_rng(1000 + seed).integers(5_000, 20_001, 2)
        ref, cur = _pair(seed, int(sizes[0]), int(sizes[1]))
        report = compute_drift([ref], [cur], checked)
        assert not report.drifted, (seed, render_text(report))
        assert report.level == "ok" and not report.failed


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_half_std_mean_shift_breaches_psi_and_ks(seed: int) -> None:
    ref, cur = _pair(seed, 10_000, 10_000, shift=1.0)  # std 2: a shift of 0.5 std
    normal = next(c for c in compute_drift([ref], [cur], spec()).drifted)
    assert normal.name == "normal"
    assert normal.breaches == ["psi", "ks"] and normal.level == "warn"
    assert normal.stats["wasserstein"] == pytest.approx(0.5, abs=0.05)


def test_a_category_share_moved_by_20_points_breaches_js() -> None:
    ref = pd.DataFrame({"c": ["a"] * 500 + ["b"] * 300 + ["c"] * 200})
    cur = pd.DataFrame({"c": ["a"] * 300 + ["b"] * 300 + ["c"] * 400})
    column = compute_drift([ref], [cur], spec()).columns[0]
    assert column.stats["linf"] == pytest.approx(0.2)
    assert column.stats["js"] == pytest.approx(jensenshannon([.5, .3, .2], [.3, .3, .4], base=2))
    assert "js" in column.breaches and "psi" in column.breaches
    moved_more = pd.DataFrame({"c": ["a"] * 290 + ["b"] * 300 + ["c"] * 410})
    assert "linf" in compute_drift([ref], [moved_more], spec()).columns[0].breaches


def test_ten_more_points_of_missing_values_breach_missing() -> None:
    rng = np.random.default_rng(3)
    every_20th = np.arange(10_000) % 20
    ref = pd.DataFrame({"x": np.where(every_20th == 0, np.nan, rng.normal(size=10_000))})
    cur = pd.DataFrame({"x": np.where(every_20th < 3, np.nan, rng.normal(size=10_000))})
    report = compute_drift([ref], [cur], spec())
    column = report.columns[0]
    assert column.breaches == ["missing"]
    assert column.stats["missing_delta"] == pytest.approx(0.10)
    assert "missing 5.0% → 15.0% (limit ±5.0%)" in render_text(report)


def test_column_overrides_ignore_and_on_drift() -> None:
    ref, cur = _pair(4, 8_000, 8_000, shift=1.0)
    cur["lognormal"] = cur["lognormal"] * 1.5
    config = spec(columns={"normal": {"psi": 5, "ks": 0.5},
                           "lognormal": {"on_drift": "fail"},
                           "count": {"wasserstein": 0.0001},
                           "flag": {"ignore": True},
                           "typo": {"ignore": True}})
    report = compute_drift([ref], [cur], config)
    by_name = {c.name: c for c in report.columns}
    assert by_name["normal"].breaches == [] and by_name["normal"].thresholds["ks"] == 0.5
    assert by_name["lognormal"].level == "fail" and report.failed
    assert by_name["count"].breaches == ["wasserstein"] and by_name["count"].level == "warn"
    assert "flag" not in by_name and report.ignored == ["flag"]
    assert any("'typo'" in note for note in report.notes)
    assert not compute_drift([ref], [cur], spec(columns={"lognormal": {"ignore": True}})).failed
    everything_fails = compute_drift([ref], [cur], spec(on_drift="fail"))
    assert everything_fails.failed and {c.level for c in everything_fails.drifted} == {"fail"}


def test_a_read_only_look_alike_spec_is_enough() -> None:
    ref, cur = _pair(5, 5_000, 5_000, shift=1.0)
    look_alike = SimpleNamespace(psi=0.2, ks=0.1, wasserstein=None, js=0.1, linf=0.2,
                                 missing=0.05, on_drift="fail", bins=10, top=3,
                                 columns={"city": SimpleNamespace(
                                     psi=None, ks=None, wasserstein=None, js=None, linf=None,
                                     missing=None, on_drift=None, ignore=True)})
    report = compute_drift([ref], [cur], look_alike)
    assert report.failed and report.drifted[0].name == "normal" and report.ignored == ["city"]


def test_added_removed_and_retyped_columns_are_alerts() -> None:
    ref = pd.DataFrame({"kept": [1.0, 2.0, 3.0], "gone": [1, 2, 3], "retyped": [1, 2, 3]})
    cur = pd.DataFrame({"kept": [1.0, 2.0, 3.0], "new": ["a", "b", "c"],
                        "retyped": ["1", "2", None]})
    report = compute_drift([ref], [cur], spec())
    by_name = {c.name: c for c in report.columns}
    assert [c.name for c in report.columns] == ["kept", "gone", "retyped", "new"]
    assert by_name["gone"].breaches == ["removed"] and by_name["new"].breaches == ["added"]
    assert by_name["retyped"].breaches == ["dtype", "missing"]
    assert by_name["kept"].breaches == []
    assert math.isinf(by_name["gone"].severity)
    text = render_text(report)
    assert "only in the reference" in text and "type changed: int64 →" in text


def test_all_missing_and_constant_columns() -> None:
    ref = pd.DataFrame({"empty": [np.nan] * 100, "lost": np.arange(100.0),
                        "const": [5.0] * 100, "moved": [5.0] * 100})
    cur = pd.DataFrame({"empty": [np.nan] * 80, "lost": [None] * 80,
                        "const": [5.0] * 80, "moved": [6.0] * 80})
    report = compute_drift([ref], [cur], spec())
    by_name = {c.name: c for c in report.columns}
    assert by_name["empty"].breaches == [] and by_name["empty"].stats["ks"] is None
    assert by_name["lost"].breaches == ["missing"] and by_name["lost"].stats["missing_cur"] == 1
    const = by_name["const"].stats
    assert by_name["const"].breaches == [] and (const["psi"], const["ks"]) == (0.0, 0.0)
    assert const["wasserstein"] == 0.0
    moved = by_name["moved"]
    assert moved.breaches == ["psi", "ks"] and moved.stats["ks"] == 1.0
    assert math.isinf(moved.stats["wasserstein"] or 0.0)  # zero reference std
    data = render_json(report)
    json.dumps(data, allow_nan=False)
    assert data["columns"][3]["stats"]["wasserstein"] is None


@pytest.mark.parametrize("current", [[], [pd.DataFrame({"x": pd.Series([], dtype=float)})]])
def test_empty_current_data_is_an_alert_not_a_crash(current: list[pd.DataFrame]) -> None:
    ref = pd.DataFrame({"x": [1.0, 2.0], "c": ["a", "b"]})
    report = compute_drift([ref], current, spec(on_drift="fail"))
    assert report.current_rows == 0 and report.failed
    assert [c.breaches for c in report.columns] == [["empty"], ["empty"]]
    assert "the current data has no rows" in report.notes
    assert "no rows to compare" in render_text(report)


def test_markdown_writes_a_png_per_top_column_in_severity_order(tmp_path: Path) -> None:
    ref, cur = _pair(6, 6_000, 6_000, shift=2.0)
    cur["city"] = np.where(np.arange(6_000) % 2 == 0, "paris", cur["city"])
    cur.loc[cur.index[:1500], "count"] = np.nan
    cur["lognormal"] = cur["lognormal"] * 1.3
    report = compute_drift([ref], [cur], spec(top=3))
    order = [c.name for c in report.drifted]
    assert len(order) >= 4
    severities = [c.severity for c in report.drifted]
    assert severities == sorted(severities, reverse=True)
    markdown = render_markdown(report, tmp_path / "img", tmp_path)
    positions = [markdown.index(f"#### {rank}. `{name}`")
                 for rank, name in enumerate(order[:3], start=1)]
    assert positions == sorted(positions)
    assert f"#### 4. `{order[3]}`" not in markdown and "more drifted columns" in markdown
    pictures = sorted((tmp_path / "img").iterdir())
    assert [p.name for p in pictures] == sorted(plot_name(n) for n in order[:3])
    for picture in pictures:
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"](img/{picture.name})" in markdown
    assert "| column | kind |" in markdown and "`flag`" in markdown
    assert "![" not in render_markdown(report)  # no image folder: no images


def test_plot_names_are_safe_and_distinct() -> None:
    names = ["a/b", "a b", "a:b", "../x", ""]
    files = [plot_name(n) for n in names]
    assert len(set(files)) == len(files)
    assert all("/" not in f and " " not in f and f.endswith(".png") for f in files)
