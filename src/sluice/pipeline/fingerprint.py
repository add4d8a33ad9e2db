"""Stage fingerprints: the content hash of everything a stage's result depends on.

The fingerprint covers the interpolated command, the values of the stage's
params keys, the content of every dependency and input, the output names and
paths, the stage's environment settings, and the tier's fraction and seed.
Equal fingerprints mean the stored result can be reused.
"""

from __future__ import annotations

import json
import os
import posixpath
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluice.config.base import (
    UNSAMPLED_KINDS,
    Config,
    InputRef,
    Stage,
    diff_values,
    is_glob,
    lookup_param,
    template_params,
)
from sluice.config.interpolate import Reference, format_value, render
from sluice.errors import SluiceError, UsageError
from sluice.util.git import git
from sluice.util.globmatch import compile_glob
from sluice.util.hashing import TreeEntry, hash_bytes, hash_manifest
from sluice.workspace.project import STATE_DIR, Project

FINGERPRINT_VERSION = 1
SEEDED_KINDS = ("train", "evaluate")


class MissingDependency(SluiceError):
    """A dependency or input of a stage does not exist when the stage is about to run."""


@dataclass(frozen=True)
class RunContext:
    """Values that a tier gives every stage (``${tier.*}`` and ``SLUICE_*``)."""

    tier: str = "default"
    fraction: float = 1.0
    seed: int = 0
    # Datasets replaced by their smoke-run samples: (name, sample path) pairs.
    samples: tuple[tuple[str, str], ...] = ()

    def dataset_path(self, config: Config, name: str, reader: Stage) -> str:
        """Where ``reader`` finds dataset ``name``: its smoke sample, if it has one and
        ``reader`` does not evaluate (a sampled test set leaves a gate's baseline without
        most of its ids: every smoke gate would be INCONCLUSIVE)."""
        for dataset, path in self.samples:
            if dataset == name and reader.kind not in UNSAMPLED_KINDS:
                return path
        # The same normal form as outputs (`./data/x/` → `data/x`), validated at load.
        return posixpath.normpath(config.datasets[name].path.strip())


def _resolver(config: Config, stage: Stage, ctx: RunContext) -> Any:
    def resolve(ref: Reference) -> Any:
        head, rest = ref.parts[0], ref.parts[1:]
        if head == "outs":
            return stage.outs[rest[0]]
        if head == "params":
            return lookup_param(config.params, ".".join(rest))[1]
        if head == "tier":
            return {"name": ctx.tier, "fraction": ctx.fraction, "seed": ctx.seed}[rest[0]]
        if head == "datasets":
            return ctx.dataset_path(config, rest[0], stage)
        return config.stages[rest[0]].outs[rest[2]]  # stages.X.outs.Y, checked at load
    return resolve


def render_command(config: Config, stage: Stage, ctx: RunContext,
                   paths: dict[str, str] | None = None) -> str:
    """The stage's command; ``paths`` swaps repo paths (to run it on other files)."""
    resolve = _resolver(config, stage, ctx)
    if not paths:
        return render(stage.cmd, resolve)
    return render(stage.cmd, lambda ref: (lambda v: paths.get(v, v) if isinstance(v, str)
                                          else v)(resolve(ref)))


def render_env(config: Config, stage: Stage, ctx: RunContext) -> dict[str, str]:
    resolve = _resolver(config, stage, ctx)
    return {k: render(v, resolve, quote=False) for k, v in stage.spec.env.items()}


def stage_environment(config: Config, stage: Stage, ctx: RunContext,
                      run_id: str, *, here: bool = True) -> dict[str, str]:
    """The variables a stage process gets on top of the inherited environment; ``here``:
    with the defaults of a ``uses:`` stage run on this machine (a capsule adds its own)."""
    env = {
        "SLUICE_TIER": ctx.tier,
        "SLUICE_FRACTION": format_value(training_values(stage, ctx)[0]),
        "SLUICE_SEED": str(training_values(stage, ctx)[1]),
        "SLUICE_STAGE": stage.name,
        "SLUICE_RUN_ID": run_id,
        "SLUICE_OUTS": json.dumps(stage.outs, sort_keys=True),
        # The Python running sluice, for commands sluice adds (sluice.config.builtin_stages).
        "SLUICE_PYTHON": sys.executable,
    }
    for name, path in stage.outs.items():
        env[f"SLUICE_OUT_{name.upper().replace('-', '_')}"] = path
    own = render_env(config, stage, ctx)
    if stage.spec.uses is not None and here:
        from sluice.config.uses import environment

        # Where MLflow / Metaflow keep their runs, unless the user's environment says.
        env.update(environment(stage.spec.uses, config.root, {**os.environ, **own}))
    env.update(own)
    return env


