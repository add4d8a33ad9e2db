"""Checks on the tiers, budgets, prices and gates of ``sluice.yaml``.

The schema (:mod:`sluice.config.schema`) fixes their shape; this module checks
what refers to something else: cron expressions, the stages and models a tier
selects, params keys it overrides, the tiers a period budget applies to, and
gates whose method (mcnemar, delong) cannot compute what the gate names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sluice.util.yamlsource import PathKey

if TYPE_CHECKING:
    from sluice.config.schema import ConfigSpec, GateSpec

Fail = Callable[[str, PathKey, str | None], None]
WINDOWS = {"daily": 86400.0, "weekly": 7 * 86400.0, "monthly": 30 * 86400.0}
_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31),
                ("month", 1, 12), ("day of week", 0, 7))
_NAMES = {3: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
              "dec"], 4: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]}
_ITEM = re.compile(r"^(\*|(\w+)(?:-(\w+))?)(?:/(\d+))?$")


def cron_problem(expression: str) -> str | None:
    """Why ``expression`` is not a 5-field cron expression, or None if it is one."""
    fields = expression.split()
    if len(fields) != 5:
        return (f"`{expression}` has {len(fields)} field(s); a cron expression has 5: "
                "minute hour day-of-month month day-of-week")
    for index, (text, (name, low, high)) in enumerate(zip(fields, _CRON_FIELDS, strict=True)):
        for item in text.split(","):
            match = _ITEM.match(item)
            if not match:
                return f"`{item}` is not a valid {name} in `{expression}`"
            for value in (match.group(2), match.group(3)):
                if value is None:
                    continue
                names = _NAMES.get(index, [])
                number = names.index(value.lower()) + (1 if index == 3 else 0) \
                    if value.lower() in names else (int(value) if value.isdigit() else None)
                if number is None or not low <= number <= high:
                    return f"{name} `{value}` in `{expression}` is outside {low}-{high}"
            if match.group(4) is not None and int(match.group(4)) == 0:
                return f"step `/0` in `{expression}` never fires"
    return None


def check_tiers(spec: ConfigSpec, params: dict[str, Any], fail: Fail,
                suggest: Callable[[str, list[str]], str],
                has_param: Callable[[str], bool]) -> None:
    """Report every tier, budget and price problem through ``fail``."""
    targets = [*spec.stages, *spec.models]
    for name, tier in spec.tiers.items():
        at: PathKey = ("tiers", name)
        if tier.trigger.schedule is not None and \
                (problem := cron_problem(tier.trigger.schedule)) is not None:
            fail(f"tier `{name}`: {problem}", (*at, "trigger", "schedule"),
                 "write it like `0 3 * * *` (every day at 03:00 UTC)")
        if isinstance(tier.select, list):
            for i, target in enumerate(tier.select):
                if target not in targets:
                    fail(f"tier `{name}` selects unknown stage or model `{target}`"
                         + suggest(target, targets), (*at, "select", i),
                         "use `affected`, `all`, or a list of stage and model names")
        for key in tier.params:
            if not has_param(key):
                fail(f"tier `{name}` overrides params key `{key}`, which is not in the "
                     "params file" + suggest(key, list(params)), (*at, "params", key),
                     "overrides replace existing keys; add the key to the params file first")
        if tier.budget is not None and not any(tier.budget.model_dump().values()):
            fail(f"tier `{name}` has an empty budget", (*at, "budget"),
                 "set at least one of wall, cpu_hours, gpu_hours, usd, or remove `budget:`")
    for name, budget in spec.budgets.items():
        at = ("budgets", name)
        if budget.window is None and name not in WINDOWS:
            fail(f"budget `{name}` needs a `window:` (its name is not daily, weekly or "
                 "monthly)", at, "add e.g. `window: 7d`")
        limits = budget.model_dump(exclude={"window", "tiers"})
        if not any(limits.values()):
            fail(f"budget `{name}` sets no limit", at,
                 "set at least one of wall, cpu_hours, gpu_hours, usd")
        for i, tier_name in enumerate(budget.tiers or []):
            if tier_name not in spec.tiers:
                fail(f"budget `{name}` names unknown tier `{tier_name}`"
                     + suggest(tier_name, list(spec.tiers)), (*at, "tiers", i),
                     "use the name of a tier under `tiers:`")


def check_gates(spec: ConfigSpec, fail: Fail, suggest: Callable[[str, list[str]], str]) -> None:
    """Report problems in the models' predictions, baselines and gates through ``fail``."""
    for name, model in spec.models.items():
        at: PathKey = ("models", name)
        evaluate = spec.stages.get(model.evaluate or "")
        if model.predictions is not None and evaluate is not None and \
                model.predictions not in evaluate.outs:
            outs = list(evaluate.outs)
            fail(f"model `{name}`: stage `{model.evaluate}` has no output "
                 f"`{model.predictions}`" + suggest(model.predictions, outs),
                 (*at, "predictions"), "name the evaluate stage's output that holds the "
                                       "per-example predictions")
        if model.metrics is not None and evaluate is not None and \
                model.metrics not in evaluate.outs:
            fail(f"model `{name}`: stage `{model.evaluate}` has no output `{model.metrics}`"
                 + suggest(model.metrics, list(evaluate.outs)), (*at, "metrics"),
                 "name the evaluate stage's output that holds its metrics JSON")
        if (model.gates or model.baseline) and model.evaluate is None:
            fail(f"model `{name}` has gates but no `evaluate` stage", at,
                 "add `evaluate: STAGE` (a stage that writes per-example predictions)")
        if model.baseline is not None and \
                (model.baseline.alias is None) == (model.baseline.predictions is None):
            fail(f"model `{name}`: the baseline needs exactly one of `alias` and `predictions`",
                 (*at, "baseline"), "e.g. `baseline: {predictions: baselines/churn.parquet}`")
        for i, gate in enumerate(model.gates):
            gate_at: PathKey = (*at, "gates", i)
            _check_metric(gate.metric, (*gate_at, "metric"), fail, suggest)
            rules = [r for r in ("min", "max", "max_regression", "min_improvement")
                     if getattr(gate, r) is not None]
            if not rules:
                fail(f"gate {i + 1} of model `{name}` ({gate.metric}) sets no rule", gate_at,
                     "add `max_regression`, `min_improvement`, `min` or `max`")
            if gate.max_regression is not None and gate.min_improvement is not None:
                fail(f"gate {i + 1} of model `{name}` sets both `max_regression` and "
                     "`min_improvement`", gate_at, "split it into two gates")
            for j, tier in enumerate(gate.tiers or []):
                if tier not in spec.tiers:
                    fail(f"gate {i + 1} of model `{name}` names unknown tier `{tier}`"
                         + suggest(tier, list(spec.tiers)), (*gate_at, "tiers", j),
                         "use the name of a tier under `tiers:`")
            if gate.method in _METHOD_METRIC:
                _check_method(spec, f"gate {i + 1} of model `{name}`", gate, gate_at, fail)


