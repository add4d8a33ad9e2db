"""Load ``sluice.yaml`` into a validated, resolved :class:`Config`.

Errors carry the file, line and column, say what was expected, and suggest the
closest valid name for a typo. All problems found in one pass are reported
together, so a user fixes a broken file in one go rather than one error per run.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice.errors import ConfigError, ConfigErrors, Location, in_file_order
from sluice.interpolate import NAMESPACES, InterpolationError, Reference, format_value, references
from sluice.yamlsource import PathKey, YamlSource, parse_yaml_bytes

if TYPE_CHECKING:
    # Only for types: pydantic is imported when a config is validated, not when
    # it comes from the cache (see sluice.config_cache).
    from sluice.config_schema import ConfigSpec, DatasetSpec, ModelSpec, StageSpec

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


def _param_keys(params: dict[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for k, v in params.items():
        full = f"{prefix}{k}"
        keys.append(full)
        if isinstance(v, dict):
            keys.extend(_param_keys(v, full + "."))
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
    return str(value) if isinstance(value, dt.date) else value


def _label(at: PathKey) -> str:
    """`cmd` or `env.NAME`: the field of a stage a template came from."""
    return f"`{'.'.join(str(p) for p in at[2:])}`"


class _Resolver:
    """Resolves one config's cross-references, collecting every problem it finds."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.problems: list[ConfigError] = []
        self.out_paths = {(s, o): p for s, spec in config.spec.stages.items()
                          for o, p in spec.outs.items()}
        self.dataset_paths = {name: self.path(d.path, f"dataset `{name}` ({{path}})",
                                              ("datasets", name, "path"))
                              for name, d in config.spec.datasets.items()}

    def fail(self, message: str, path: PathKey, hint: str | None = None,
             *, key: bool = False, offset: int | None = None) -> None:
        source = self.config.source
        where = source.locate(path, key=key) if offset is None else \
            source.locate_offset(path, offset)
        self.problems.append(ConfigError(message, hint=hint, location=where))

    def path(self, raw: str, what: str, at: PathKey) -> str | None:
        if not self.literal(raw, what.replace("{path}", f"`{raw}`"), at, "paths"):
            return None
        try:
            return normalise_path(raw, what, self.config.source.locate(at))
        except ConfigError as exc:
            self.problems.append(exc)
            return None

    def literal(self, raw: str, subject: str, at: PathKey, kind: str) -> bool:
        """False (and a problem) when ``raw`` holds a ``${`` that would stay in it as written."""
        offset = raw.find("${")  # never interpolated: it would stay in the value as written
        if offset != -1:
            self.fail(f"{subject} contains `${{`, but sluice does not interpolate {kind}", at,
                      "only a stage's `cmd` and `env` are interpolated; write the value out",
                      offset=offset)
        return offset == -1

    def aliases(self) -> None:
        """Registry alias names are used as written; a `${` in one is a mistake."""
        spec = self.config.spec
        named: list[tuple[str | None, PathKey]] = [
            *((m.baseline.alias, ("models", n, "baseline", "alias"))
              for n, m in spec.models.items() if m.baseline),
            *((t.promote, ("tiers", n, "promote")) for n, t in spec.tiers.items()),
            *((p.after, ("promotion", n, "after")) for n, p in spec.promotion.items()),
            *((d.drift.alias, ("datasets", n, "drift", "alias"))
              for n, d in spec.datasets.items() if d.drift)]
        for value, at in named:
            if value is not None:
                self.literal(value, f"alias `{value}` (`{'.'.join(map(str, at))}`)", at,
                             "alias names")

    def stage(self, name: str, spec: StageSpec) -> Stage:
        at: PathKey = ("stages", name)
        outs: dict[str, str] = {}
        for out, raw in spec.outs.items():
            where: PathKey = (*at, "outs", out)
            norm = self.path(raw, f"output `{out}` ({{path}}) of stage `{name}`", where)
            if norm is None:
                continue
            if is_glob(norm):
                self.fail(f"output `{out}` of stage `{name}` is a glob (`{raw}`)", where,
                          "name one file or directory per output")
            elif norm == ".":
                self.fail(f"output `{out}` of stage `{name}` is the repository root", where,
                          "write each output to its own file or folder, e.g. `out/model.pkl`")
            outs[out] = norm
        deps = []
        for i, raw in enumerate(spec.deps):
            norm = self.path(raw, f"dependency {{path}} of stage `{name}`", (*at, "deps", i))
            if norm is not None:
                deps.append(norm)
        inputs = [ref for i, text in enumerate(spec.inputs)
                  if (ref := self.input_ref(name, text, (*at, "inputs", i))) is not None]
        for i, key in enumerate(spec.params):
            self.param_key(f"params key `{key}` of stage `{name}`", key, (*at, "params", i))
        self.cmd_refs(name, spec, inputs)
        return Stage(name=name, spec=spec, deps=tuple(deps), inputs=tuple(inputs), outs=outs)

    def input_ref(self, stage: str, text: str, at: PathKey) -> InputRef | None:
        ref = text.strip()
        parts = ref.split(".")
        subject = f"input `{ref}` of stage `{stage}`"
        datasets = self.config.spec.datasets
        if parts[0] == "datasets" and len(parts) == 2:
            if parts[1] not in datasets:
                self.fail(f"{subject} names unknown dataset `{parts[1]}`"
                          + did_you_mean(parts[1], tuple(datasets)), at,
                          "declare it under `datasets:` or fix the name")
                return None
            norm = self.dataset_paths[parts[1]]
            return InputRef(text, norm, None) if norm else None
        if parts[0] == "stages" and len(parts) == 4 and parts[2] == "outs":
            return self.stage_out(subject, parts[1], parts[3], at, text)
        self.fail(f"{subject} is not a dataset or stage output", at,
                  self.input_hint(ref))
        return None

    def input_hint(self, ref: str) -> str:
        """How to write a malformed ``inputs:`` entry, guessing what was meant."""
        stages, datasets = self.config.spec.stages, self.config.spec.datasets
        inner = ref.removeprefix("${").removesuffix("}")
        parts = inner.split(".")
        guess = None
        if inner != ref:
            guess = inner
        elif len(parts) == 2 and parts[0] in stages and parts[1] in stages[parts[0]].outs:
            guess = f"stages.{parts[0]}.outs.{parts[1]}"
        elif len(parts) == 1 and parts[0] in datasets:
            guess = f"datasets.{parts[0]}"
        elif len(parts) == 3 and parts[0] == "stages":
            guess = f"stages.{parts[1]}.outs.{parts[2]}"
        general = "write `datasets.NAME` or `stages.STAGE.outs.OUTPUT`"
        return f"did you mean `{guess}`? ({general})" if guess else general

    def stage_out(self, subject: str, producer: str, out: str, at: PathKey,
                  text: str, offset: int | None = None) -> InputRef | None:
        stages = self.config.spec.stages
        if producer not in stages:
            self.fail(f"{subject} names unknown stage `{producer}`"
                      + did_you_mean(producer, tuple(stages)), at,
                      "check the stage name under `stages:`", offset=offset)
            return None
        if out not in stages[producer].outs:
            outs = tuple(stages[producer].outs)
            self.fail(f"{subject}: stage `{producer}` has no output `{out}`"
                      + did_you_mean(out, outs), at,
                      f"the outputs of `{producer}` are: "
                      + (", ".join(outs) or "(none)"), offset=offset)
            return None
        path = posixpath.normpath(self.out_paths[(producer, out)].strip())
        return InputRef(text, path, producer)

    def param_key(self, subject: str, key: str, at: PathKey, offset: int | None = None) -> None:
        found, _ = lookup_param(self.config.params, key)
        if found:
            return
        if self.config.params_file is None:
            self.fail(f"{subject} needs a params file, but there is none", at,
                      f"create {DEFAULT_PARAMS_FILE}, or set the top-level `params:` to the "
                      "path of your params file", offset=offset)
            return
        self.fail(f"{subject}: `{key}` is not in {self.config.params_file}"
                  + did_you_mean(key, _param_keys(self.config.params)), at,
                  f"add it to {self.config.params_file} or fix the key", offset=offset)

    def cmd_refs(self, stage: str, spec: StageSpec, inputs: list[InputRef]) -> None:
        """Check every ``${...}`` in cmd and env; stage outputs used there become inputs."""
        fields: list[tuple[str, PathKey]] = [(spec.cmd, ("stages", stage, "cmd"))]
        fields += [(v, ("stages", stage, "env", k)) for k, v in spec.env.items()]
        for template, at in fields:
            try:
                refs = list(references(template))
            except InterpolationError as exc:
                self.fail(f"{exc} in {_label(at)} of stage `{stage}`", at, exc.hint,
                          offset=exc.offset)
                continue
            for ref in refs:
                found = self.reference(stage, spec, ref, at)
                if found is not None and all(i.ref != found.ref for i in inputs):
                    inputs.append(found)

    def reference(self, stage: str, spec: StageSpec, ref: Reference,
                  at: PathKey) -> InputRef | None:
        parts = ref.parts
        head, rest = parts[0], parts[1:]
        subject = f"`${{{ref.name}}}` in {_label(at)} of stage `{stage}`"
        off = ref.offset
        if head not in NAMESPACES:
            close = difflib.get_close_matches(head, NAMESPACES, n=1, cutoff=0.6)
            guess = "; did you mean `${" + ".".join([close[0], *rest]) + "}`?" if close else ""
            self.fail(f"unknown reference {subject}" + guess, at,
                      "references start with " + ", ".join(f"`{n}.`" for n in NAMESPACES),
                      offset=off)
        elif head == "outs":
            if len(rest) != 1 or rest[0] not in spec.outs:
                name = ".".join(rest)
                outs = ", ".join(spec.outs) or "(none)"
                self.fail(f"{subject}: stage `{stage}` has no output `{name}`"
                          + did_you_mean(name, tuple(spec.outs)), at,
                          f"declare it under the stage's `outs:` (its outputs: {outs})",
                          offset=off)
        elif head == "params":
            self.param_key(subject, ".".join(rest), at, offset=off)
        elif head == "tier":
            if len(rest) != 1 or rest[0] not in TIER_KEYS:
                close = difflib.get_close_matches(".".join(rest), TIER_KEYS, n=1, cutoff=0.6)
                self.fail(f"unknown reference {subject}"
                          + (f"; did you mean `${{tier.{close[0]}}}`?" if close else ""), at,
                          "tier values are " + ", ".join(f"`tier.{k}`" for k in TIER_KEYS),
                          offset=off)
        elif head == "datasets":
            if len(rest) != 1 or rest[0] not in self.config.spec.datasets:
                name = ".".join(rest)
                self.fail(f"{subject} names unknown dataset `{name}`"
                          + did_you_mean(name, tuple(self.config.spec.datasets)), at,
                          "declare it under `datasets:`", offset=off)
            elif (path := self.dataset_paths[rest[0]]) is not None:
                return InputRef(ref.name, path, None)
        elif len(rest) != 3 or rest[1] != "outs":
            self.fail(f"{subject} is not a stage output", at,
                      "write `${stages.STAGE.outs.OUTPUT}`", offset=off)
        else:
            return self.stage_out(subject, rest[0], rest[2], at, ref.name, offset=off)
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
            self.fail(f"artifact `{spec.artifact}` of model `{name}` is not an output of "
                      f"stage `{spec.train}`" + did_you_mean(spec.artifact, outs),
                      (*at, "artifact"),
                      f"the artifact is the name of one of `{spec.train}`'s outputs: "
                      + (", ".join(outs) or "(none)"))


def load_config(root: Path) -> Config:
    """Read ``root/sluice.yaml`` and resolve it; raise ConfigErrors listing every problem.

    A config that loaded before with the same bytes comes from a cache in
    ``.sluice/`` without re-validating it (see :mod:`sluice.config_cache`).
    """
    return load_config_cached(root, disk_reader(root))


def load_config_cached(root: Path, read: Reader) -> Config:
    """:func:`load_config_from` through the cache in ``root/.sluice`` (any revision)."""
    from sluice.config_cache import load_cached, save_cached

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

    from sluice.config_errors import translate_validation_error
    from sluice.config_schema import ConfigSpec
    from sluice.config_tiers import check_gates, check_storage, check_tiers
    from sluice.data_checks import add_validation_stages

    try:
        spec = ConfigSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigErrors(translate_validation_error(exc, source)) from None
    params_file, params = load_params(root, spec.params, source.locate(("params",)), read)
    config = Config(root=root, spec=spec, params_file=params_file, params=params,
                    datasets=dict(spec.datasets), stages={}, models=dict(spec.models),
                    raw=raw, _source=source)
    resolver = _Resolver(config)
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
    if resolver.problems:
        raise ConfigErrors(in_file_order(resolver.problems))
    return config
