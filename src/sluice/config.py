"""Load ``sluice.yaml`` into a validated, resolved :class:`Config`.

Errors carry the file, line and column, say what was expected, and suggest the
closest valid name for a typo. All problems found in one pass are reported
together, so a user fixes a broken file in one go rather than one error per run.
"""

from __future__ import annotations

import difflib
import json
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sluice.config_errors import translate_validation_error
from sluice.config_schema import ConfigSpec, DatasetSpec, ModelSpec, StageSpec
from sluice.errors import ConfigError, ConfigErrors, Location
from sluice.interpolate import NAMESPACES, InterpolationError, Reference, references
from sluice.yamlsource import PathKey, YamlSource, load_yaml

CONFIG_FILE = "sluice.yaml"
DEFAULT_PARAMS_FILE = "params.yaml"
TIER_KEYS = ("name", "fraction", "seed")
_GLOB_CHARS = set("*?[")


def did_you_mean(word: str, candidates: list[str] | tuple[str, ...]) -> str:
    """`` did you mean `x`?`` for the closest candidate, or an empty string."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""


def is_glob(path: str) -> bool:
    return any(c in _GLOB_CHARS for c in path)


@dataclass(frozen=True)
class InputRef:
    """A resolved ``inputs:`` entry: what it names and the repo path it stands for."""

    ref: str
    path: str
    stage: str | None = None  # the producing stage, for `stages.X.outs.Y`


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
        return self.spec.cmd


@dataclass
class Config:
    """Everything ``sluice.yaml`` says, checked and resolved against the repo."""

    root: Path
    spec: ConfigSpec
    source: YamlSource
    params_file: str | None
    params: dict[str, Any]
    datasets: dict[str, DatasetSpec]
    stages: dict[str, Stage]
    models: dict[str, ModelSpec]
    problems: list[ConfigError] = field(default_factory=list)

    def locate(self, *path: str | int, key: bool = False) -> Location:
        return self.source.locate(tuple(path), key=key)


def normalise_path(raw: str, what: str, where: Location) -> str:
    """A repo-relative POSIX path; absolute paths and `..` escapes are errors."""
    text = raw.strip()
    if not text:
        raise ConfigError(f"{what} is an empty path", location=where,
                          hint="write a path relative to the repository root")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise ConfigError(f"{what} `{raw}` is an absolute path", location=where,
                          hint="write it relative to the repository root so the project "
                               "works in every clone")
    norm = posixpath.normpath(text.replace("\\", "/"))
    if norm == ".." or norm.startswith("../"):
        raise ConfigError(f"{what} `{raw}` points outside the repository", location=where,
                          hint="keep every path inside the repository")
    top = norm.split("/", 1)[0]
    if top in (".git", ".sluice"):
        raise ConfigError(f"{what} `{raw}` is inside `{top}/`, which sluice and git manage",
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


def _param_keys(params: dict[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for k, v in params.items():
        full = f"{prefix}{k}"
        keys.append(full)
        if isinstance(v, dict):
            keys.extend(_param_keys(v, full + "."))
    return keys


def load_params(root: Path, name: str | None, where: Location) -> tuple[str | None, dict[str, Any]]:
    """Read the params file (YAML or JSON); ``params.yaml`` is picked up by default."""
    if name is None:
        if not (root / DEFAULT_PARAMS_FILE).is_file():
            return None, {}
        name = DEFAULT_PARAMS_FILE
    rel = normalise_path(name, "the params file", where)
    path = root / rel
    if not path.is_file():
        raise ConfigError(f"params file `{rel}` not found", location=where,
                          hint=f"create {rel} or fix the `params:` entry")
    if rel.endswith(".json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ConfigError(f"params file `{rel}` is not valid JSON: {exc}",
                              location=Location(rel), hint="fix the JSON syntax") from None
    else:
        data = load_yaml(path, rel).data
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"params file `{rel}` must hold a mapping of keys to values",
                          location=Location(rel, 1, 1), hint="write it as `key: value` lines")
    return rel, data


class _Resolver:
    """Resolves one config's cross-references, collecting every problem it finds."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.problems: list[ConfigError] = []
        self.out_paths = {(s, o): p for s, spec in config.spec.stages.items()
                          for o, p in spec.outs.items()}
        self.dataset_paths = {name: self.path(d.path, f"dataset `{name}`",
                                              ("datasets", name, "path"))
                              for name, d in config.spec.datasets.items()}

    def fail(self, message: str, path: PathKey, hint: str | None = None,
             *, key: bool = False) -> None:
        self.problems.append(ConfigError(message, hint=hint,
                                         location=self.config.source.locate(path, key=key)))

    def path(self, raw: str, what: str, at: PathKey) -> str | None:
        try:
            return normalise_path(raw, what, self.config.source.locate(at))
        except ConfigError as exc:
            self.problems.append(exc)
            return None

    def stage(self, name: str, spec: StageSpec) -> Stage:
        at: PathKey = ("stages", name)
        outs: dict[str, str] = {}
        for out, raw in spec.outs.items():
            norm = self.path(raw, f"output `{out}` of stage `{name}`", (*at, "outs", out))
            if norm is not None:
                if is_glob(norm):
                    self.fail(f"output `{out}` of stage `{name}` is a glob (`{raw}`)",
                              (*at, "outs", out), "name one file or directory per output")
                outs[out] = norm
        deps = []
        for i, raw in enumerate(spec.deps):
            norm = self.path(raw, f"dependency of stage `{name}`", (*at, "deps", i))
            if norm is not None:
                deps.append(norm)
        inputs = [ref for i, text in enumerate(spec.inputs)
                  if (ref := self.input_ref(name, text, (*at, "inputs", i))) is not None]
        for i, key in enumerate(spec.params):
            self.param_key(name, key, (*at, "params", i))
        self.cmd_refs(name, spec, inputs)
        return Stage(name=name, spec=spec, deps=tuple(deps), inputs=tuple(inputs), outs=outs)

    def input_ref(self, stage: str, text: str, at: PathKey) -> InputRef | None:
        parts = text.strip().split(".")
        datasets = self.config.spec.datasets
        if parts[0] == "datasets" and len(parts) == 2:
            if parts[1] not in datasets:
                self.fail(f"stage `{stage}` uses unknown dataset `{parts[1]}`"
                          + did_you_mean(parts[1], tuple(datasets)), at,
                          "declare it under `datasets:` or fix the name")
                return None
            norm = self.dataset_paths[parts[1]]
            return InputRef(text, norm, None) if norm else None
        if parts[0] == "stages" and len(parts) == 4 and parts[2] == "outs":
            return self.stage_out(stage, parts[1], parts[3], at, text)
        self.fail(f"input `{text}` of stage `{stage}` is not a dataset or stage output",
                  at, "write `datasets.NAME` or `stages.STAGE.outs.OUTPUT`")
        return None

    def stage_out(self, stage: str, producer: str, out: str, at: PathKey,
                  text: str) -> InputRef | None:
        stages = self.config.spec.stages
        if producer not in stages:
            self.fail(f"stage `{stage}` refers to unknown stage `{producer}`"
                      + did_you_mean(producer, tuple(stages)), at,
                      "check the stage name under `stages:`")
            return None
        if out not in stages[producer].outs:
            outs = tuple(stages[producer].outs)
            self.fail(f"stage `{producer}` has no output `{out}`" + did_you_mean(out, outs),
                      at, "its outputs are: " + (", ".join(outs) or "(none)"))
            return None
        path = posixpath.normpath(self.out_paths[(producer, out)].strip())
        return InputRef(text, path, producer)

    def param_key(self, stage: str, key: str, at: PathKey) -> None:
        found, _ = lookup_param(self.config.params, key)
        if found:
            return
        if self.config.params_file is None:
            self.fail(f"stage `{stage}` uses params key `{key}` but there is no params file",
                      at, f"create {DEFAULT_PARAMS_FILE} or set `params:` at the top level")
            return
        self.fail(f"params key `{key}` used by stage `{stage}` is not in "
                  f"{self.config.params_file}"
                  + did_you_mean(key, _param_keys(self.config.params)), at,
                  f"add it to {self.config.params_file} or fix the key")

    def cmd_refs(self, stage: str, spec: StageSpec, inputs: list[InputRef]) -> None:
        """Check every ``${...}`` in cmd and env; stage outputs used there become inputs."""
        fields: list[tuple[str, PathKey]] = [(spec.cmd, ("stages", stage, "cmd"))]
        fields += [(v, ("stages", stage, "env", k)) for k, v in spec.env.items()]
        for template, at in fields:
            try:
                refs = list(references(template))
            except InterpolationError as exc:
                self.fail(f"in stage `{stage}`: {exc}", at,
                          "write `$${` for a literal `${`")
                continue
            for ref in refs:
                found = self.reference(stage, spec, ref, at)
                if found is not None and all(i.ref != found.ref for i in inputs):
                    inputs.append(found)

    def reference(self, stage: str, spec: StageSpec, ref: Reference,
                  at: PathKey) -> InputRef | None:
        parts = ref.parts
        head, rest = parts[0], parts[1:]
        if head not in NAMESPACES:
            self.fail(f"unknown reference `${{{ref.name}}}` in stage `{stage}`"
                      + did_you_mean(head, NAMESPACES), at,
                      "references start with " + ", ".join(f"`{n}.`" for n in NAMESPACES))
        elif head == "outs":
            if len(rest) != 1 or rest[0] not in spec.outs:
                name = ".".join(rest)
                self.fail(f"`${{{ref.name}}}` in stage `{stage}`: no output `{name}`"
                          + did_you_mean(name, tuple(spec.outs)), at,
                          "declare it under the stage's `outs:`")
        elif head == "params":
            self.param_key(stage, ".".join(rest), at)
        elif head == "tier":
            if len(rest) != 1 or rest[0] not in TIER_KEYS:
                self.fail(f"unknown reference `${{{ref.name}}}` in stage `{stage}`"
                          + did_you_mean(".".join(rest), TIER_KEYS), at,
                          "tier values are " + ", ".join(f"`tier.{k}`" for k in TIER_KEYS))
        elif head == "datasets":
            if len(rest) != 1 or rest[0] not in self.config.spec.datasets:
                name = ".".join(rest)
                self.fail(f"`${{{ref.name}}}` in stage `{stage}`: unknown dataset `{name}`"
                          + did_you_mean(name, tuple(self.config.spec.datasets)), at,
                          "declare it under `datasets:`")
            elif (path := self.dataset_paths[rest[0]]) is not None:
                return InputRef(ref.name, path, None)
        elif len(rest) != 3 or rest[1] != "outs":
            self.fail(f"`${{{ref.name}}}` in stage `{stage}` is not a stage output", at,
                      "write `${stages.STAGE.outs.OUTPUT}`")
        else:
            return self.stage_out(stage, rest[0], rest[2], at, ref.name)
        return None

    def model(self, name: str, spec: ModelSpec) -> None:
        stages = self.config.spec.stages
        at: PathKey = ("models", name)
        for role in ("train", "evaluate"):
            target = getattr(spec, role)
            if target is not None and target not in stages:
                self.fail(f"model `{name}` names unknown {role} stage `{target}`"
                          + did_you_mean(target, tuple(stages)), (*at, role),
                          "use the name of a stage under `stages:`")
        if spec.train in stages and spec.artifact not in stages[spec.train].outs:
            outs = tuple(stages[spec.train].outs)
            self.fail(f"model `{name}`: stage `{spec.train}` has no output `{spec.artifact}`"
                      + did_you_mean(spec.artifact, outs), (*at, "artifact"),
                      "the artifact is the name of one of the train stage's `outs`")


