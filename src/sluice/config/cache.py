"""A cache of the validated ``sluice.yaml``, so an unchanged config is not validated again.

Importing pydantic and validating costs more than everything else a no-op
``sluice run`` does. When ``sluice.yaml`` and the params file have the bytes
they had at the last successful load (and sluice's config code is unchanged),
the resolved config is rebuilt from ``.sluice/config-cache.json`` as read-only
:class:`View` objects with the same attributes as the pydantic models, without
importing pydantic. Any mismatch, or a damaged cache, means a full load.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, cast

from sluice.config.base import CONFIG_FILE, Config, InputRef, Reader, Stage
from sluice.util.fs import atomic_write_bytes, read_json
from sluice.util.hashing import hash_bytes
from sluice.util.version import code_stamp

CACHE_DIR = ".sluice/config-cache"  # one entry per sluice.yaml content (revisions too)
_MODEL = "__model__"  # tags a pydantic model's fields in the cache file


class View:
    """A read-only stand-in for a validated pydantic model: same attributes, no validation."""

    def __init__(self, fields: dict[str, Any]) -> None:
        object.__setattr__(self, "_fields", fields)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, View):
            return bool(self._fields == other._fields)
        dump = getattr(other, "model_dump", None)
        return dump is not None and self.model_dump() == dump()

    __hash__ = None  # type: ignore[assignment]

    def model_dump(self, *, include: set[str] | None = None) -> dict[str, Any]:
        return {k: _plain(v) for k, v in self._fields.items() if include is None or k in include}


def _plain(value: Any) -> Any:
    if isinstance(value, View):
        return value.model_dump()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def view(fields: dict[str, Any]) -> Any:
    """A View typed as whatever model the caller stands it in for."""
    return View(fields)


def _encode(value: Any) -> Any:
    fields = getattr(type(value), "model_fields", None)
    if fields is not None:
        return {_MODEL: {name: _encode(getattr(value, name)) for name in fields}}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and _MODEL in value:
            return View({k: _decode(v) for k, v in value[_MODEL].items()})
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _key(raw: bytes, params_file: str | None, read: Reader) -> str | None:
    params = read(params_file) if params_file else b""
    if params is None:
        return None
    return hash_bytes(raw + b"\0" + (params_file or "").encode() + b"\0" + params)


def cache_file(root: Path, raw: bytes) -> Path:
    return root / CACHE_DIR / f"{hash_bytes(raw)}.json"


def load_cached(root: Path, read: Reader) -> Config | None:
    raw = read(CONFIG_FILE)
    if raw is None:
        return None
    entry = read_json(cache_file(root, raw))
    if not isinstance(entry, dict):
        return None
    try:
        if entry["code"] != code_stamp() or \
                entry["key"] != _key(raw, entry["params_file"], read):
            return None
        spec = _decode(entry["spec"])
        stages = {
            name: Stage(name=name, deps=tuple(item["deps"]),
                        spec=spec.stages[name] if "spec" not in item else _decode(item["spec"]),
                        inputs=tuple(InputRef(*ref) for ref in item["inputs"]),
                        outs=dict(item["outs"]))
            for name, item in entry["stages"].items()}
        return Config(root=root, spec=cast(Any, spec), params_file=entry["params_file"],
                      params=entry["params"], datasets=dict(spec.datasets), stages=stages,
                      models=dict(spec.models), raw=raw)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None  # an old or damaged cache: load the config properly


def save_cached(config: Config, read: Reader) -> None:
    key = _key(config.raw, config.params_file, read)
    params_round_trip = json.loads(json.dumps(config.params, default=repr))
    if key is None or params_round_trip != config.params:
        return  # params with values JSON cannot hold (dates...): always validate
    entry = {
        "code": code_stamp(), "key": key, "params_file": config.params_file,
        "params": config.params, "spec": _encode(config.spec),
        "stages": {name: {"deps": list(s.deps), "outs": s.outs,
                          "inputs": [[i.ref, i.path, i.stage] for i in s.inputs],
                          # stages sluice added itself (config.builtin_stages) keep their spec
                          # and so do `uses:` stages, whose command sluice wrote
                          **({} if config.spec.stages.get(name) is s.spec
                             else {"spec": _encode(s.spec)})}
                   for name, s in config.stages.items()},
    }
    with contextlib.suppress(OSError, TypeError, ValueError):
        # Not sorted: the order of stages in sluice.yaml is the order of plans.
        atomic_write_bytes(cache_file(config.root, config.raw), json.dumps(entry).encode())
        _prune(config.root / CACHE_DIR)


def _prune(folder: Path, keep: int = 32) -> None:
    """Keep the entries of the most recent configs only (each edit makes a new one)."""
    entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in entries[keep:]:
        with contextlib.suppress(OSError):
            stale.unlink()
