"""The resolved configuration as the rest of sluice sees it: :class:`Config`, :class:`Stage`.

Loading (:mod:`sluice.config.load`) turns ``sluice.yaml`` and its params file into
these values; the cache of validated configs (:mod:`sluice.config.cache`) stores and
restores them. Also the small helpers every reader of a config shares: globs,
params lookups, the did-you-mean hint and the reader of files at a revision.
"""

from __future__ import annotations

import json
import posixpath
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice.config.interpolate import (
    InterpolationError,
    format_value,
    references,
)
from sluice.errors import ConfigError, Location
from sluice.util.yamlsource import YamlSource, parse_yaml_bytes

if TYPE_CHECKING:
    # Only for types: pydantic is imported when a config is validated, not when
    # it comes from the cache (see sluice.config.cache).
    from sluice.config.schema import (
        ConfigSpec,
        DatasetSpec,
        ExecutorSpec,
        ModelSpec,
        StageSpec,
    )


CONFIG_FILE = "sluice.yaml"
DEFAULT_PARAMS_FILE = "params.yaml"
TIER_KEYS = ("name", "fraction", "seed")
LOCAL_EXECUTOR = "local"  # the built-in executor: this machine, in the workspace
TIER_EXECUTOR_KINDS = ("train", "evaluate")  # the stages a tier's `executor:` applies to
_GLOB_CHARS = set("*?[")


def is_glob(path: str) -> bool:
    return any(c in _GLOB_CHARS for c in path)


@dataclass(frozen=True)
class InputRef:
    """A resolved ``inputs:`` entry: what it names and the repo path it stands for."""

    ref: str
    path: str
    stage: str | None = None  # the producing stage, for `stages.X.outs.Y`


# Stages that read a dataset in full even in a smoke tier: an evaluate stage's rows are
# the ids its gate pairs with the baseline's (docs/config.md, `sample`).
UNSAMPLED_KINDS = ("evaluate",)


@dataclass(frozen=True)
class Stage:
    """A stage with its paths normalised and references resolved."""

    name: str
    spec: StageSpec
    deps: tuple[str, ...]
    inputs: tuple[InputRef, ...]
    outs: dict[str, str]

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def cmd(self) -> str:
        return self.spec.cmd or ""  # set for every loaded stage (`uses:` writes it)


@dataclass
class Config:
    """Everything ``sluice.yaml`` says, checked and resolved against the repo."""

    root: Path
    spec: ConfigSpec
    params_file: str | None
    params: dict[str, Any]
    datasets: dict[str, DatasetSpec]
    stages: dict[str, Stage]
    models: dict[str, ModelSpec]
    raw: bytes = b""  # the text of sluice.yaml, parsed again only to locate a problem
    problems: list[ConfigError] = field(default_factory=list)
    _source: YamlSource | None = field(default=None, repr=False)

    @property
    def source(self) -> YamlSource:
        """Positions of every key and value (parsed on demand for a config from the cache)."""
        if self._source is None:
            self._source = parse_yaml_bytes(self.raw, CONFIG_FILE)
        return self._source

    def locate(self, *path: str | int, key: bool = False) -> Location:
        return self.source.locate(tuple(path), key=key)

    @property
    def remote(self) -> str | None:
        """The shared store `sluice data push/pull` use (a folder or URL)."""
        return self.spec.remote

    @property
    def secret_names(self) -> tuple[str, ...]:
        """Variables holding a credential in some CI job (``ci.secrets``, ``ci.read_secrets``
        and the secrets those read from): masked in all that is shown."""
        ci = self.spec.ci
        return tuple(dict.fromkeys([*ci.secrets, *ci.read_secrets, *ci.read_secrets.values()]))

    def executor_name(self, stage: str, tier: str) -> str:
        """Where ``stage`` runs in ``tier``: its own `executor:`, the tier's (train and
        evaluate stages only), or the built-in `local`."""
        spec = self.stages[stage].spec
        if spec.executor:
            return str(spec.executor)
        tier_spec = self.spec.tiers.get(tier)
        if tier_spec is not None and tier_spec.executor and spec.kind in TIER_EXECUTOR_KINDS:
            return str(tier_spec.executor)
        return LOCAL_EXECUTOR

    def executor_spec(self, name: str) -> ExecutorSpec | None:
        """The `executors:` entry called ``name``; None for the built-in `local`."""
        return self.spec.executors.get(name)

    def is_remote(self, name: str) -> bool:
        """Whether the executor ``name`` runs stages away from this checkout (as capsules)."""
        spec = self.executor_spec(name)
        return spec is not None and spec.type != LOCAL_EXECUTOR


