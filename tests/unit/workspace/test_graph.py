"""The stage DAG: where edges come from, run order, and closures."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.workspace.graph import OutputIndex, glob_touches
from tests.unit._util import load, load_graph


def _edges(tmp_path: Path, yaml: str) -> dict[str, list[str]]:
    return load_graph(tmp_path, yaml)[1].upstream


def test_edge_from_inputs(tmp_path: Path) -> None:
    assert _edges(tmp_path, """\
stages:
  features: {cmd: x, outs: {table: t.csv}}
  train: {cmd: x, inputs: [stages.features.outs.table]}
""") == {"features": [], "train": ["features"]}


def test_edge_from_cmd_and_env_interpolation(tmp_path: Path) -> None:
    assert _edges(tmp_path, """\
stages:
  a: {cmd: x, outs: {o: a.txt}}
  b: {cmd: x, outs: {o: b.txt}}
  c: {cmd: 'cat ${stages.a.outs.o}', env: {B: '${stages.b.outs.o}'}}
""")["c"] == ["a", "b"]


def test_edge_from_a_dataset_that_a_stage_writes(tmp_path: Path) -> None:
    assert _edges(tmp_path, """\
datasets: {clean: data/clean}
stages:
  clean: {cmd: x, outs: {dir: data/clean}}
  train: {cmd: x, inputs: [datasets.clean]}
""")["train"] == ["clean"]


@pytest.mark.parametrize(("dep", "out", "edge"), [
    ("build/a.txt", "build/a.txt", True),  # the exact file
    ("./build//a.txt", "build/a.txt", True),
    ("build", "build/a.txt", True),  # a folder containing an output
    ("build/", "build/sub/a.txt", True),
    ("build/sub/x.csv", "build", True),  # a dep inside an output folder
    ("build/*.txt", "build/a.txt", True),  # a glob matching the output
    ("build/*", "build/sub/a.txt", True),  # ... or a folder above it
    ("build/**/*.csv", "build", True),  # ... or files inside it
    ("**/a.txt", "build/sub/a.txt", True),
    ("build/[ab].txt", "build/a.txt", True),
    ("build/?.txt", "build/a.txt", True),
    ("build/*.txt", "build/sub/a.txt", False),  # `*` stays inside one folder
    ("build/*.csv", "build/a.txt", False),
    ("buil", "build/a.txt", False),  # a prefix of a name is not a folder
    ("build/a.txt.bak", "build/a.txt", False),
    ("other/a.txt", "build/a.txt", False),
])
def test_edges_from_deps(tmp_path: Path, dep: str, out: str, edge: bool) -> None:
    upstream = _edges(tmp_path, f"""\
stages:
  make: {{cmd: x, outs: {{o: '{out}'}}}}
  use: {{cmd: x, deps: ['{dep}']}}
""")
    assert upstream["use"] == (["make"] if edge else [])


def test_several_ways_to_the_same_stage_make_one_edge(tmp_path: Path) -> None:
    assert _edges(tmp_path, """\
stages:
  a: {cmd: x, outs: {o: out/a.txt, p: out/b.txt}}
  b:
    cmd: cat ${stages.a.outs.o}
    inputs: [stages.a.outs.p]
    deps: [out, 'out/*.txt']
""")["b"] == ["a"]


def test_topological_order_keeps_file_order_among_ties(tmp_path: Path) -> None:
    _, graph = load_graph(tmp_path, """\
stages:
  report: {cmd: x, deps: [model.pkl, metrics.json]}
  lint: {cmd: x}
  train: {cmd: x, deps: [features.csv], outs: {m: model.pkl}}
  features: {cmd: x, outs: {t: features.csv}}
  tests: {cmd: x}
  evaluate: {cmd: x, deps: [model.pkl], outs: {m: metrics.json}}
