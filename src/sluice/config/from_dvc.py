"""``sluice init --from-dvc``: read a DVC pipeline (``dvc.yaml``) as sluice stages.

DVC resolves ``vars``, ``foreach``/``matrix`` and ``${...}`` when it loads
``dvc.yaml``; sluice has no templating, so the conversion does it once, here:
each expanded stage becomes a plain sluice stage (``train@small`` becomes
``train-small``). A ``${key}`` that names a key of the params file stays a
reference, ``${params.key}``, so a change of its value still reruns the stage;
values from ``vars`` or the loop item are written in. ``wdir`` becomes a
``cd`` in front of the command and a prefix on every path, since sluice runs
stages in the repository root. ``outs``, ``metrics`` and ``plots`` all become
named outputs (sluice caches each one). Whatever has no equivalent is kept as a
:class:`Note` with its ``dvc.yaml`` line and what to do; the YAML is read
through sluice's own loader (:mod:`sluice.util.yamlsource`), which also gives
those lines. :mod:`sluice.config.from_dvc_render` writes the result.
"""

from __future__ import annotations

import itertools
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluice.errors import ConfigError, Location
from sluice.util.yamlsource import PathKey, YamlSource, parse_yaml_bytes

DVC_YAML = "dvc.yaml"
DEFAULT_PARAMS = "params.yaml"  # DVC's default params file, relative to a stage's wdir
_REF = re.compile(r"(?<!\\)\$\{\s*([^}]*?)\s*\}")
_PARAMS_REF = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*")  # as sluice reads
_NAME_BAD = re.compile(r"[^A-Za-z0-9_\-]+")
_STAGE_KEYS = {"cmd", "deps", "outs", "metrics", "plots", "params", "wdir", "vars", "desc",
               "frozen", "always_changed", "meta", "foreach", "do", "matrix"}


@dataclass(frozen=True)
class Note:
    """Something of the DVC project the conversion could not carry over as it was."""

    location: Location
    message: str
    fix: str
    stage: str | None = None  # the dvc.yaml stage it is about (None: the whole file)

    def to_json(self) -> dict[str, Any]:
        return {"file": self.location.file, "line": self.location.line,
                "message": self.message, "fix": self.fix}


@dataclass
class ConvertedStage:
    """One sluice stage made from one (expanded) DVC stage."""

    name: str
    dvc_name: str  # as DVC names it, `train@small` for an expanded one
    origin: Location
    cmd: str
    description: str | None = None
    deps: list[str] = field(default_factory=list)
    params: list[str] = field(default_factory=list)
    outs: dict[str, str] = field(default_factory=dict)
    out_kind: dict[str, str] = field(default_factory=dict)  # output name → outs/metrics/plots


@dataclass
class Conversion:
    """The stages of a ``dvc.yaml`` and everything said about them."""

    stages: list[ConvertedStage]
    params_file: str | None  # the params file sluice reads (params.yaml when it exists)
    notes: list[Note]


def _sanitise(name: str) -> str:
    clean = _NAME_BAD.sub("-", name).strip("-") or "stage"
    return clean if re.match(r"[A-Za-z_]", clean) else "s-" + clean


def _lookup(context: dict[str, Any], ref: str) -> tuple[bool, Any]:
    """DVC's dotted (and ``[n]``) reference into the context: (found, value)."""
    value: Any = context
    for part in re.split(r"\.|\[(\d+)\]", ref):
        if part is None or part == "":
            continue
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False, None
    return True, value


def _as_list(value: Any) -> list[Any]:
    """A list field's entries: ``${item.deps}`` may resolve to one string or to a list."""
    return value if isinstance(value, list) else [] if value is None else [value]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return " ".join(_text(v) for v in value)
    return "" if value is None else str(value)


