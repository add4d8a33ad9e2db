"""Turn pydantic's validation errors into messages a person can act on.

pydantic says "Extra inputs are not permitted" at ``('stages', 'train',
'deps_on')``; a user needs "unknown key `deps_on` in stage `train`; did you
mean `deps`? (sluice.yaml:14:5)".
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from sluice.config.schema import (
    STAGE_KINDS,
    ConfigSpec,
    DatasetSpec,
    ModelSpec,
    PeriodBudgetSpec,
    StageSpec,
    TierSpec,
)
from sluice.errors import ConfigError, in_file_order
from sluice.util.suggest import closest
from sluice.util.yamlsource import PathKey, YamlSource

# What each field must look like, in words, for "must be X, not Y" messages.
EXPECTED = {
    "cmd": "a shell command string",
    "kind": "one of " + ", ".join(STAGE_KINDS),
    "description": "a string",
    "deps": "a list of paths or globs",
    "inputs": "a list of references like `datasets.raw` or `stages.features.outs.table`",
    "outs": "a mapping of output names to paths",
    "params": "a list of params keys like `train.lr`",
    "env": "a mapping of variable names to string values",
    "resources": "a mapping with `cpus`, `gpus` and `memory`",
    "timeout": "a duration like `90s`, `10m` or `2h`",
    "memory": "a size like `512MB` or `4GiB`",
    "cpus": "a whole number, at least 1",
    "gpus": "a whole number, at least 0",
    "discover_imports": "true or false",
    "uses": "`mlflow-project` or `metaflow`",
    "parameters": "a mapping of parameter names to params keys",
    "path": "a path relative to the repository root",
    "train": "the name of a stage",
    "evaluate": "the name of a stage",
    "artifact": "the name of an output of the train stage",
}
# Top-level keys, where the same word can mean something else (`params`).
EXPECTED_TOP = {
    "version": "1",
    "params": "the path of a params file (YAML or JSON)",
    "remote": "a folder or URL of a shared store",
    "stages": "a mapping of stage names to stages",
    "datasets": "a mapping of dataset names to paths",
    "models": "a mapping of model names to models",
}
# A correct line for each field, shown as the fix.
EXAMPLE = {
    "cmd": "cmd: python train.py --out ${outs.model}",
    "description": "description: trains the churn model",
    "deps": "deps: [src/train.py, data/]",
    "inputs": "inputs: [datasets.raw, stages.features.outs.table]",
    "outs": "outs: {model: models/model.pkl}",
    "params": "params: [train.lr, train.epochs]",
    "env": "env: {LOG_LEVEL: debug}",
    "resources": "resources: {cpus: 4, gpus: 1, memory: 16GB}",
    "timeout": "timeout: 30m",
    "memory": "memory: 16GB",
    "cpus": "cpus: 4",
    "gpus": "gpus: 1",
    "discover_imports": "discover_imports: false",
    "uses": "uses: mlflow-project",
    "parameters": "parameters: {alpha: train.alpha}",
    "path": "path: data/raw.csv",
    "train": "train: train",
    "evaluate": "evaluate: evaluate",
    "artifact": "artifact: model",
}
EXAMPLE_TOP = {
    "params": "params: params.yaml",
    "remote": "remote: /mnt/team/sluice-store",
    "stages": "stages: {train: {cmd: python train.py}}",
    "datasets": "datasets: {raw: data/raw.csv}",
    "models": "models: {churn: {train: train, artifact: model}}",
}
_SECTIONS: dict[str, tuple[str, type[BaseModel]]] = {
    "stages": ("stage", StageSpec),
    "datasets": ("dataset", DatasetSpec),
    "models": ("model", ModelSpec),
    "tiers": ("tier", TierSpec),
    "budgets": ("budget", PeriodBudgetSpec),
}
# Where a field name means something else in one section (a tier's `params` are
# overrides, a stage's are keys it reads).
EXPECTED_IN = {
    "tiers": {
        "params": "a mapping of params keys to override values",
        "select": "`affected`, `all` or a list of stage and model names",
        "fraction": "a number greater than 0 and at most 1, e.g. 0.02",
        "seeds": "a whole number, at least 1",
        "on_budget": "`fail` or `skip-expensive`",
        "trigger": "`pull_request`, `manual`, or a mapping with pull_request, push, "
                   "schedule, manual",
        "schedule": "a cron expression like `0 3 * * *`",
        "branches": "a list of branch names",
    },
}
EXAMPLE_IN = {
    "tiers": {
        "params": "params: {train.epochs: 1}",
        "select": "select: affected",
        "fraction": "fraction: 0.02",
        "seeds": "seeds: 3",
        "on_budget": "on_budget: skip-expensive",
        "trigger": "trigger: {push: {branches: [main]}}",
        "schedule": "schedule: '0 3 * * *'",
        "branches": "branches: [main]",
        "wall": "wall: 10m",
        "usd": "usd: 50",
    },
    "budgets": {"window": "window: 7d", "usd": "usd: 500", "gpu_hours": "gpu_hours: 100"},
}
# Entries pydantic adds to a location inside a union (`literal['a','b']`, `list[str]`).
_UNION_TAGS = {"str", "int", "float", "bool"}
NAME_RULE = "a name starts with a letter or `_` and has only letters, digits, `_` and `-`"
ENV_NAME_RULE = "a variable name starts with a letter or `_` and has only letters, digits and `_`"


def _describe(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string `{value}`" if len(value) < 40 else "a string"
    return f"`{value}`"


def _context(loc: PathKey) -> tuple[str, PathKey, PathKey]:
    """(what the error is in, path of that thing, path of the field inside it)."""
    if len(loc) >= 2 and loc[0] in _SECTIONS:
        word = _SECTIONS[str(loc[0])][0]
        return f"{word} `{loc[1]}`", loc[:2], loc[2:]
    return "sluice.yaml", (), loc


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """BaseModel classes inside a type (through Optional, Annotated, dict, list)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _model_for(loc: PathKey) -> type[BaseModel]:
    """The model whose field the last element of ``loc`` names."""
    model: type[BaseModel] = ConfigSpec
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None:
            continue  # a dict key or list index: stay on the same model
        found = _models_in(field.annotation)
        if not found:
            break
        model = found[0]
    return model


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(p for p in loc
                 if not (isinstance(p, str) and (("[" in p and p != "[key]") or p in _UNION_TAGS)))