""")
    assert graph.order == ["lint", "features", "train", "tests", "evaluate", "report"]


def test_independent_stages_run_in_file_order(tmp_path: Path) -> None:
    names = ["zeta", "alpha", "mid", "beta"]
    yaml = "stages:\n" + "".join(f"  {n}: {{cmd: x}}\n" for n in names)
    assert load_graph(tmp_path, yaml)[1].order == names


DIAMOND = """\
stages:
  raw: {cmd: x, outs: {o: raw.csv}}
  left: {cmd: x, deps: [raw.csv], outs: {o: left.csv}}
  right: {cmd: x, deps: [raw.csv], outs: {o: right.csv}}
  join: {cmd: x, deps: [left.csv, right.csv], outs: {o: join.csv}}
  other: {cmd: x}
  tail: {cmd: x, deps: [join.csv]}
"""


def test_diamond_neighbours(tmp_path: Path) -> None:
    _, graph = load_graph(tmp_path, DIAMOND)
    assert graph.order == ["raw", "left", "right", "join", "other", "tail"]
    assert graph.upstream["join"] == ["left", "right"]
    assert graph.downstream["raw"] == ["left", "right"]
    assert graph.downstream["tail"] == [] and graph.upstream["other"] == []


@pytest.mark.parametrize(("targets", "expected"), [
    (["join"], ["raw", "left", "right", "join"]),
    (["left"], ["raw", "left"]),
    (["tail", "other"], ["raw", "left", "right", "join", "other", "tail"]),
    (["raw"], ["raw"]),
    ([], []),
])
def test_with_upstream(tmp_path: Path, targets: list[str], expected: list[str]) -> None:
    assert load_graph(tmp_path, DIAMOND)[1].with_upstream(targets) == expected


@pytest.mark.parametrize(("sources", "expected"), [
    (["raw"], ["raw", "left", "right", "join", "tail"]),
    (["right"], ["right", "join", "tail"]),
    (["tail"], ["tail"]),
    (["other", "left"], ["left", "join", "other", "tail"]),
])
def test_with_downstream(tmp_path: Path, sources: list[str], expected: list[str]) -> None:
    assert load_graph(tmp_path, DIAMOND)[1].with_downstream(sources) == expected


def test_long_chain_is_fast_and_ordered(tmp_path: Path) -> None:
    n = 300
    yaml = "stages:\n" + "".join(
        f"  s{i}: {{cmd: x, outs: {{o: o{i}.txt}}"
        + (f", deps: [o{i - 1}.txt]" if i else "") + "}\n" for i in reversed(range(n)))
    _, graph = load_graph(tmp_path, yaml)
    assert graph.order == [f"s{i}" for i in range(n)]
    assert graph.with_downstream(["s0"]) == graph.order


def test_output_index_matching(tmp_path: Path) -> None:
    cfg = load(tmp_path, """\
stages:
  a: {cmd: x, outs: {o: out/a, p: out/p.csv}}
  b: {cmd: x, outs: {o: outside.csv, q: out2/q.csv}}
""")
    index = OutputIndex(cfg)
    assert index.problems == []

    def matching(dep: str) -> list[str]:
        return sorted(p.path for p in index.matching(dep))

    assert matching("out") == ["out/a", "out/p.csv"]
    assert matching("out/a/deep/file") == ["out/a"]
    assert matching("out/*.csv") == ["out/p.csv"]
    assert matching("*.csv") == ["outside.csv"]
    # the output folder `out/a` may hold CSV files too
    assert matching("**/*.csv") == ["out/a", "out/p.csv", "out2/q.csv", "outside.csv"]
    assert matching("ou") == []


@pytest.mark.parametrize(("pattern", "path", "touches"), [
    ("a/*.csv", "a/x.csv", True),
    ("a/*.csv", "a/b/x.csv", False),
    ("a/*", "a/b/x.csv", True),  # matches the folder `a/b` above the path
    ("a/**/x.csv", "a/x.csv", True),
    ("a/**/x.csv", "a/b/c/x.csv", True),
    ("a/**", "a/b/c", True),
    ("a/**/*.csv", "a", True),  # files below the path may match
    ("a/**/*.csv", "b", False),
    ("*/x", "a", True),
    ("?", "ab", False),
])
def test_glob_touches(pattern: str, path: str, touches: bool) -> None:
    assert glob_touches(pattern, path) is touches
