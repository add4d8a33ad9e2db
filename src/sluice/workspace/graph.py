"""The stage DAG: edges run from a stage's outputs to the stages that read them.

A stage depends on another when it lists one of its outputs under ``inputs``,
interpolates it in ``cmd``, or names its path (or a folder around it, or a glob
matching it) under ``deps``. Building the graph also rejects outputs claimed by
two stages, a stage reading its own output, and cycles (spelled out in full).
"""

from __future__ import annotations

import bisect
import heapq
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass

from sluice.config.base import Config, is_glob
from sluice.errors import ConfigError, ConfigErrors, in_file_order
from sluice.util.globmatch import compile_glob


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder + "/")


def glob_touches(pattern: str, path: str) -> bool:
    """Whether glob ``pattern`` can match ``path``, a folder above it, or a file below it.

    The one matcher the fingerprint and ``affected`` use (:mod:`sluice.util.globmatch`).
    """
    return compile_glob(pattern).touches(path)


def _ancestors(path: str) -> Iterable[str]:
    while True:
        path = posixpath.dirname(path)
        if not path:
            return
        yield path


@dataclass(frozen=True)
class Producer:
    """The stage output that writes a path."""

    stage: str
    out: str
    path: str


class OutputIndex:
    """Every declared output path, searchable by path, folder and glob."""

    def __init__(self, config: Config) -> None:
        self.by_path: dict[str, Producer] = {}
        self.problems: list[ConfigError] = []
        for stage in config.stages.values():
            for out, path in stage.outs.items():
                other = self.by_path.get(path)
                if other is not None:
                    owner = "the same stage" if other.stage == stage.name else \
                        f"stage `{other.stage}`"
                    self.problems.append(ConfigError(
                        f"output `{out}` of stage `{stage.name}` writes `{path}`, which is "
                        f"already output `{other.out}` of {owner}",
                        location=config.locate("stages", stage.name, "outs", out),
                        hint="each path is produced by one output of one stage; "
                             "change one of the two paths"))
                    continue
                self.by_path[path] = Producer(stage.name, out, path)
        self.sorted_paths = sorted(self.by_path)
        for path in self.sorted_paths:
            for parent in _ancestors(path):
                if parent in self.by_path:
                    inner, outer = self.by_path[path], self.by_path[parent]
                    self.problems.append(ConfigError(
                        f"output `{path}` of stage `{inner.stage}` lies inside output "
                        f"`{parent}` of stage `{outer.stage}`",
                        location=config.locate("stages", inner.stage, "outs", inner.out),
                        hint="outputs may not nest; give each its own folder"))

    def matching(self, dep: str) -> list[Producer]:
        """Outputs a dependency path (file, folder or glob) reads."""
        if is_glob(dep):
            return [p for path, p in self.by_path.items() if glob_touches(dep, path)]
        found = [self.by_path[a] for a in (dep, *_ancestors(dep)) if a in self.by_path]
        start = bisect.bisect_left(self.sorted_paths, dep + "/")
        for path in self.sorted_paths[start:]:
            if not path.startswith(dep + "/"):
                break
            found.append(self.by_path[path])
        return found


@dataclass
class Graph:
    """Stages in topological order with their direct neighbours."""

    order: list[str]
    upstream: dict[str, list[str]]
    downstream: dict[str, list[str]]

    def with_upstream(self, targets: Iterable[str]) -> list[str]:
        """``targets`` and everything they need, in run order."""
        return self._closure(targets, self.upstream)

    def with_downstream(self, sources: Iterable[str]) -> list[str]:
        """``sources`` and everything that reads from them, in run order."""
        return self._closure(sources, self.downstream)

    def _closure(self, start: Iterable[str], edges: dict[str, list[str]]) -> list[str]:
        reached: set[str] = set()
        stack = list(start)
        while stack:
            name = stack.pop()
            if name not in reached:
                reached.add(name)
                stack.extend(edges[name])
        return [s for s in self.order if s in reached]