# The tests gates can name instead of the bootstrap, and the one metric each is about.
_METHOD_METRIC = {"mcnemar": "accuracy", "delong": "roc_auc"}


def _check_method(spec: ConfigSpec, what: str, gate: GateSpec, at: PathKey,
                  fail: Fail) -> None:
    """Refuse a method that would compute something other than what the gate names.

    McNemar's exact test is about accuracy, tests equal accuracy (a margin of 0 and no
    other), compares one candidate (one seed) and counts examples (weights, known only
    when predictions are read, make the gate INCONCLUSIVE then); DeLong's is about binary
    ROC AUC (several seeds are combined as the bootstrap's are). Both compare two models:
    `min` and `max` bound the candidate's own value and have no test of theirs.
    """
    method, metric = gate.method, _METHOD_METRIC[gate.method]
    where = (*at, "method")
    if gate.metric != metric:
        fail(f"{what}: {method} applies to {metric}; use method: bootstrap for "
             f"{gate.metric}", where, f"or gate on `metric: {metric}` with method: {method}")
        return
    if gate.min is not None or gate.max is not None:
        fail(f"{what}: method: {method} compares the candidate with the baseline; `min` and "
             "`max` bound the candidate's own value", where,
             "split it into two gates: `min`/`max` with method: auto, and "
             f"`max_regression`/`min_improvement` with method: {method}")
    if method != "mcnemar":
        return
    for rule in ("max_regression", "min_improvement"):
        margin = getattr(gate, rule)
        if margin is not None and _margin_value(margin) != 0:
            fail(f"{what}: McNemar's exact test decides only whether accuracy is equal, so it "
                 f"takes a margin of 0, not `{rule}: {margin}`", where,
                 "use method: bootstrap for a margin (it resamples the paired table "
                 f"exactly), or `{rule}: 0`")
    for tier_name, tier in spec.tiers.items():
        if tier.seeds > 1 and (gate.tiers is None or tier_name in gate.tiers):
            fail(f"{what}: McNemar's exact test compares one candidate, but tier "
                 f"`{tier_name}` trains {tier.seeds} seeds", where,
                 "use method: bootstrap (it combines seeds), or list the single-seed tiers "
                 "the gate applies to under `tiers:`")


