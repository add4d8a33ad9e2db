"""The optional Python SDK for stage code: the run's context and deterministic sampling.

Stage code never needs it: everything here reads the environment variables
sluice sets (``SLUICE_TIER``, ``SLUICE_FRACTION``, ``SLUICE_SEED``,
``SLUICE_STAGE``, ``SLUICE_RUN_ID``, ``SLUICE_OUTS``, ``SLUICE_OUT_<NAME>``) and
falls back to defaults when a script runs on its own. The sampling rule is in
``sluice.data.sampling``. pandas is imported only when a DataFrame is passed in.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, overload

from sluice.data.sampling import (
    check_fraction,
    check_seed,
    composite_keys,
    keep_flags,
    key_hashes,
    missing_column,
    stratum_label,
)
from sluice.errors import UsageError

T = TypeVar("T")

DEFAULT_TIER = "default"


@dataclass(frozen=True)
class StageContext:
    """What sluice tells a stage about the run it is part of."""

    tier: str = DEFAULT_TIER
    fraction: float = 1.0
    seed: int = 0
    stage: str | None = None
    run_id: str | None = None
    outs: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def under_sluice(self) -> bool:
        """Whether sluice started this process (it sets ``SLUICE_STAGE``)."""
        return self.stage is not None

    @property
    def smoke(self) -> bool:
        """Whether this tier runs on a sample of the data (fraction below 1)."""
        return self.fraction < 1.0


def _env(name: str) -> str | None:
    """The variable's value, or None when it is unset or empty."""
    value = os.environ.get(name)
    return value if value else None


def _parse_fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"SLUICE_FRACTION={text!r} is not a number",
                         hint="set it to a number greater than 0 and at most 1, e.g. 0.02, "
                              "or unset it") from None
    if not 0.0 < value <= 1.0:
        raise UsageError(f"SLUICE_FRACTION={text!r} is not greater than 0 and at most 1",
                         hint="set it to a number such as 0.02 (2 %) or 1 (all data), "
                              "or unset it")
    return value


def _parse_seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"SLUICE_SEED={text!r} is not an integer",
                         hint="set it to a non-negative integer such as 0, or unset it") \
            from None
    if value < 0:
        raise UsageError(f"SLUICE_SEED={text!r} is negative",
                         hint="set it to a non-negative integer such as 0, or unset it")
    return value


def _parse_outs(text: str) -> dict[str, str]:
    try:
        value = json.loads(text)
    except ValueError as error:
        raise UsageError(f"SLUICE_OUTS is not valid JSON: {error}",
                         hint='set it to a JSON object of output names to paths, e.g. '
                              '{"model": "models/churn.pkl"}, or unset it') from None
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise UsageError("SLUICE_OUTS is not a JSON object of output names to paths",
                         hint='e.g. {"model": "models/churn.pkl"}, or unset it')
    return dict(value)


def context() -> StageContext:
    """The stage's context from the environment, with defaults outside sluice.

    Outside sluice: tier ``"default"``, fraction 1.0, seed 0, no stage, run id or
    outputs. An unset or empty variable takes its default; an invalid one raises
    ``UsageError``. The environment is read on every call.
    """
    tier = _env("SLUICE_TIER") or DEFAULT_TIER
    fraction_text = _env("SLUICE_FRACTION")
    seed_text = _env("SLUICE_SEED")
    outs_text = _env("SLUICE_OUTS")
    return StageContext(
        tier=tier,
        fraction=1.0 if fraction_text is None else _parse_fraction(fraction_text),
        seed=0 if seed_text is None else _parse_seed(seed_text),
        stage=_env("SLUICE_STAGE"),
        run_id=_env("SLUICE_RUN_ID"),
        outs={} if outs_text is None else _parse_outs(outs_text),
    )


def _out_variable(name: str) -> str:
    return f"SLUICE_OUT_{name.upper().replace('-', '_')}"


def output(name: str) -> Path:
    """The path of the declared output ``name`` (relative to the repo root, as in sluice.yaml).

    Looks in ``SLUICE_OUTS`` first, then in ``SLUICE_OUT_<NAME>`` (upper case,
    ``-`` as ``_``), so a script run by hand can set that one variable.
    """
    ctx = context()
    outs = ctx.outs
    if name in outs:
        return Path(outs[name])
    direct = _env(_out_variable(name))
    if direct is not None:
        return Path(direct)
    if outs:
        where = f"stage `{ctx.stage}`" if ctx.stage else "this stage"
        raise UsageError(f"{where} has no output `{name}`; its outputs are: "
                         + ", ".join(sorted(outs)),
                         hint="use one of those names, or declare the output under `outs:` "
                              "in sluice.yaml")
    raise UsageError(f"no output `{name}`: this process was not given any outputs",
                     hint=f"run it through sluice with `{name}` under the stage's `outs:`, "
                          f"or set {_out_variable(name)} to a path")


# --------------------------------------------------------------------------- sampling

def _pandas_types() -> tuple[Any, Any] | None:
    pandas = sys.modules.get("pandas")  # data cannot be a DataFrame if pandas isn't loaded
    if pandas is None:
        return None
    return pandas.DataFrame, pandas.Series


def _resolve_fraction(fraction: float | None) -> float:
    if fraction is None:
        return context().fraction
    return check_fraction(fraction)


def _frame_column(frame: Any, name: Hashable, role: str) -> list[object]:
    if name not in frame.columns:
        raise missing_column("the DataFrame", name, frame.columns, role)
    column = frame[name]
    if getattr(column, "ndim", 1) != 1:
        raise UsageError(f"{role} column `{name}` appears more than once in the DataFrame",
                         hint="give the columns unique names")
    return list(column.tolist())