def _find_cycle(nodes: list[str], upstream: dict[str, list[str]]) -> list[str]:
    """One cycle among ``nodes`` (which are known to contain one), as a closed path."""
    state: dict[str, int] = {}
    trail: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        trail.append(node)
        for nxt in upstream[node]:
            if state.get(nxt) == 1:
                return [*trail[trail.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        trail.pop()
        return None

    for node in nodes:
        if node not in state and (cycle := visit(node)):
            ring = list(reversed(cycle))[:-1]
            first = min(range(len(ring)), key=lambda i: nodes.index(ring[i]))
            ring = ring[first:] + ring[:first]  # start at the stage written first
            return [*ring, ring[0]]
    return nodes  # unreachable when a cycle exists


def _reads_own_output(config: Config, name: str) -> ConfigError:
    """A stage whose input (or `${...}` in cmd/env) is one of its own outputs."""
    stage = config.stages[name]
    spec = stage.spec
    for inp in stage.inputs:
        own = [out for out, path in stage.outs.items()
               if inp.stage == name or _inside(inp.path, path) or _inside(path, inp.path)]
        if not own:
            continue
        message = f"stage `{name}` reads its own output `{own[0]}`"
        hint = "a stage cannot read what it writes; split it into two stages"
        for i, text in enumerate(spec.inputs):
            if text == inp.ref:
                return ConfigError(f"{message} through input `{inp.ref.strip()}`",
                                   location=config.locate("stages", name, "inputs", i),
                                   hint=hint)
        fields = [(("stages", name, "cmd"), spec.cmd or ""),
                  *((("stages", name, "env", k), v) for k, v in spec.env.items())]
        for at, template in fields:
            offset = template.find("${" + inp.ref)
            if offset != -1:
                return ConfigError(f"{message} through `${{{inp.ref}}}`",
                                   location=config.source.locate_offset(at, offset), hint=hint)
    return ConfigError(f"stage `{name}` reads its own output",
                       location=config.locate("stages", name, key=True),
                       hint="a stage cannot read what it writes")


def build_graph(config: Config) -> Graph:
    """The DAG of ``config``'s stages; ConfigErrors for clashing outputs and cycles."""
    index = OutputIndex(config)
    problems = list(index.problems)
    upstream: dict[str, list[str]] = {}
    for stage in config.stages.values():
        ups: dict[str, None] = {}
        for inp in stage.inputs:
            if inp.stage is not None:
                ups[inp.stage] = None
            else:
                ups.update((p.stage, None) for p in index.matching(inp.path))
        for dep in stage.deps:
            ups.update((p.stage, None) for p in index.matching(dep))
        reads_own_output = False
        for i, dep in enumerate(stage.deps):
            for out, path in stage.outs.items():
                if _inside(path, dep) or _inside(dep, path) or \
                        (is_glob(dep) and glob_touches(dep, path)):
                    problems.append(ConfigError(
                        f"stage `{stage.name}` lists `{dep}` as a dependency but also "
                        f"writes output `{out}` at `{path}`",
                        location=config.locate("stages", stage.name, "deps", i),
                        hint="a stage cannot read what it writes; split it into two stages "
                             "or move the output"))
                    reads_own_output = True
        if stage.name in ups:
            ups.pop(stage.name)
            if not reads_own_output:
                problems.append(_reads_own_output(config, stage.name))
        upstream[stage.name] = list(ups)
    if problems:
        raise ConfigErrors(in_file_order(problems))
    downstream: dict[str, list[str]] = {name: [] for name in upstream}
    for name, ups_list in upstream.items():
        for up in ups_list:
            downstream[up].append(name)
    order = _topological(list(config.stages), upstream, downstream)
    if len(order) < len(upstream):
        stuck = [n for n in config.stages if n not in set(order)]
        cycle = _find_cycle(stuck, upstream)
        raise ConfigError("the stages form a cycle: " + " → ".join(cycle),
                          location=config.locate("stages", cycle[0], key=True),
                          hint="`x → y` means y reads an output of x; remove one of these "
                               "dependencies to break the cycle")
    return Graph(order=order, upstream=upstream, downstream=downstream)


def _topological(names: list[str], upstream: dict[str, list[str]],
                 downstream: dict[str, list[str]]) -> list[str]:
    """Kahn's algorithm; ties keep the order of ``sluice.yaml`` so plans read naturally."""
    position = {n: i for i, n in enumerate(names)}
    missing = {n: len(upstream[n]) for n in names}
    ready = [n for n in names if missing[n] == 0]
    order: list[str] = []
    heap = [(position[n], n) for n in ready]
    heapq.heapify(heap)
    while heap:
        _, name = heapq.heappop(heap)
        order.append(name)
        for nxt in downstream[name]:
            missing[nxt] -= 1
            if missing[nxt] == 0:
                heapq.heappush(heap, (position[nxt], nxt))
    return order
