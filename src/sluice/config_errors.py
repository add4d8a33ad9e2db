"""Turn pydantic's validation errors into messages a person can act on.

pydantic says "Extra inputs are not permitted" at ``('stages', 'train',
'deps_on')``; a user needs "unknown key `deps_on` in stage `train`
(sluice.yaml:14:5); did you mean `deps`?".
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError

from sluice.config_schema import (
    STAGE_KINDS,
    ConfigSpec,
    DatasetSpec,
    ModelSpec,
    Resources,
    StageSpec,
)
from sluice.errors import ConfigError
from sluice.yamlsource import PathKey, YamlSource

# What each field must look like, in words, for "must be X, not Y" messages.
EXPECTED = {
    "cmd": "a shell command (a string)",
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
    "path": "a path relative to the repository root",
    "train": "the name of a stage",
    "evaluate": "the name of a stage",
    "artifact": "the name of an output of the train stage",
    "stages": "a mapping of stage names to stages",
    "datasets": "a mapping of dataset names to paths",
    "models": "a mapping of model names to models",
    "version": "1",
}
_SECTIONS: dict[str, tuple[str, type[BaseModel]]] = {
    "stages": ("stage", StageSpec),
    "datasets": ("dataset", DatasetSpec),
    "models": ("model", ModelSpec),
}


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


def _model_for(loc: PathKey) -> type[BaseModel]:
    if len(loc) >= 2 and loc[0] in _SECTIONS:
        model = _SECTIONS[str(loc[0])][1]
        if len(loc) >= 3 and loc[2] == "resources":
            return Resources
        return model
    return ConfigSpec


def _one(error: Any, source: YamlSource) -> ConfigError:
    loc: PathKey = tuple(p for p in error["loc"] if p != "[key]")
    is_key_error = "[key]" in error["loc"]
    kind = error["type"]
    value = error.get("input")
    what, owner, inner = _context(loc)
    name = str(inner[-1]) if inner else (str(loc[-1]) if loc else "")
    field = ".".join(str(p) for p in inner if not isinstance(p, int)) or name
    where = source.locate(loc, key=kind == "extra_forbidden" or is_key_error)

    if is_key_error:
        section = str(loc[0]) if loc else ""
        word = _SECTIONS.get(section, ("name", ConfigSpec))[0] + " name"
        if len(loc) >= 2 and loc[-2] == "outs":
            word = f"output name in {what}:"
        return ConfigError(f"{word} `{loc[-1]}` is not valid", location=where,
                           hint="use letters, digits, `_` and `-`, starting with a letter or `_`")
    if kind == "extra_forbidden":
        valid = sorted(_model_for(loc).model_fields)
        close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
        where_text = "at the top level" if not owner else f"in {what}"
        if len(inner) > 1:
            where_text = f"in `{'.'.join(str(p) for p in inner[:-1])}` of {what}"
        message = f"unknown key `{name}` {where_text}"
        if close:
            message += f"; did you mean `{close[0]}`?"
        return ConfigError(message, location=where, hint="valid keys: " + ", ".join(valid))
    if kind == "missing":
        parent = source.locate(loc[:-1], key=True)
        return ConfigError(f"{what} is missing the required key `{name}`", location=parent,
                           hint=f"add `{name}:` ({EXPECTED.get(name, 'a value')})")
    if kind == "literal_error" and name == "kind":
        close = difflib.get_close_matches(str(value), STAGE_KINDS, n=1, cutoff=0.5)
        message = (f"`kind` of {what} must be one of {', '.join(STAGE_KINDS)}, "
                   f"not {_describe(value)}")
        return ConfigError(message, location=where,
                           hint=f"did you mean `{close[0]}`?" if close else
                           "check = cheap gate, transform = data step, train, evaluate")
    if kind == "literal_error" and name == "version":
        return ConfigError(f"unsupported `version: {value}`; this sluice reads version 1",
                           location=where, hint="write `version: 1`, or upgrade sluice")
    if kind in ("greater_than_equal", "greater_than"):
        bound = error.get("ctx", {}).get("ge", error.get("ctx", {}).get("gt"))
        return ConfigError(f"`{field}` of {what} must be at least {bound}, not {_describe(value)}",
                           location=where, hint=f"set `{name}` to {EXPECTED.get(name, 'a value')}")
    if kind == "value_error":
        reason = str(error.get("ctx", {}).get("error", error["msg"]))
        return ConfigError(f"`{field}` of {what}: {reason}", location=where)
    if (kind in ("model_type", "model_attributes_type") and name in ("", *_SECTIONS)) or \
            (kind == "model_type" and len(loc) == 2 and loc[0] in _SECTIONS):
        return ConfigError(f"{what} must be a mapping of keys to values, not {_describe(value)}",
                           location=where, hint="indent its keys under its name")
    expected = EXPECTED.get(name, error["msg"].removeprefix("Input should be ").lower())
    subject = f"`{field}` of {what}" if inner else f"`{name}` in sluice.yaml"
    if inner and isinstance(inner[-1], int):
        subject = f"item {inner[-1] + 1} of `{field}` of {what}"
        expected = "a string"
    return ConfigError(f"{subject} must be {expected}, not {_describe(value)}", location=where)


def translate_validation_error(exc: ValidationError, source: YamlSource) -> list[ConfigError]:
    """One ConfigError per pydantic error, in file order."""
    errors = [_one(e, source) for e in exc.errors()]
    errors.sort(key=lambda e: (e.location.line or 0, e.location.column or 0)
                if e.location else (0, 0))
    return errors