def _margin_value(margin: float | str) -> float:
    return float(margin.strip().rstrip("%").strip()) if isinstance(margin, str) else margin


def _check_metric(metric: str, at: PathKey, fail: Fail,
                  suggest: Callable[[str, list[str]], str]) -> None:
    if ":" in metric:
        module, _, function = metric.partition(":")
        if not module or not function.isidentifier():
            fail(f"`{metric}` is not a metric reference", at,
                 "write a built-in name, or `package.module:function` for your own")
        return
    from sluice.stats.metrics import METRICS

    if metric not in METRICS:
        fail(f"unknown metric `{metric}`" + suggest(metric, list(METRICS)), at,
             "built-in: " + ", ".join(sorted(METRICS)))


def check_executors(spec: ConfigSpec, fail: Fail,
                    suggest: Callable[[str, list[str]], str]) -> None:
    """Every `executor:` names an executor; a Ray executor's settings make sense.

    Whether a remote executor has a store to reach depends on the environment
    ($SLUICE_CACHE_URL) and is checked when a run starts (sluice.pipeline.scheduler).
    """
    from sluice.config.base import LOCAL_EXECUTOR

    names = [LOCAL_EXECUTOR, *spec.executors]
    named: list[tuple[str | None, PathKey, str]] = [
        *((s.executor, ("stages", n, "executor"), f"stage `{n}`")
          for n, s in spec.stages.items()),
        *((t.executor, ("tiers", n, "executor"), f"tier `{n}`") for n, t in spec.tiers.items())]
    for value, at, what in named:
        if value is not None and value not in names:
            fail(f"{what} names unknown executor `{value}`" + suggest(value, names), at,
                 "use `local` or the name of an executor under `executors:`")
    for name, executor in spec.executors.items():
        where: PathKey = ("executors", name)
        if executor.type == LOCAL_EXECUTOR:
            extra = [k for k in ("address", "setup", "env") if getattr(executor, k)]
            if extra:
                fail(f"executor `{name}` is of type local, which takes no "
                     + ", ".join(f"`{k}`" for k in extra), (*where, extra[0]),
                     "remove it, or set `type: ray` to run the stages on a Ray cluster")
        elif executor.address is not None and "://" not in executor.address:
            fail(f"executor `{name}`: address `{executor.address}` is not a URL",
                 (*where, "address"),
                 "give the Ray Jobs API (dashboard) URL, e.g. `http://ray-head:8265`")


def check_storage(spec: ConfigSpec, fail: Fail) -> None:
    """Store URLs with a scheme no backend serves are refused at load, not mid-run."""
    from sluice.store import STORES

    for at, url in ((("remote",), spec.remote), (("storage", "cache"), spec.storage.cache)):
        if url and "://" in url and url.split("://", 1)[0] not in STORES:
            schemes = ", ".join(f"{s}://" for s in STORES if s)
            fail(f"no store backend for `{url.split('://', 1)[0]}://` URLs", at,
                 f"use a folder or one of {schemes}")