def _quote_hint(key: str, value: Any) -> str:
    """``put it in quotes: `A: "1"` ``."""
    text = value if isinstance(value, str) else _describe(value).strip("`")
    return f'put it in quotes: `{key}: "{text}"`'


def _key_error(loc: PathKey, what: str, where: Any) -> ConfigError:
    bad = loc[-1]
    if len(loc) >= 2 and loc[-2] == "env":
        return ConfigError(f"environment variable name `{bad}` in {what} is not valid",
                           location=where, hint=ENV_NAME_RULE)
    if len(loc) >= 2 and loc[-2] == "outs":
        return ConfigError(f"output name `{bad}` in {what} is not valid", location=where,
                           hint=NAME_RULE + "; outputs are referred to as "
                                "`stages.STAGE.outs.NAME`, so a `.` would be ambiguous")
    section = str(loc[0]) if loc else ""
    word = _SECTIONS.get(section, ("name", ConfigSpec))[0]
    return ConfigError(f"{word} name `{bad}` is not valid", location=where, hint=NAME_RULE)


def _one(error: Any, source: YamlSource) -> ConfigError:
    raw_loc = _clean_loc(tuple(error["loc"]))
    loc: PathKey = tuple(p for p in raw_loc if p != "[key]")
    is_key_error = "[key]" in raw_loc
    kind = error["type"]
    value = error.get("input")
    what, owner, inner = _context(loc)
    name = str(inner[-1]) if inner else (str(loc[-1]) if loc else "")
    field = ".".join(str(p) for p in inner if not isinstance(p, int)) or name
    top = not owner
    where = source.locate(loc, key=kind == "extra_forbidden" or is_key_error)
    subject = f"top-level `{field}`" if top else f"`{field}` of {what}"
    section = str(loc[0]) if loc else ""
    expected = EXPECTED_IN.get(section, {}).get(name) or \
        (EXPECTED_TOP if top else EXPECTED).get(name)
    example = EXAMPLE_IN.get(section, {}).get(name) or \
        (EXAMPLE_TOP if top else EXAMPLE).get(name)
    fix = f"write it like `{example}`" if example else None

    if is_key_error:
        return _key_error(loc, what, where)
    if kind == "extra_forbidden":
        valid = sorted(_model_for(loc).model_fields)
        close = closest(name, valid)
        where_text = "at the top level" if top else f"in {what}"
        if len(inner) > 1:
            where_text = f"in `{'.'.join(str(p) for p in inner[:-1])}` of {what}"
        message = f"unknown key `{name}` {where_text}"
        if close:
            message += f"; did you mean `{close}`?"
        return ConfigError(message, location=where, hint="valid keys: " + ", ".join(valid))
    if kind == "missing":
        parent = source.locate(loc[:-1], key=True)
        return ConfigError(f"{what} is missing the required key `{name}`", location=parent,
                           hint=f"add `{name}:` ({EXPECTED.get(name, 'a value')})"
                           + (f", e.g. `{EXAMPLE[name]}`" if name in EXAMPLE else ""))
    if kind == "literal_error" and name == "kind":
        kinds = ", ".join(STAGE_KINDS)
        if not isinstance(value, str):
            return ConfigError(f"`kind` of {what} must be one of {kinds}, not {_describe(value)}",
                               location=where, hint="e.g. `kind: train`")
        close = closest(value, STAGE_KINDS, cutoff=0.5)
        message = f"unknown kind `{value}` in {what}"
        if close:
            message += f"; did you mean `{close}`?"
        return ConfigError(message, location=where,
                           hint=f"`kind` is one of {kinds} (check = a cheap gate that runs "
                                "first, transform = a data step)")
    if kind == "literal_error" and name == "version":
        if isinstance(value, int) and not isinstance(value, bool):
            return ConfigError(f"unsupported `version: {value}`; this sluice reads version 1",
                               location=where, hint="write `version: 1`, or upgrade sluice")
        return ConfigError(f"`version` must be the number 1, not {_describe(value)}",
                           location=where, hint="write `version: 1` (no quotes)")
    if kind in ("less_than_equal", "less_than"):
        bound = error.get("ctx", {}).get("le", error.get("ctx", {}).get("lt"))
        return ConfigError(f"{subject} must be at most {bound:g}, not {_describe(value)}",
                           location=where, hint=fix)
    if kind == "greater_than" and expected is not None:
        return ConfigError(f"{subject} must be {expected}, not {_describe(value)}",
                           location=where, hint=fix)
    if kind == "greater_than":
        bound = error.get("ctx", {}).get("gt")
        return ConfigError(f"{subject} must be greater than {bound:g}, not {_describe(value)}",
                           location=where, hint=fix)
    if kind == "greater_than_equal":
        bound = error.get("ctx", {}).get("ge")
        hints = {"cpus": "a stage occupies at least one CPU; write e.g. `cpus: 1`",
                 "gpus": "write `gpus: 0` (or leave it out) for a stage without GPUs"}
        return ConfigError(f"{subject} must be at least {bound}, not {_describe(value)}",
                           location=where, hint=hints.get(name, fix))
    if kind == "value_error":
        reason = str(error.get("ctx", {}).get("error", error["msg"]))
        return ConfigError(f"{subject} must be {reason}, not {_describe(value)}",
                           location=where, hint=fix)
    if kind in ("model_type", "model_attributes_type", "dict_type") and len(loc) == 2 \
            and loc[0] in _SECTIONS:
        entry = source.locate(loc, key=value is None)
        if loc[0] == "datasets":
            return ConfigError(f"{what} must be a path or a mapping with `path:`, "
                               f"not {_describe(value)}", location=entry,
                               hint=f"write it like `{loc[1]}: data/{loc[1]}.csv`")
        if loc[0] == "stages" and isinstance(value, str):
            hint = f"put the command under `cmd:`, e.g. `{loc[1]}: {{cmd: {value}}}`"
        elif loc[0] == "stages":
            hint = f"indent its keys under its name, e.g. `{loc[1]}: {{cmd: python train.py}}`"
        else:
            hint = f"indent its keys under its name, e.g. `{loc[1]}: {{train: train, " \
                   "artifact: model}`"
        return ConfigError(f"{what} must be a mapping of keys to values, not {_describe(value)}",
                           location=entry, hint=hint)
    if inner and isinstance(inner[-1], int):
        return ConfigError(f"item {inner[-1] + 1} of `{field}` of {what} must be a string, "
                           f"not {_describe(value)}", location=where,
                           hint=f'put it in quotes: `"{_describe(value).strip("`")}"`')
    if len(inner) == 2 and inner[0] == "env":
        return ConfigError(f"`env.{name}` of {what} must be a string, not {_describe(value)}",
                           location=where, hint=_quote_hint(name, value))
    if expected is None:
        expected = error["msg"].removeprefix("Input should be ").lower()
    if expected in ("a string", EXPECTED["cmd"]) and isinstance(value, int | float | bool):
        fix = _quote_hint(name, value)
    return ConfigError(f"{subject} must be {expected}, not {_describe(value)}",
                       location=where, hint=fix)


def _redundant_missing(errors: list[Any]) -> set[int]:
    """`missing path` next to `unknown key paht`: the typo explains both; keep one."""
    guessed: set[PathKey] = set()
    for e in errors:
        if e["type"] == "extra_forbidden":
            loc = tuple(e["loc"])
            valid = list(_model_for(loc).model_fields)
            if (close := closest(str(loc[-1]), valid)) is not None:
                guessed.add((*loc[:-1], close))
    return {i for i, e in enumerate(errors)
            if e["type"] == "missing" and tuple(e["loc"]) in guessed}


def translate_validation_error(exc: ValidationError, source: YamlSource) -> list[ConfigError]:
    """One ConfigError per pydantic error (one per place for unions), in file order."""
    raw = exc.errors()
    skip = _redundant_missing(raw)
    seen: set[tuple[Any, ...]] = set()
    errors = []
    for i, error in enumerate(raw):
        place = _clean_loc(tuple(error["loc"]))
        if i in skip or place in seen:
            continue  # each branch of a union fails on its own; one message says it all
        seen.add(place)
        errors.append(_one(error, source))
    return in_file_order(errors)