def _frame_keys(frame: Any, key: Hashable | Sequence[Hashable] | None) -> list[object]:
    if key is None:
        index = frame.index
        if index.nlevels > 1:  # a MultiIndex: a composite key, one part a level
            return composite_keys([index.get_level_values(i).tolist()
                                   for i in range(index.nlevels)])
        return list(index.tolist())
    names = list(key) if isinstance(key, list | tuple) else [key]
    if not names:
        raise UsageError("key= is an empty list", hint="name at least one column")
    return composite_keys([_frame_column(frame, name, "key") for name in names])


def _frame_strata(frame: Any, stratify: object) -> list[Hashable] | None:
    if stratify is None:
        return None
    names = list(stratify) if isinstance(stratify, list | tuple) else [stratify]
    columns = [_frame_column(frame, name, "stratify") for name in names]
    if len(columns) == 1:
        return [stratum_label(v) for v in columns[0]]
    return [tuple(stratum_label(v) for v in row) for row in zip(*columns, strict=True)]


def _labels(stratify: Any, count: int) -> list[Hashable] | None:
    if stratify is None:
        return None
    if isinstance(stratify, str | bytes) or not hasattr(stratify, "__len__"):
        raise UsageError("stratify= names a column only for DataFrames; for a sequence of "
                         "keys pass a sequence of labels, one a key",
                         hint="e.g. sluice.sample(ids, 0.1, stratify=labels)")
    labels = list(stratify.tolist() if hasattr(stratify, "tolist") else stratify)
    if len(labels) != count:
        raise UsageError(f"stratify has {len(labels)} labels for {count} keys",
                         hint="pass one stratum label per key")
    return [stratum_label(v) for v in labels]


def _key_list(data: object) -> list[Any]:
    if isinstance(data, str | bytes):
        raise UsageError("sluice.sample() got a single string, not a sequence of keys",
                         hint="pass a list of keys, e.g. sluice.sample(['a', 'b'], 0.5)")
    if hasattr(data, "tolist"):  # NumPy arrays, pandas Index: native Python values
        return list(data.tolist())
    if not isinstance(data, Sequence):
        raise UsageError(f"sluice.sample() cannot sample a {type(data).__name__}",
                         hint="pass a pandas DataFrame, a Series, or a list, tuple or "
                              "NumPy array of keys")
    return list(data)


@overload
def sample(data: Sequence[T], fraction: float | None = ..., *, key: None = ...,
           stratify: Sequence[Hashable] | None = ..., seed: int = ...) -> list[T]: ...


@overload
def sample(data: Any, fraction: float | None = ..., *,
           key: Hashable | Sequence[Hashable] | None = ...,
           stratify: Any = ..., seed: int = ...) -> Any: ...


def sample(data: Any, fraction: float | None = None, *,
           key: Hashable | Sequence[Hashable] | None = None,
           stratify: Any = None, seed: int = 0) -> Any:
    """The deterministic ``fraction`` sample of ``data`` (``sluice.data.sampling`` has the rule).

    - a pandas DataFrame: rows whose ``key`` (a column, a list of columns for a
      composite key, or None for the index) is kept; original order and index.
      ``stratify`` names the column(s) whose classes each keep ≈ ``fraction`` and
      at least one row.
    - a pandas Series: the elements whose value is kept (index kept).
    - a list, tuple or NumPy array of keys: the list of kept keys; ``stratify``
      may be a sequence of labels, one a key.

    ``fraction`` defaults to ``sluice.context().fraction`` (1 outside sluice); at 1
    a DataFrame or Series comes back unchanged (the same object). ``seed`` picks
    another, independent sample; it defaults to 0 (not the tier's seed), so the
    smoke sample stays the same across the tier's training seeds.
    """
    fraction = _resolve_fraction(fraction)
    seed = check_seed(seed)
    pandas = _pandas_types()
    if pandas is not None and isinstance(data, pandas[0]):
        keys = _frame_keys(data, key)
        strata = _frame_strata(data, stratify)
        if fraction >= 1.0:
            return data
        flags = keep_flags(key_hashes(keys, seed), fraction, strata)
        return data[_bool_array(flags)]
    if key is not None:
        raise UsageError("key= names columns, so it applies only to DataFrames",
                         hint="for a sequence, the elements themselves are the keys")
    if pandas is not None and isinstance(data, pandas[1]):
        labels = _labels(stratify, len(data))
        if fraction >= 1.0:
            return data
        return data[_bool_array(keep_flags(key_hashes(data.tolist(), seed), fraction,
                                           labels))]
    keys = _key_list(data)
    labels = _labels(stratify, len(keys))
    if fraction >= 1.0:
        return keys
    flags = keep_flags(key_hashes(keys, seed), fraction, labels)
    return [k for k, keep in zip(keys, flags, strict=True) if keep]


def sample_mask(keys: Any, fraction: float | None = None, seed: int = 0, *,
                stratify: Any = None) -> list[bool]:
    """One bool a key: whether ``sample`` keeps it (``numpy.asarray`` it to index arrays).

    ``keys`` is a list, tuple, NumPy array or pandas Series/Index of keys;
    ``fraction`` defaults to ``sluice.context().fraction``.
    """
    fraction = _resolve_fraction(fraction)
    seed = check_seed(seed)
    values = _key_list(keys)
    labels = _labels(stratify, len(values))
    return keep_flags(key_hashes(values, seed), fraction, labels)


def _bool_array(flags: list[bool]) -> Any:
    import numpy as np

    return np.asarray(flags, dtype=bool)