# Never project content: git's own folder and sluice's state (caches change under it).
_NOT_WALKED = frozenset({".git", STATE_DIR})


def _ignored_hidden(root: Path, folders: list[str]) -> set[str]:
    """The hidden folders among ``folders`` in which git sees no file (``.venv/``, caches).

    ``*`` matches a leading dot as in git, so ``**/*.py`` reaches hidden folders.
    One git sees files in (``.github/``: tracked, or untracked and not ignored)
    is read; one it ignores entirely is not, which keeps a virtualenv or a tool
    cache out of a fingerprint, just as ``affected`` never sees them.
    """
    if not folders:
        return set()
    try:  # outside a git repository (or without git) nothing is ignored
        out = git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                  "--directory", "--no-empty-directory", "--",
                  *(f":(literal){folder}" for folder in folders))
    except UsageError:
        return set()
    seen = {os.fsdecode(p) for p in out.split(b"\0") if p}
    return {folder for folder in folders
            if not any(p == folder or p.startswith(folder + "/") for p in seen)}


def glob_files(root: Path, pattern: str) -> list[tuple[str, os.stat_result]]:
    """(relative path, stat) of the files on disk under ``root`` that ``pattern`` matches.

    Folders the pattern cannot reach are not entered; symlinks are followed,
    but not back into a folder above (a loop).
    """
    glob = compile_glob(pattern)
    found: list[tuple[str, os.stat_result]] = []
    top = os.stat(root)
    stack = [("", str(root), glob.start, frozenset({(top.st_dev, top.st_ino)}))]
    while stack:
        prefix, folder, states, above = stack.pop()
        subfolders: list[tuple[str, str, frozenset[int]]] = []
        with os.scandir(folder) as entries:
            for entry in entries:
                after = glob.step(states, entry.name)
                if not after or (not prefix and entry.name in _NOT_WALKED):
                    continue
                try:
                    if entry.is_dir():
                        if glob.below(prefix + entry.name, after):
                            subfolders.append((entry.name, entry.path, after))
                    elif entry.is_file() and glob.end in after:
                        found.append((prefix + entry.name, entry.stat()))
                except OSError:
                    continue  # vanished or a broken link: not part of the tree
        hidden = [prefix + name for name, _, _ in subfolders if name.startswith(".")]
        skip = _ignored_hidden(root, hidden)
        for name, path, after in subfolders:
            if prefix + name in skip:
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in above:
                stack.append((prefix + name + "/", path, after,
                              above | {(st.st_dev, st.st_ino)}))
    found.sort()
    return found


def _hash_glob(project: Project, pattern: str) -> str:
    return hash_manifest([TreeEntry(rel, project.hasher.file(project.root / rel, st), st.st_size)
                          for rel, st in glob_files(project.root, pattern)])


def hash_dependency(project: Project, stage: Stage, path: str, what: str,
                    known_outputs: dict[str, str] | None = None) -> str:
    """Digest of a dep or input path (file, folder or glob).

    ``known_outputs`` gives the digests upstream outputs *will* have (when a plan
    restores them from the cache) so downstream fingerprints are right before
    anything is restored.
    """
    if known_outputs and path in known_outputs:
        return known_outputs[path]
    if is_glob(path):
        return _hash_glob(project, path)
    full = project.root / path
    try:
        return project.hasher.path(full)
    except FileNotFoundError:
        raise MissingDependency(
            f"{what} `{path}` of stage `{stage.name}` does not exist",
            hint="create it, or if another stage writes it, list that stage's output "
                 "under `inputs:`") from None
    except PermissionError:
        raise MissingDependency(f"{what} `{path}` of stage `{stage.name}` is not readable",
                                hint="fix its permissions") from None


def training_values(stage: Stage, ctx: RunContext) -> tuple[float, int]:
    """The fraction and seed a stage sees (``SLUICE_FRACTION``, ``SLUICE_SEED``).

    Only train and evaluate stages get the tier's values: data steps and checks
    run alike in every tier, so a smoke run and a full run share them, unless
    their command asks for ``${tier.fraction}`` or ``${tier.seed}`` (which makes
    the value part of their command, hence of their fingerprint).
    """
    if stage.kind in SEEDED_KINDS:
        return ctx.fraction, ctx.seed
    return 1.0, 0


