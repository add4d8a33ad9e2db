"""Load ``sluice.yaml`` into a validated, resolved :class:`Config`.

Errors carry the file, line and column, say what was expected, and suggest the
closest valid name for a typo. All problems found in one pass are reported
together, so a user fixes a broken file in one go rather than one error per run.
The cross-references are checked by :class:`sluice.config.resolve.Resolver`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice.config.base import (
    CONFIG_FILE,
    Config,
    Reader,
    disk_reader,
    load_params,
    lookup_param,
)
from sluice.errors import ConfigError, ConfigErrors, Location, in_file_order
from sluice.util.suggest import did_you_mean
from sluice.util.yamlsource import parse_yaml_bytes

if TYPE_CHECKING:
    # Only for types: pydantic is imported when a config is validated, not when
    # it comes from the cache (see sluice.config.cache).
    from pydantic import ValidationError


def load_config(root: Path) -> Config:
    """Read ``root/sluice.yaml`` and resolve it; raise ConfigErrors listing every problem.

    A config that loaded before with the same bytes comes from a cache in
    ``.sluice/`` without re-validating it (see :mod:`sluice.config.cache`).
    """
    return load_config_cached(root, disk_reader(root))


def load_config_cached(root: Path, read: Reader) -> Config:
    """:func:`load_config_from` through the cache in ``root/.sluice`` (any revision)."""
    from sluice.config.cache import load_cached, save_cached

    cached = load_cached(root, read)
    if cached is not None:
        return cached
    config = load_config_from(root, read)
    save_cached(config, read)
    return config


def load_config_from(root: Path, read: Reader) -> Config:
    """Like :func:`load_config`, with files read through ``read`` (e.g. from a git revision)."""
    raw = read(CONFIG_FILE)
    if raw is None:
        raise ConfigError(f"{CONFIG_FILE} not found", hint="create it, or run `sluice init`")
    source = parse_yaml_bytes(raw, CONFIG_FILE)
    data = source.data
    if data is None:
        raise ConfigError(f"{CONFIG_FILE} is empty", location=Location(CONFIG_FILE, 1, 1),
                          hint="add a `stages:` section, or run `sluice init` for a starter")
    if not isinstance(data, dict):
        raise ConfigError(f"{CONFIG_FILE} must be a mapping with `stages:` at the top level",
                          location=source.locate(()), hint="start the file with `stages:`")
    from pydantic import ValidationError

    from sluice.config.builtin_stages import add_validation_stages
    from sluice.config.checks import (
        check_executors,
        check_gates,
        check_storage,
        check_tiers,
    )
    from sluice.config.messages import translate_validation_error
    from sluice.config.resolve import Resolver
    from sluice.config.schema import ConfigSpec

    structure: list[ConfigError] = []
    slipped: frozenset[str] = frozenset()
    try:
        spec = ConfigSpec.model_validate(data)
    except ValidationError as exc:
        structure = translate_validation_error(exc, source)
        slipped = frozenset(str(e["loc"][1]) for e in exc.errors()
                            if len(e["loc"]) > 2 and e["loc"][0] == "stages")
        # Unknown keys are the common slip; without them the file may still be a valid
        # config, so its references are checked too and every problem comes in one round.
        pruned = _without_unknown_keys(data, exc)
        try:
            spec = ConfigSpec.model_validate(pruned)
        except ValidationError:
            raise ConfigErrors(structure) from None
    try:
        params_file, params = load_params(root, spec.params, source.locate(("params",)), read)
    except ConfigError as exc:
        if not structure:
            raise
        raise ConfigErrors(in_file_order([*structure, exc])) from None
    config = Config(root=root, spec=spec, params_file=params_file, params=params,
                    datasets=dict(spec.datasets), stages={}, models=dict(spec.models),
                    raw=raw, _source=source)
    resolver = Resolver(config, slipped)
    add_validation_stages(resolver)
    for name, stage_spec in spec.stages.items():
        config.stages[name] = resolver.stage(name, stage_spec)
    for name, model_spec in spec.models.items():
        resolver.model(name, model_spec)
    resolver.aliases()
    check_tiers(spec, params, lambda message, at, hint: resolver.fail(message, at, hint),
                did_you_mean, lambda key: lookup_param(params, key)[0])
    check_gates(spec, lambda message, at, hint: resolver.fail(message, at, hint), did_you_mean)
    check_storage(spec, lambda message, at, hint: resolver.fail(message, at, hint))
    check_executors(spec, lambda message, at, hint: resolver.fail(message, at, hint),
                    did_you_mean)
    if structure or resolver.problems:
        raise ConfigErrors(in_file_order([*structure, *resolver.problems]))
    return config


def _without_unknown_keys(data: dict[str, Any], exc: ValidationError) -> Any:
    """``data`` less the keys pydantic ``exc`` calls unknown (if it says nothing else)."""
    import copy

    errors = exc.errors()
    if any(e["type"] != "extra_forbidden" for e in errors):
        return data  # another mistake: fails again, and only the structure is reported
    pruned = copy.deepcopy(data)
    for error in errors:
        node: Any = pruned
        loc = tuple(error["loc"])
        for step in loc[:-1]:
            with contextlib.suppress(KeyError, IndexError, TypeError):
                node = node[step]  # (a union's tag in the path names no level of the data)
        if isinstance(node, dict):
            node.pop(loc[-1], None)
    return pruned
