"""Change impact: which stages and models differ between two revisions, and why.

Computed from git alone, without checking out the base revision: blob ids for
tracked files, the base's ``sluice.yaml``, params file and data pins read with
``git cat-file``. Each stage gets a *revision fingerprint* that chains its
upstream stages' fingerprints, so it is defined at any revision even where no
outputs exist. A stage is affected when its fingerprint differs; the reasons
say which file, params key, dataset or config line made the difference.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

from sluice.config.base import (
    CONFIG_FILE,
    Config,
    Stage,
    diff_values,
    is_glob,
    lookup_param,
    template_params,
)
from sluice.config.load import load_config_cached
from sluice.config.lockfile import DataPin, collect_pins, in_dvc_repository
from sluice.errors import ConfigError, SluiceError
from sluice.pipeline.fingerprint import RunContext, fingerprint_of, render_command
from sluice.util.git import WORKTREE, Repo
from sluice.util.globmatch import compile_glob
from sluice.workspace.graph import Graph, OutputIndex, build_graph
from sluice.workspace.imports import ImportFinder
from sluice.workspace.uses import uses_scripts

_MAX_CHAINS = 5


@dataclass
class Snapshot:
    """One side of a comparison: a commit, or the working tree."""

    label: str
    commit: str
    config: Config | None
    problem: str | None
    files: dict[str, str]
    pins: dict[str, DataPin]
    repo: Repo
    sorted_files: list[str] = field(default_factory=list)
    graph: Graph | None = None
    outputs: OutputIndex | None = None

    def __post_init__(self) -> None:
        self.sorted_files = sorted(self.files)
        if self.config is not None:
            self.outputs = OutputIndex(self.config)

    def read(self, path: str) -> bytes | None:
        if path not in self.files and self.commit != WORKTREE:
            return None
        return self.repo.read(self.commit, path)

    def under(self, folder: str) -> list[str]:
        start = bisect.bisect_left(self.sorted_files, folder + "/")
        found = []
        for path in self.sorted_files[start:]:
            if not path.startswith(folder + "/"):
                break
            found.append(path)
        return found

    def content_of(self, path: str) -> dict[str, str]:
        """file → id for a dep or dataset path: git blobs, else data pins, else 'missing'."""
        if is_glob(path):
            # The fingerprint's matcher (sluice.util.globmatch); a pinned folder counts
            # when the glob can match something inside it, as the fingerprint reads it.
            glob = compile_glob(path)
            found = {f: self.files[f] for f in self.sorted_files if glob.match(f)}
            found.update({p.path: p.hash for p in self.pins.values()
                          if glob.match(p.path) or glob.below(p.path)})
            return found
        if path in self.files:
            return {path: self.files[path]}
        found = {f: self.files[f] for f in self.under(path)}
        for pin in self.pins.values():
            if pin.path == path or pin.path.startswith(path + "/") or \
                    path.startswith(pin.path + "/"):
                found[pin.path] = pin.hash
        return found or {path: "missing"}


def load_snapshot(repo: Repo, commit: str, label: str) -> Snapshot:
    files = repo.worktree() if commit == WORKTREE else repo.tree(commit)

    def read(path: str) -> bytes | None:
        if commit != WORKTREE and path not in files:
            return None
        return repo.read(commit, path)

    # DVC's pointer files pin data only in a DVC repository, as `data status` reads them.
    pointers = [f for f in files if f.endswith((".dvc", "dvc.lock"))] \
        if in_dvc_repository(repo.root) else []
    pins = collect_pins(pointers, read)
    config, problem = None, None
    if read(CONFIG_FILE) is None:
        problem = f"no {CONFIG_FILE} at {label}: every stage is new"
    else:
        try:
            config = load_config_cached(repo.root, read)
        except SluiceError as exc:
            if commit == WORKTREE:
                raise
            problem = f"{CONFIG_FILE} at {label} is invalid ({exc.message}): every stage is new"
    snap = Snapshot(label, commit, config, problem, files, pins, repo)
    if config is not None:
        try:
            snap.graph = build_graph(config)
        except ConfigError as exc:
            if commit == WORKTREE:
                raise
            snap.config, snap.problem = None, f"the pipeline at {label} is invalid " \
                                              f"({exc.message}): every stage is new"
    return snap


def stage_param_keys(stage: Stage) -> list[str]:
    """The params keys a stage reads: its `params:` list and the ones its command names."""
    return sorted(set(stage.spec.params) |
                  set(template_params(stage.cmd, *stage.spec.env.values())))


def revision_components(snap: Snapshot, fps: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Components of every stage at ``snap``; fills ``fps`` with chained fingerprints."""
    assert snap.config is not None and snap.graph is not None and snap.outputs is not None
    config = snap.config
    finder = ImportFinder(lambda p: p in snap.files or
                          (snap.commit == WORKTREE and (snap.repo.root / p).is_file()),
                          snap.read)
    result: dict[str, dict[str, Any]] = {}
    if snap.commit != WORKTREE:
        # Every stage's entry script, fetched from git in one exchange.
        from sluice.workspace.imports import entries

        scripts = [e.script for stage in config.stages.values() if stage.spec.discover_imports
                   for e in entries(render_command(config, stage, RunContext()))
                   if e.script is not None and e.script in snap.files]
        snap.repo.prefetch(snap.commit, scripts, snap.files)

    for name in snap.graph.order:
        stage = config.stages[name]
        deps: dict[str, dict[str, str]] = {}
        for dep in stage.deps:
            producers = snap.outputs.matching(dep)
            if not producers:
                deps[dep] = snap.content_of(dep)
        datasets: dict[str, dict[str, str]] = {}
        for inp in stage.inputs:
            if inp.stage is None:
                datasets[inp.ref.removeprefix("datasets.")] = snap.content_of(inp.path)
        keys = stage_param_keys(stage)
        imports = {}
        if stage.spec.discover_imports:
            command = render_command(config, stage, RunContext())
            try:
                scripts = uses_scripts(stage, snap.read)
            except ConfigError:
                scripts = []  # a broken MLproject: the stage's plan reports it
            imports = {p: snap.files.get(p, "untracked")
                       for p in finder.discover(command, scripts) if p not in stage.deps}
        components = {
            "cmd": stage.cmd,
            "env": dict(stage.spec.env),
            "outs": dict(stage.outs),
            "params": {k: lookup_param(config.params, k)[1] for k in keys},
            "deps": deps,
            "datasets": datasets,
            "imports": imports,
            "upstream": {u: fps[u] for u in snap.graph.upstream[name]},
        }
        result[name] = components
        fps[name] = fingerprint_of(components)
    return result