def discovered_imports(project: Project, stage: Stage, command: str) -> list[str]:
    """Local Python files the stage's command imports (see sluice.workspace.imports)."""
    if not stage.spec.discover_imports:
        return []
    from sluice.workspace.uses import uses_scripts

    declared = set(stage.deps)
    finder = project.import_finder
    return [p for p in finder.discover(command, uses_scripts(stage, finder.read))
            if p not in declared]


def _input_path(config: Config, stage: Stage, ref: InputRef, ctx: RunContext) -> str:
    if ref.stage is None and ref.ref.startswith("datasets.") and ctx.samples:
        return ctx.dataset_path(config, ref.ref.removeprefix("datasets."), stage)
    return ref.path


def executor_setup_files(project: Project, stage: Stage, ctx: RunContext) -> list[str]:
    """The files the setup of the executor running ``stage`` names (`-r requirements.txt`):
    deps of the stage, so changing them reruns it. The executor itself is not part of
    the fingerprint: a result computed on a cluster is reused locally and vice versa."""
    spec = project.config.executor_spec(project.config.executor_name(stage.name, ctx.tier))
    if spec is None or not spec.setup:
        return []
    from sluice.pipeline.capsule_setup import setup_files

    return [p for p in setup_files(project.root, spec.setup) if p not in stage.deps]


def stage_components(project: Project, stage: Stage, ctx: RunContext,
                     known_outputs: dict[str, str] | None = None) -> dict[str, Any]:
    """Everything the fingerprint is made of, kept so `status` can say what changed."""
    config = project.config
    known = known_outputs or {}
    command = render_command(config, stage, ctx)
    keys = dict.fromkeys([*stage.spec.params,
                          *template_params(stage.cmd, *stage.spec.env.values())])
    return {
        "version": FINGERPRINT_VERSION,
        "template": stage.cmd,
        "cmd": command,
        "env": render_env(config, stage, ctx),
        "params": {k: lookup_param(config.params, k)[1] for k in keys},
        "deps": {p: hash_dependency(project, stage, p, "dependency", known)
                 for p in [*stage.deps, *executor_setup_files(project, stage, ctx)]},
        "inputs": {i.ref: hash_dependency(project, stage, _input_path(config, stage, i, ctx),
                                          "input", known)
                   for i in stage.inputs},
        "imports": {p: project.hasher.file(project.root / p)
                    for p in discovered_imports(project, stage, command)},
        "outs": dict(stage.outs),
        "tier": dict(zip(("fraction", "seed"), training_values(stage, ctx), strict=True)),
    }


def fingerprint_of(components: dict[str, Any]) -> str:
    text = json.dumps(components, sort_keys=True, separators=(",", ":"), default=str)
    return hash_bytes(text.encode())


def describe_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human reasons a stage is out of date, from its last and current components."""
    reasons: list[str] = []
    if old.get("template") != new.get("template"):
        reasons.append("command changed in sluice.yaml")
    for section, word in (("deps", "dependency"), ("inputs", "input"),
                          ("imports", "imported module")):
        before, after = old.get(section, {}), new.get(section, {})
        for key in after:
            if key not in before:
                reasons.append(f"{word} `{key}` added")
            elif before[key] != after[key]:
                reasons.append(f"{word} `{key}` changed")
        reasons += [f"{word} `{key}` removed" for key in before if key not in after]
    before_params, after_params = old.get("params", {}), new["params"]
    for key in sorted(set(before_params) | set(after_params)):
        if key not in before_params:
            reasons.append(f"params key `{key}` added")
        elif key not in after_params:
            reasons.append(f"params key `{key}` removed")
        else:
            reasons += [f"params {change}" for change in
                        diff_values(key, before_params[key], after_params[key])]
    if old.get("env") != new["env"]:
        reasons.append("environment settings changed")
    if old.get("outs") != new["outs"]:
        reasons.append("outputs changed")
    if old.get("tier") != new["tier"]:
        reasons.append("tier fraction or seed changed")
    if old.get("version") != new["version"]:
        reasons.append("sluice's fingerprint format changed")
    if not reasons and old.get("cmd") != new["cmd"]:
        reasons.append("a value interpolated into the command changed")
    # A key and its parent (`train`, `train.lr`) can both be tracked: say it once.
    return list(dict.fromkeys(reasons)) or ["fingerprint changed"]