class _Reader:
    """Reads one ``dvc.yaml``: expansion, interpolation and notes."""

    def __init__(self, root: Path, source: YamlSource, params: dict[str, Any] | None) -> None:
        self.root = root
        self.source = source
        self.params = params or {}
        self.notes: list[Note] = []
        self.stages: list[ConvertedStage] = []
        self.current: str | None = None  # the dvc.yaml stage being read
        self.used_params: set[str] = set()  # params keys written into a command by value

    def note(self, path: PathKey, message: str, fix: str) -> None:
        self.notes.append(Note(self.source.locate(path, key=True), message, fix, self.current))

    # --- vars -----------------------------------------------------------------
    def load_vars(self, entries: Any, path: PathKey, base: str) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for i, entry in enumerate(entries if isinstance(entries, list) else [entries]):
            if isinstance(entry, dict):
                found.update(entry)
            elif isinstance(entry, str):
                file, _, keys = entry.partition(":")
                data = self.read_data_file(posixpath.join(base, file), (*path, i))
                if keys:
                    data = {k: data[k] for k in keys.split(",") if k in data}
                found.update(data)
        return found

    def read_data_file(self, rel: str, path: PathKey) -> dict[str, Any]:
        full = self.root / posixpath.normpath(rel)
        try:
            raw = full.read_bytes()
        except OSError:
            self.note(path, f"the vars file `{rel}` cannot be read",
                      "create it, or write its values into the stages")
            return {}
        if rel.endswith(".json"):
            import json

            data = json.loads(raw)
        else:
            data = parse_yaml_bytes(raw, rel).data
        return data if isinstance(data, dict) else {}

    # --- interpolation --------------------------------------------------------
    def resolve(self, value: Any, context: dict[str, Any], path: PathKey,
                *, in_cmd: bool = False) -> Any:
        """``value`` with DVC's ``${...}`` resolved; in a command, params stay references."""
        if isinstance(value, list):
            return [self.resolve(v, context, (*path, i), in_cmd=in_cmd)
                    for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {k: self.resolve(v, context, (*path, k), in_cmd=in_cmd)
                    for k, v in value.items()}
        if not isinstance(value, str):
            return value
        whole = _REF.fullmatch(value)
        if whole and not in_cmd:
            found, got = _lookup(context, whole.group(1))
            if found:
                return got

        def substitute(match: re.Match[str]) -> str:
            ref = match.group(1)
            found, got = _lookup(context, ref)
            in_params, value = _lookup(self.params, ref)
            if found and in_cmd and in_params and got is value:
                if _PARAMS_REF.fullmatch(ref):
                    return "${params." + ref + "}"  # sluice fingerprints its value
                self.used_params.add(ref.split("[")[0])  # `a.b[0]`: by value, keyed by `a.b`
            if found:
                return _text(got)
            self.note(path, f"`${{{ref}}}` names nothing in vars, params.yaml or the loop item",
                      "write the value into the command, or add the key to params.yaml")
            return "$${" + ref + "}"

        text = _REF.sub(substitute, value).replace("\\${", "$${")
        return text

    # --- stages ---------------------------------------------------------------
    def expand(self, name: str, body: Any, context: dict[str, Any]) -> None:
        path: PathKey = ("stages", name)
        self.current = name
        if not isinstance(body, dict):
            self.note(path, f"stage `{name}` is not a mapping", "fix dvc.yaml, then convert again")
            return
        if "foreach" in body:
            items = self.resolve(body["foreach"], context, (*path, "foreach"))
            do = body.get("do")
            pairs: list[tuple[str, dict[str, Any]]]
            if isinstance(items, dict):
                pairs = [(str(k), {"key": k, "item": v}) for k, v in items.items()]
            elif isinstance(items, list):
                pairs = [(str(v) if isinstance(v, (str, int, float)) else str(i), {"item": v})
                         for i, v in enumerate(items)]
            else:
                self.note((*path, "foreach"), "`foreach` is neither a list nor a mapping",
                          "give it a list or a mapping, or write the stages out")
                return
            for key, extra in pairs:
                self.stage(f"{name}@{key}", do, {**context, **extra}, (*path, "do"))
        elif "matrix" in body:
            matrix = self.resolve(body["matrix"], context, (*path, "matrix"))
            if not isinstance(matrix, dict) or not all(isinstance(v, list)
                                                       for v in matrix.values()):
                self.note((*path, "matrix"), "`matrix` must map names to lists",
                          "fix it, or write the stages out")
                return
            for combo in itertools.product(*matrix.values()):
                item = dict(zip(matrix, combo, strict=True))
                key = "-".join(_text(v) if isinstance(v, (str, int, float, bool)) else str(i)
                               for i, v in enumerate(combo))
                self.stage(f"{name}@{key}", body, {**context, "item": item}, path)
        else:
            self.stage(name, body, context, path)

    def stage(self, dvc_name: str, body: Any, context: dict[str, Any], path: PathKey) -> None:
        if not isinstance(body, dict):
            self.note(path, f"stage `{dvc_name}` has no body", "fix dvc.yaml")
            return
        wdir = posixpath.normpath(str(body.get("wdir") or "."))
        if "vars" in body:
            context = {**context, **self.load_vars(body["vars"], (*path, "vars"), wdir)}
        for key in body:
            if key not in _STAGE_KEYS:
                self.note((*path, key), f"stage `{dvc_name}`: `{key}` has no sluice equivalent",
                          "drop it, or see docs/migrating-from-dvc.md")
        self.used_params = set()
        cmd = self.resolve(body.get("cmd"), context, (*path, "cmd"), in_cmd=True)
        if isinstance(cmd, list):
            cmd = " && ".join(str(c) for c in cmd)
        if not isinstance(cmd, str) or not cmd.strip():
            self.note(path, f"stage `{dvc_name}` has no `cmd`; it was left out",
                      "add the stage to sluice.yaml by hand")
            return
        if wdir != ".":
            cmd = f"cd {wdir} && {cmd}"
        name = self.unique(_sanitise(dvc_name))
        stage = ConvertedStage(name, dvc_name, self.source.locate(path[:2], key=True), cmd,
                               description=body.get("desc") if isinstance(body.get("desc"), str)
                               else None)

        def at(rel: str) -> str:
            return posixpath.normpath(posixpath.join(wdir, rel))

        for i, dep in enumerate(_as_list(self.resolve(body.get("deps"), context,
                                                       (*path, "deps")))):
            if isinstance(dep, str):
                if "://" in dep or dep.startswith("/") or at(dep).startswith(".."):
                    self.note((*path, "deps", i), f"dependency `{dep}` is outside the "
                              "repository; sluice fingerprints files in the repository only",
                              "pin a copy inside the repository (`sluice data add`), or "
                              "list a file that changes with it")
                    continue
                stage.deps.append(at(dep))
        self.read_params(stage, body.get("params") or [], context, (*path, "params"), wdir)
        stage.params += sorted(self.used_params)
        for kind in ("outs", "metrics", "plots"):
            self.read_outs(stage, kind, body.get(kind) or [], context, (*path, kind), at)
        if body.get("frozen"):
            self.note((*path, "frozen"), f"stage `{dvc_name}` is frozen; sluice has no "
                      "frozen stages", "run the other stages by name (`sluice run STAGE`), or "
                      "remove the stage")
        if body.get("always_changed"):
            self.note((*path, "always_changed"), f"stage `{dvc_name}` is `always_changed`; "
                      "sluice reruns a stage only when what it reads changes",
                      "list what it really reads under deps (or pass `--force` to run)")
        self.stages.append(stage)

    def unique(self, name: str) -> str:
        taken = {s.name for s in self.stages}
        candidate, n = name, 2
        while candidate in taken:
            candidate, n = f"{name}-{n}", n + 1
        return candidate

    def read_params(self, stage: ConvertedStage, entries: Any, context: dict[str, Any],
                    path: PathKey, wdir: str) -> None:
        for i, entry in enumerate(_as_list(self.resolve(entries, context, path))):
            groups = entry.items() if isinstance(entry, dict) else [(DEFAULT_PARAMS, [entry])]
            for file, keys in groups:
                rel = posixpath.normpath(posixpath.join(wdir, file))
                if rel == DEFAULT_PARAMS and (self.root / rel).exists() and keys:
                    for key in keys:
                        if _lookup(self.params, str(key))[0]:
                            stage.params.append(str(key))
                        else:
                            self.note((*path, i), f"params key `{key}` is not in params.yaml",
                                      "add it to params.yaml, or remove it from the stage")
                    continue
                if rel == DEFAULT_PARAMS and self.params and not keys:
                    stage.params += [str(k) for k in self.params]  # the whole file: each section
                    continue
                if rel not in stage.deps:
                    stage.deps.append(rel)  # a whole file, or another params file: a dep
                why = "the whole file" if not keys else f"keys of `{rel}`"
                self.note((*path, i), f"stage `{stage.dvc_name}` reads {why}; sluice "
                          f"reads keys from one params file, so `{rel}` became a dep "
                          "(any change in it reruns the stage)",
                          "move the keys into params.yaml and list them under `params:` "
                          "for finer reruns")

    def read_outs(self, stage: ConvertedStage, kind: str, entries: Any,
                  context: dict[str, Any], path: PathKey, at: Any) -> None:
        for i, entry in enumerate(_as_list(self.resolve(entries, context, path))):
            options: dict[str, Any] = {}
            if isinstance(entry, dict) and len(entry) == 1:
                raw, opts = next(iter(entry.items()))
                options = opts if isinstance(opts, dict) else {}
            else:
                raw = entry
            if not isinstance(raw, str):
                continue
            rel = at(raw)
            if options.get("persist"):
                self.note((*path, i), f"`{raw}` is `persist: true`; sluice clears outputs "
                          "before a stage runs and restores them from its cache",
                          "make the stage rebuild it from its inputs")
            if kind == "plots" and any(k in options for k in ("x", "y", "template")):
                self.note((*path, i), f"plot options of `{raw}` (template, x, y) are DVC's "
                          "rendering", "`sluice plots` draws ROC and calibration from "
                          "predictions; see docs/migrating-from-dvc.md")
            base = posixpath.basename(rel.rstrip("/"))
            name = _sanitise(base.rsplit(".", 1)[0] if "." in base[1:] else base)
            unique, n = name, 2
            while unique in stage.outs:
                unique, n = f"{name}-{n}", n + 1
            stage.outs[unique] = rel
            stage.out_kind[unique] = kind


def convert_dvc_yaml(root: Path) -> Conversion:
    """The sluice stages of ``root/dvc.yaml``, with notes on what did not carry over."""
    try:
        raw = (root / DVC_YAML).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"no {DVC_YAML} in {root}",
                          hint="run `sluice init --from-dvc` in the DVC project's root") from None
    source = parse_yaml_bytes(raw, DVC_YAML)
    if not isinstance(source.data, dict) or not isinstance(source.data.get("stages"), dict):
        raise ConfigError(f"{DVC_YAML} has no `stages:` mapping", location=source.locate(()),
                          hint="check that it is a DVC 2 or 3 pipeline file")
    params = None
    params_file = None
    if (root / DEFAULT_PARAMS).exists():
        params_file = DEFAULT_PARAMS
        loaded = parse_yaml_bytes((root / DEFAULT_PARAMS).read_bytes(), DEFAULT_PARAMS).data
        params = loaded if isinstance(loaded, dict) else {}
    reader = _Reader(root, source, params)
    # DVC's interpolation context: params.yaml, then top-level vars over it.
    context = {**(params or {}),
               **reader.load_vars(source.data.get("vars") or [], ("vars",), ".")}
    for name, body in source.data["stages"].items():
        reader.expand(str(name), body, context)
    reader.current = None
    for key in ("plots", "metrics", "params", "artifacts", "datasets"):
        if source.data.get(key):
            reader.note((key,), f"top-level `{key}:` of dvc.yaml is not carried over",
                        _TOP_FIX[key])
    return Conversion(reader.stages, params_file, reader.notes)


_TOP_FIX = {
    "plots": "`sluice plots` draws ROC, calibration and per-slice plots from an evaluate "
             "stage's predictions; declare `models:` with `evaluate:`",
    "metrics": "declare `models:` with an evaluate stage; its metrics JSON is named by "
               "the model's `metrics:`",
    "params": "list the keys each stage reads under its `params:`",
    "artifacts": "declare the model under `models:` (its train stage and artifact output); "
                 "`sluice promote` moves aliases",
    "datasets": "declare them under `datasets:` in sluice.yaml",
}