def normalise_path(raw: str, what: str, where: Location) -> str:
    """A repo-relative POSIX path; absolute paths and `..` escapes are errors.

    ``what`` names the path in messages; ``{path}`` in it stands for the path
    as written, e.g. ``"dependency {path} of stage `train`"``.
    """
    text = raw.strip()
    if not text:
        subject = what.replace(" ({path})", "").replace(" {path}", "")
        raise ConfigError(f"{subject} is an empty path", location=where,
                          hint="write a path relative to the repository root")
    subject = what.replace("{path}", f"`{raw}`") if "{path}" in what else f"{what} `{raw}`"
    if text.startswith(("/", "\\")) or (len(text) > 1 and text[1] == ":" and text[0].isalpha()
                                         and (len(text) == 2 or text[2] in "/\\")):
        raise ConfigError(f"{subject} is an absolute path", location=where,
                          hint="write it relative to the repository root so the project "
                               "works in every clone")
    norm = posixpath.normpath(text.replace("\\", "/"))
    if norm == ".." or norm.startswith("../"):
        raise ConfigError(f"{subject} points outside the repository", location=where,
                          hint="keep every path inside the repository")
    top = norm.split("/", 1)[0]
    if top in (".git", ".sluice"):
        raise ConfigError(f"{subject} is inside `{top}/`, which git and sluice manage",
                          location=where, hint="choose a path outside .git/ and .sluice/")
    return norm


def lookup_param(params: dict[str, Any], key: str) -> tuple[bool, Any]:
    """(found, value) for a dotted key such as ``train.lr``."""
    node: Any = params
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False, None
    return True, node


def diff_values(key: str, old: Any, new: Any) -> list[str]:
    """``train.gbm.lr 0.1 → 0.05`` for every leaf that differs between two params values."""
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[str] = []
        for sub in sorted(set(old) | set(new), key=str):
            path = f"{key}.{sub}"
            if sub not in old:
                found.append(f"{path} added ({format_value(new[sub])})")
            elif sub not in new:
                found.append(f"{path} removed")
            elif old[sub] != new[sub]:
                found += diff_values(path, old[sub], new[sub])
        return found
    return [f"{key} {format_value(old)} → {format_value(new)}"] if old != new else []


def template_params(*templates: str) -> list[str]:
    """Params keys that ``${params.…}`` references in the templates name."""
    keys: list[str] = []
    for template in templates:
        try:
            keys += [r.name.removeprefix("params.") for r in references(template)
                     if r.parts[0] == "params"]
        except InterpolationError:
            continue
    return keys


def param_keys(params: dict[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for k, v in params.items():
        full = f"{prefix}{k}"
        keys.append(full)
        if isinstance(v, dict):
            keys.extend(param_keys(v, full + "."))
    return keys


Reader = Callable[[str], bytes | None]


def disk_reader(root: Path) -> Reader:
    """Read repo-relative files from disk; None for a missing file or a folder."""
    def read(rel: str) -> bytes | None:
        try:
            return (root / rel).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        except OSError as exc:
            raise ConfigError(f"cannot read {rel}: {exc.strerror}", location=Location(rel),
                              hint="check that the file is readable") from None
    return read


def load_params(root: Path, name: str | None, where: Location,
                read: Reader | None = None) -> tuple[str | None, dict[str, Any]]:
    """Read the params file (YAML or JSON); ``params.yaml`` is picked up by default."""
    read = read or disk_reader(root)
    if name is None:
        if read(DEFAULT_PARAMS_FILE) is None:
            return None, {}
        name = DEFAULT_PARAMS_FILE
    rel = normalise_path(name, "params file {path}", where)
    raw = read(rel)
    if raw is None:
        raise ConfigError(f"params file `{rel}` not found", location=where,
                          hint=f"create {rel} or fix the top-level `params:` entry")
    if rel.endswith(".json"):
        try:
            data = json.loads(raw.decode("utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"params file `{rel}` is not valid JSON: {exc.msg.lower()}",
                              location=Location(rel, exc.lineno, exc.colno),
                              hint="fix the JSON syntax") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"params file `{rel}` is not UTF-8 text (byte {exc.start})",
                              location=Location(rel), hint="save the file as UTF-8") from None
    else:
        data = _dates_as_text(parse_yaml_bytes(raw, rel).data)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"params file `{rel}` must hold a mapping of keys to values, not "
                          f"{'a list' if isinstance(data, list) else 'a single value'}",
                          location=Location(rel, 1, 1),
                          hint="write it as `key: value` lines, e.g. `train: {lr: 0.1}`")
    return rel, data


def _dates_as_text(value: Any) -> Any:
    """YAML reads `2024-01-31` as a date; params hold it as the text a command gets.

    Run records and fingerprints are JSON, which has no dates (as in a JSON params file).
    """
    if isinstance(value, dict):
        return {k: _dates_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dates_as_text(v) for v in value]
    # A date exists only once `datetime` is imported (by YAML's parser): a config
    # read from its cache never imports it.
    datetime = sys.modules.get("datetime")
    return str(value) if datetime is not None and isinstance(value, datetime.date) else value