def _file_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    reasons = []
    added = {p: h for p, h in after.items() if p not in before}
    deleted = {p: h for p, h in before.items() if p not in after}
    by_hash = {h: p for p, h in deleted.items()}
    for path, digest in sorted(added.items()):
        if digest == "missing":
            continue
        old = by_hash.pop(digest, None)
        if old is not None:
            deleted.pop(old)
            reasons.append(f"{old} renamed to {path}")
        else:
            reasons.append(f"{path} added")
    reasons += [f"{p} deleted" for p, h in sorted(deleted.items()) if h != "missing"]
    reasons += [f"{p} modified" for p in sorted(after)
                if p in before and before[p] != after[p] and "missing" not in (before[p], after[p])]
    reasons += [f"{p} removed" for p in sorted(after)
                if after[p] == "missing" and before.get(p, "missing") != "missing"]
    return reasons


def direct_reasons(old: dict[str, Any], new: dict[str, Any], pins: dict[str, DataPin]) -> list[str]:
    """Why a stage's own inputs differ (upstream stages are handled separately)."""
    reasons = []
    if old["cmd"] != new["cmd"]:
        reasons.append("stage cmd changed in sluice.yaml")
    if old["env"] != new["env"]:
        reasons.append("stage env changed in sluice.yaml")
    if old["outs"] != new["outs"]:
        reasons.append("stage outputs changed in sluice.yaml")
    for key in sorted(set(old["params"]) | set(new["params"])):
        if key not in old["params"]:
            reasons.append(f"params {key} now used by the stage")
        elif key not in new["params"]:
            reasons.append(f"params {key} no longer used by the stage")
        else:
            reasons += [f"params {change}" for change in
                        diff_values(key, old["params"][key], new["params"][key])]
    for dep in sorted(set(old["deps"]) | set(new["deps"])):
        reasons += _file_changes(old["deps"].get(dep, {}), new["deps"].get(dep, {}))
    for name in sorted(set(old["datasets"]) | set(new["datasets"])):
        before, after = old["datasets"].get(name), new["datasets"].get(name)
        if before != after:
            sources = sorted({pins[p].source for p in (after or {}) if p in pins}) or ["git"]
            reasons.append(f"dataset {name} changed ({', '.join(sources)})")
    reasons += _file_changes(old["imports"], new["imports"])
    return list(dict.fromkeys(reasons))


