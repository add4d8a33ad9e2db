"""The Python SDK: sluice.context(), sluice.output(), sluice.sample() and sample_mask()."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]
import pytest
from hypothesis import given
from hypothesis import strategies as st

import sluice
import sluice.sdk  # loaded now, not lazily inside a hypothesis test (see KEY below)
from sluice.data.sampling import key_hashes
from sluice.errors import UsageError

ENV_VARS = ("SLUICE_TIER", "SLUICE_FRACTION", "SLUICE_SEED", "SLUICE_STAGE", "SLUICE_RUN_ID",
            "SLUICE_OUTS", "SLUICE_OUT_MODEL", "SLUICE_OUT_EVAL_REPORT")


@pytest.fixture(autouse=True)
def _outside_sluice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts as a script run by hand (the suite itself may run under sluice)."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


KEYS_100K = [f"user-{i}" for i in range(100_000)]


# --------------------------------------------------------------------------- import cost

def test_import_sluice_loads_neither_pandas_nor_numpy() -> None:
    code = ("import sys, sluice; ctx = sluice.context(); sluice.sample(['a', 'b'], 0.5); "
            "print(sorted(m for m in ('pandas', 'numpy', 'pyarrow') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.strip() == "[]"


def test_package_exports_sdk_names() -> None:
    for name in sluice.__all__:
        assert callable(getattr(sluice, name))
    with pytest.raises(AttributeError):
        _ = sluice.no_such_name


# --------------------------------------------------------------------------- context

def test_context_defaults_outside_sluice() -> None:
    ctx = sluice.context()
    assert ctx == sluice.StageContext(tier="default", fraction=1.0, seed=0, stage=None,
                                      run_id=None, outs={})
    assert not ctx.under_sluice
    assert not ctx.smoke


def test_context_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_TIER", "pr")
    monkeypatch.setenv("SLUICE_FRACTION", "0.02")
    monkeypatch.setenv("SLUICE_SEED", "7")
    monkeypatch.setenv("SLUICE_STAGE", "train")
    monkeypatch.setenv("SLUICE_RUN_ID", "run-123")
    monkeypatch.setenv("SLUICE_OUTS", json.dumps({"model": "models/m.pkl"}))
    ctx = sluice.context()
    assert (ctx.tier, ctx.fraction, ctx.seed, ctx.stage, ctx.run_id) == \
        ("pr", 0.02, 7, "train", "run-123")
    assert ctx.outs == {"model": "models/m.pkl"}
    assert ctx.under_sluice and ctx.smoke


def test_context_is_frozen_and_hashable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_OUTS", '{"a": "b"}')
    ctx = sluice.context()
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.tier = "x"  # type: ignore[misc]
    assert hash(ctx) == hash(sluice.context())


def test_empty_variables_take_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLUICE_TIER", "SLUICE_FRACTION", "SLUICE_SEED", "SLUICE_OUTS"):
        monkeypatch.setenv(name, "")
    assert sluice.context() == sluice.StageContext()


@pytest.mark.parametrize("value", ["abc", "0", "-0.1", "1.5", "nan", "inf", "2%"])
def test_invalid_fraction_in_environment(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SLUICE_FRACTION", value)
    with pytest.raises(UsageError) as info:
        sluice.context()
    assert "SLUICE_FRACTION" in str(info.value) and repr(value) in str(info.value)
    assert info.value.hint


@pytest.mark.parametrize("value", ["x", "1.5", "-1"])
def test_invalid_seed_in_environment(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SLUICE_SEED", value)
    with pytest.raises(UsageError, match="SLUICE_SEED"):
        sluice.context()


@pytest.mark.parametrize("value", ["{not json", '["a"]', '{"a": 1}'])
def test_invalid_outs_in_environment(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SLUICE_OUTS", value)
    with pytest.raises(UsageError, match="SLUICE_OUTS"):
        sluice.context()


def test_invalid_fraction_fails_sample_through_context(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_FRACTION", "abc")
    with pytest.raises(UsageError, match="SLUICE_FRACTION"):
        sluice.sample(["a"])


# --------------------------------------------------------------------------- output

def test_output_from_outs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_OUTS", json.dumps({"model": "models/m.pkl",
                                                  "eval-report": "r.json"}))
    assert sluice.output("model") == Path("models/m.pkl")
    assert sluice.output("eval-report") == Path("r.json")


def test_output_falls_back_to_single_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_OUT_EVAL_REPORT", "out/report.json")
    assert sluice.output("eval-report") == Path("out/report.json")


def test_unknown_output_names_the_available_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_STAGE", "train")
    monkeypatch.setenv("SLUICE_OUTS", json.dumps({"model": "m.pkl", "metrics": "m.json"}))
    with pytest.raises(UsageError) as info:
        sluice.output("modle")
    text = str(info.value)
    assert "`modle`" in text and "train" in text and "metrics, model" in text


def test_output_without_any_outputs() -> None:
    with pytest.raises(UsageError, match="SLUICE_OUT_MODEL"):
        sluice.output("model")


# --------------------------------------------------------------------------- sampling lists

def test_same_sample_on_every_call() -> None:
    first = sluice.sample(KEYS_100K, 0.05)
    assert first == sluice.sample(KEYS_100K, 0.05)
    assert first == sluice.sample(tuple(KEYS_100K), 0.05)
    assert first == sluice.sample(np.array(KEYS_100K), 0.05)


def test_same_sample_in_separate_processes() -> None:
    code = ("import json, sluice; "
            "keys = [f'user-{i}' for i in range(20000)] + list(range(20000)); "
            "print(json.dumps(sluice.sample(keys, 0.03, seed=5)))")
    outputs = []
    for hash_seed in ("1", "2"):  # a different str hash() in each: it must not matter
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True, env=env, timeout=60)
        outputs.append(json.loads(result.stdout))
    keys = [f"user-{i}" for i in range(20000)] + list(range(20000))
    assert outputs[0] == outputs[1] == sluice.sample(keys, 0.03, seed=5)


def test_pinned_hashes_never_change() -> None:
    """The sample must not drift between sluice versions: pin the hash of a few keys."""
    assert key_hashes(["user-1", 42, "42", 42.0, None, ""], seed=0) == [
        key_hashes([b"user-1"])[0], *key_hashes([b"42"] * 3), *key_hashes([b""] * 2)]
    assert key_hashes(["user-1"], seed=0) == [0x7C7615C11438E5C9]
    assert key_hashes(["user-1"], seed=3) == [0x125FAF448D374271]
    assert sluice.sample([f"user-{i}" for i in range(40)], 0.2) == [
        "user-2", "user-4", "user-5", "user-6", "user-9", "user-16", "user-18", "user-19",
        "user-20"]
    assert sluice.sample(list(range(40)), 0.2, seed=9) == [1, 8, 18, 19, 21, 27, 29, 31, 39]


def test_kept_share_within_tolerance() -> None:
    for seed in (0, 1, 2):
        kept = sluice.sample(KEYS_100K, 0.02, seed=seed)
        assert abs(len(kept) / len(KEYS_100K) - 0.02) <= 0.003
    ints = sluice.sample(list(range(100_000)), 0.02)
    assert abs(len(ints) / 100_000 - 0.02) <= 0.003


def test_seeds_give_different_samples() -> None:
    assert sluice.sample(KEYS_100K, 0.1, seed=0) != sluice.sample(KEYS_100K, 0.1, seed=1)


def test_keeps_original_order_and_duplicates_together() -> None:
    keys = ["b", "a", "c", "a", "b", "d"] * 50
    kept = sluice.sample(keys, 0.5)
    assert kept == [k for k in keys if k in set(kept)]


def test_fraction_one_returns_everything() -> None:
    assert sluice.sample(KEYS_100K[:1000], 1.0) == KEYS_100K[:1000]
    assert sluice.sample(KEYS_100K[:1000], 1) == KEYS_100K[:1000]
    assert sluice.sample_mask(KEYS_100K[:10], 1.0) == [True] * 10


def test_fraction_defaults_to_the_context(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sluice.sample(KEYS_100K[:500]) == KEYS_100K[:500]
    monkeypatch.setenv("SLUICE_FRACTION", "0.1")
    assert sluice.sample(KEYS_100K) == sluice.sample(KEYS_100K, 0.1)
    assert sluice.sample_mask(KEYS_100K) == sluice.sample_mask(KEYS_100K, 0.1)


@pytest.mark.parametrize("fraction", [0, -0.5, 1.01, math.nan, math.inf, "0.1", True])
def test_invalid_fraction_errors(fraction: object) -> None:
    with pytest.raises(UsageError, match="fraction"):
        sluice.sample(["a", "b"], fraction)  # type: ignore[call-overload]
    with pytest.raises(UsageError, match="fraction"):
        sluice.sample_mask(["a", "b"], fraction)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [-1, 1.5, "0", 2**64])
def test_invalid_seed_errors(seed: object) -> None:
    with pytest.raises(UsageError, match="seed"):
        sluice.sample(["a"], 0.5, seed=seed)  # type: ignore[call-overload]


def test_wrong_kinds_of_data_error() -> None:
    with pytest.raises(UsageError, match="single string"):
        sluice.sample("abc", 0.5)
    with pytest.raises(UsageError, match="cannot sample"):
        sluice.sample({"a": 1}, 0.5)
    with pytest.raises(UsageError, match="only to DataFrames"):
        sluice.sample(["a"], 0.5, key="id")
    with pytest.raises(UsageError, match="labels"):
        sluice.sample(["a", "b"], 0.5, stratify="label")
    with pytest.raises(UsageError, match="2 labels for 3 keys"):
        sluice.sample(["a", "b", "c"], 0.5, stratify=["x", "y"])


def test_sample_mask_matches_sample() -> None:
    keys = list(range(5000))
    mask = sluice.sample_mask(keys, 0.2, seed=4)
    assert all(isinstance(m, bool) for m in mask)
    assert [k for k, m in zip(keys, mask, strict=True) if m] == sluice.sample(keys, 0.2, seed=4)
    array = np.arange(5000)
    assert list(array[np.asarray(sluice.sample_mask(array, 0.2, seed=4))]) == \
        sluice.sample(keys, 0.2, seed=4)


def test_int_str_and_integral_float_keys_agree() -> None:
    """An id read as int from Parquet, as text from CSV or as float with NaNs is one key."""
    ints = list(range(3000))
    mask = sluice.sample_mask(ints, 0.3)
    assert sluice.sample_mask([str(i) for i in ints], 0.3) == mask
    assert sluice.sample_mask([float(i) for i in ints], 0.3) == mask
    assert sluice.sample_mask(np.arange(3000, dtype=np.int32), 0.3) == mask


# Keys are ints and strings built from ints: st.text() would make hypothesis cache its
# Unicode tables outside the test's temporary folder, which the write guard forbids.
KEY = st.one_of(st.integers(), st.integers().map(lambda i: f"k{i}"),
                st.sampled_from(["", "é", "a,b", "x\x00y", "😀"]), st.none(),
                st.floats(allow_nan=True))


@given(st.lists(KEY, max_size=60), st.lists(KEY, max_size=60),
       st.floats(min_value=0.01, max_value=1.0), st.integers(min_value=0, max_value=2**32))
def test_old_sample_is_a_subset_after_appends(old: list[object], new: list[object],
                                              fraction: float, seed: int) -> None:
    before = sluice.sample(old, fraction, seed=seed)
    after = sluice.sample(old + new, fraction, seed=seed)
    assert after[:len(before)] == before  # the old rows kept, in order, then the new ones
    assert set(map(repr, before)) <= set(map(repr, after))


@given(st.lists(st.integers(), max_size=200), st.floats(min_value=0.01, max_value=0.5),
       st.floats(min_value=0.01, max_value=0.5))
def test_smaller_fraction_keeps_a_subset(keys: list[int], a: float, b: float) -> None:
    small, large = sorted((a, b))
    assert set(sluice.sample(keys, small)) <= set(sluice.sample(keys, large))


# --------------------------------------------------------------------------- DataFrames

def _frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"user_id": np.arange(n), "name": [f"u{i}" for i in range(n)],
                         "x": rng.normal(size=n)}, index=pd.RangeIndex(1000, 1000 + n))


def test_frame_sample_keeps_order_index_and_columns() -> None:
    frame = _frame(50_000)
    kept = sluice.sample(frame, 0.02, key="user_id")
    assert list(kept.columns) == list(frame.columns)
    assert kept.index.is_monotonic_increasing
    pd.testing.assert_frame_equal(kept, frame.loc[kept.index])
    assert list(kept["user_id"]) == sluice.sample(list(range(50_000)), 0.02)
    assert abs(len(kept) / len(frame) - 0.02) <= 0.003


def test_frame_sample_same_every_call_and_superset_on_append() -> None:
    frame = _frame(20_000)
    first = sluice.sample(frame, 0.05, key="name")
    pd.testing.assert_frame_equal(first, sluice.sample(frame, 0.05, key="name"))
    grown = pd.concat([frame, _frame(40_000).iloc[20_000:].sample(frac=1.0, random_state=1)])
    after = sluice.sample(grown, 0.05, key="name")
    assert set(first["name"]) <= set(after["name"])
    pd.testing.assert_frame_equal(after.iloc[:len(first)], first)


def test_frame_key_none_uses_the_index() -> None:
    frame = _frame(5000).set_index("name")
    kept = sluice.sample(frame, 0.1)
    assert list(kept.index) == sluice.sample([f"u{i}" for i in range(5000)], 0.1)


def test_composite_key_equals_multiindex_and_tuples() -> None:
    frame = _frame(5000)
    by_columns = sluice.sample(frame, 0.1, key=["user_id", "name"])
    by_index = sluice.sample(frame.set_index(["user_id", "name"]), 0.1)
    assert list(by_columns["name"]) == list(by_index.index.get_level_values("name"))
    tuples = list(zip(frame["user_id"].tolist(), frame["name"].tolist(), strict=True))
    assert [t[1] for t in sluice.sample(tuples, 0.1)] == list(by_columns["name"])
    assert list(by_columns["name"]) != list(sluice.sample(frame, 0.1, key="name")["name"])


def test_frame_fraction_one_returns_the_frame_itself() -> None:
    frame = _frame(100)
    assert sluice.sample(frame, 1.0, key="user_id") is frame
    with pytest.raises(UsageError, match="user"):  # a typo fails in every tier
        sluice.sample(frame, 1.0, key="user")


def test_frame_missing_column_names_the_available_ones() -> None:
    frame = _frame(10)
    with pytest.raises(UsageError) as info:
        sluice.sample(frame, 0.5, key="userid")
    assert "`userid`" in str(info.value) and "user_id, name, x" in str(info.value)
    assert "did you mean `user_id`" in str(info.value)
    with pytest.raises(UsageError, match="stratify column `label`"):
        sluice.sample(frame, 0.5, key="user_id", stratify="label")


def test_series_sample() -> None:
    series = pd.Series([f"k{i}" for i in range(3000)], index=range(5, 3005))
    kept = sluice.sample(series, 0.1)
    assert list(kept) == sluice.sample(list(series), 0.1)
    pd.testing.assert_series_equal(kept, series.loc[kept.index])


def test_join_keys_survive_sampling_two_tables() -> None:
    users = pd.DataFrame({"user_id": range(5000), "age": range(5000)})
    events = pd.DataFrame({"user_id": [i % 5000 for i in range(20_000)], "e": range(20_000)})
    u = sluice.sample(users, 0.05, key="user_id")
    e = sluice.sample(events, 0.05, key="user_id")
    assert set(e["user_id"]) == set(u["user_id"])


# --------------------------------------------------------------------------- stratification

STRATA = {"big": 50_000, "mid": 20_000, "small": 5_000, "rare": 40, "tiny": 3, "one": 1}


def _stratified_frame() -> pd.DataFrame:
    labels = [label for label, size in STRATA.items() for _ in range(size)]
    rng = np.random.default_rng(3)
    order = rng.permutation(len(labels))
    return pd.DataFrame({"id": [f"row-{i}" for i in range(len(labels))],
                         "label": [labels[i] for i in order]})


def test_stratified_share_per_class_and_tiny_classes_kept() -> None:
    frame = _stratified_frame()
    fraction = 0.02
    kept = sluice.sample(frame, fraction, key="id", stratify="label")
    counts = kept["label"].value_counts()
    for label, size in STRATA.items():
        assert counts.get(label, 0) >= 1, label
        if size >= 1000:
            tolerance = 5 * math.sqrt(fraction * (1 - fraction) / size)
            assert abs(counts[label] / size - fraction) <= tolerance, label


def test_stratified_fallback_is_the_smallest_hash_of_the_stratum() -> None:
    frame = _stratified_frame()
    plain = sluice.sample(frame, 0.02, key="id")
    kept = sluice.sample(frame, 0.02, key="id", stratify="label")
    assert set(plain["id"]) <= set(kept["id"])  # stratifying only adds fallback rows
    for label in set(STRATA) - set(plain["label"]):
        rows = frame[frame["label"] == label]
        hashes = key_hashes(rows["id"].tolist())
        chosen = rows["id"].iloc[int(np.argmin(np.array(hashes, dtype=np.uint64)))]
        assert list(kept.loc[kept["label"] == label, "id"]) == [chosen]


def test_stratified_missing_labels_are_one_stratum() -> None:
    frame = pd.DataFrame({"id": range(200), "label": [None, math.nan] * 5 + ["a"] * 190})
    kept = sluice.sample(frame, 0.01, key="id", stratify="label")
    assert kept["label"].isna().sum() >= 1
    assert (kept["label"] == "a").sum() >= 1


def test_stratified_sequences_with_labels() -> None:
    keys = list(range(10_000))
    labels = ["pos" if k < 20 else "neg" for k in keys]
    mask = sluice.sample_mask(keys, 0.01, stratify=labels)
    assert sum(m for m, label in zip(mask, labels, strict=True) if label == "pos") >= 1
    assert [k for k, m in zip(keys, mask, strict=True) if m] == \
        sluice.sample(keys, 0.01, stratify=np.array(labels))


def test_stratify_on_several_columns() -> None:
    frame = pd.DataFrame({"id": range(4000), "a": [i % 2 for i in range(4000)],
                          "b": ["x" if i < 3996 else "y" for i in range(4000)]})
    kept = sluice.sample(frame, 0.001, key="id", stratify=["a", "b"])
    assert set(map(tuple, kept[["a", "b"]].values.tolist())) == {(0, "x"), (1, "x"),
                                                                  (0, "y"), (1, "y")}