def load_config(root: Path) -> Config:
    """Read ``root/sluice.yaml`` and resolve it; raise ConfigErrors listing every problem."""
    source = load_yaml(root / CONFIG_FILE, CONFIG_FILE)
    data = source.data
    if data is None:
        raise ConfigError(f"{CONFIG_FILE} is empty", location=Location(CONFIG_FILE, 1, 1),
                          hint="add a `stages:` section, or run `sluice init` for a starter")
    if not isinstance(data, dict):
        raise ConfigError(f"{CONFIG_FILE} must be a mapping with `stages:` at the top level",
                          location=source.locate(()), hint="start the file with `stages:`")
    try:
        spec = ConfigSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigErrors(translate_validation_error(exc, source)) from None
    params_file, params = load_params(root, spec.params, source.locate(("params",)))
    config = Config(root=root, spec=spec, source=source, params_file=params_file,
                    params=params, datasets=dict(spec.datasets), stages={},
                    models=dict(spec.models))
    resolver = _Resolver(config)
    for name, stage_spec in spec.stages.items():
        config.stages[name] = resolver.stage(name, stage_spec)
    for name, model_spec in spec.models.items():
        resolver.model(name, model_spec)
    if resolver.problems:
        raise ConfigErrors(resolver.problems)
    return config