@dataclass
class StageImpact:
    name: str
    affected: bool
    reasons: list[str] = field(default_factory=list)  # the stage's own changes
    upstream: list[str] = field(default_factory=list)  # affected stages it reads from
    chains: list[list[str]] = field(default_factory=list)  # stage ← … ← root cause

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "affected": self.affected, "reasons": self.reasons,
                "upstream": self.upstream,
                "chains": [" ← ".join(chain) for chain in self.chains]}


@dataclass
class ModelImpact:
    name: str
    affected: bool
    stages: list[str] = field(default_factory=list)
    chains: list[list[str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "affected": self.affected, "stages": self.stages,
                "chains": [" ← ".join(chain) for chain in self.chains]}


@dataclass
class Impact:
    """What a change between two revisions affects."""

    base: str
    head: str
    note: str | None
    stages: dict[str, StageImpact]
    models: dict[str, ModelImpact]
    base_commit: str | None = None  # the commit compared with (base is its label)

    @property
    def affected_stages(self) -> list[str]:
        return [name for name, s in self.stages.items() if s.affected]

    def to_json(self) -> dict[str, Any]:
        return {"base": self.base, "head": self.head, "note": self.note,
                "affected_stages": self.affected_stages,
                "affected_models": [m for m, i in self.models.items() if i.affected],
                "stages": [s.to_json() for s in self.stages.values()],
                "models": [m.to_json() for m in self.models.values()]}


def _chains(name: str, own: list[str], upstream: list[str],
            known: dict[str, StageImpact]) -> list[list[str]]:
    chains = [[name, reason] for reason in own]
    for up in upstream:
        chains += [[name, *chain] for chain in known[up].chains]
        if len(chains) >= _MAX_CHAINS:
            break
    return chains[:_MAX_CHAINS]


def compare(base: Snapshot, head: Snapshot) -> Impact:
    """Stage and model impact of going from ``base`` to ``head``."""
    assert head.config is not None and head.graph is not None
    head_fps: dict[str, str] = {}
    head_parts = revision_components(head, head_fps)
    base_fps: dict[str, str] = {}
    base_parts = revision_components(base, base_fps) if base.config is not None else {}
    base_stages = base.config.stages if base.config is not None else {}
    stages: dict[str, StageImpact] = {}
    for name in head.graph.order:
        upstream = [u for u in head.graph.upstream[name] if stages[u].affected]
        if name not in base_stages:
            own = [base.problem or "stage added in sluice.yaml"]
        elif base_fps.get(name) == head_fps[name]:
            stages[name] = StageImpact(name, False)
            continue
        else:
            own = direct_reasons(base_parts[name], head_parts[name], head.pins | base.pins)
            old_up = set(base_parts[name]["upstream"])
            new_up = set(head_parts[name]["upstream"])
            if old_up != new_up:
                own.append("stage inputs changed in sluice.yaml")
        affected = bool(own or upstream)
        stages[name] = StageImpact(name, affected, own, upstream,
                                   _chains(name, own, upstream, stages) if affected else [])
    models: dict[str, ModelImpact] = {}
    for name, model in head.config.models.items():
        parts = [s for s in (model.train, model.evaluate) if s and stages[s].affected]
        chains = [[name, *chain] for s in parts for chain in stages[s].chains][:_MAX_CHAINS]
        models[name] = ModelImpact(name, bool(parts), parts, chains)
    return Impact(base.label, head.label, base.problem, stages, models, base.commit)


def compute_impact(repo: Repo, base_rev: str, head_rev: str | None = None) -> Impact:
    """Impact of ``head_rev`` (default: the working tree) against the merge base with ``base_rev``.

    As with ``git diff base...head``, the comparison point is the merge base, so
    commits that landed on the base branch after the fork do not count.
    """
    head_commit = repo.resolve(head_rev) if head_rev else WORKTREE
    base_commit = repo.merge_base(repo.resolve(base_rev),
                                  head_commit if head_rev else repo.resolve("HEAD"))
    head_label = head_rev or "the working tree"
    try:
        head = load_snapshot(repo, head_commit, head_label)
        if head.config is None:
            raise ConfigError(f"no {CONFIG_FILE} at {head_label}",
                              hint="run `sluice init`, or pass a --head that has one")
        base = load_snapshot(repo, base_commit, f"{base_rev} ({base_commit[:10]})")
        return compare(base, head)
    finally:
        repo.close()
