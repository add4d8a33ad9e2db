"""Stage fingerprints: what changes them, what does not, and how a change is described."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from sluice.config.load import load_config
from sluice.pipeline.fingerprint import (
    FINGERPRINT_VERSION,
    MissingDependency,
    RunContext,
    describe_changes,
    fingerprint_of,
    render_command,
    render_env,
    stage_components,
    stage_environment,
)
from sluice.util.hashing import hash_bytes
from sluice.workspace.graph import build_graph
from sluice.workspace.project import Project
from tests.unit._util import write_project

BASE = """\
datasets:
  raw: data/raw.csv
stages:
  prep:
    cmd: cp ${datasets.raw} ${outs.table}
    outs: {table: build/table.csv}
  train:
    cmd: train --lr ${params.train.lr} --in ${stages.prep.outs.table} --out ${outs.model}
    deps: [src/model.txt, 'conf/*.cfg']
    params: [train.epochs]
    env: {MODE: fast}
    outs: {model: build/model.bin}
"""
FILES = {
    "data/raw.csv": "a,b\n1,2\n",
    "build/table.csv": "a,b\n1,2\n",
    "src/model.txt": "layers=3\n",
    "conf/a.cfg": "x=1\n",
    "conf/b.cfg": "y=2\n",
    "params.yaml": "train:\n  lr: 0.1\n  epochs: 3\nunrelated: 1\n",
}


def _project(root: Path, config: str = BASE, files: dict[str, str] | None = None,
             edits: dict[str, str] | None = None) -> Project:
    write_project(root, config, {**FILES, **(files or {}), **(edits or {})})
    cfg = load_config(root)
    return Project(root=root, config=cfg, graph=build_graph(cfg))


def _components(project: Project, stage: str = "train",
                ctx: RunContext | None = None) -> dict[str, Any]:
    return stage_components(project, project.config.stages[stage], ctx or RunContext())


def _fingerprint(root: Path, stage: str = "train", ctx: RunContext | None = None,
                 **kwargs: Any) -> str:
    return fingerprint_of(_components(_project(root, **kwargs), stage, ctx))


def test_components(tmp_path: Path) -> None:
    parts = _components(_project(tmp_path))
    assert parts["version"] == FINGERPRINT_VERSION
    assert parts["cmd"] == ("train --lr 0.1 --in build/table.csv --out build/model.bin")
    assert parts["env"] == {"MODE": "fast"}
    # Declared keys, and keys the command interpolates.
    assert parts["params"] == {"train.epochs": 3, "train.lr": 0.1}
    assert parts["deps"]["src/model.txt"] == hash_bytes(b"layers=3\n")
    assert parts["deps"]["conf/*.cfg"].endswith(".dir")
    assert parts["inputs"] == {"stages.prep.outs.table": hash_bytes(b"a,b\n1,2\n")}
    assert parts["outs"] == {"model": "build/model.bin"}
    assert parts["tier"] == {"fraction": 1.0, "seed": 0}


def test_fingerprint_is_stable(tmp_path: Path) -> None:
    assert _fingerprint(tmp_path / "a") == _fingerprint(tmp_path / "b")
    project = _project(tmp_path / "c")
    assert fingerprint_of(_components(project)) == fingerprint_of(_components(project))
    assert len(fingerprint_of(_components(project))) == 32


CHANGES: dict[str, dict[str, Any]] = {
    "cmd": {"config": BASE.replace("train --lr", "train --verbose --lr")},
    "declared params value": {"edits": {"params.yaml": "train:\n  lr: 0.1\n  epochs: 4\n"
                                                       "unrelated: 1\n"}},
    "params value in cmd": {"edits": {"params.yaml": "train:\n  lr: 0.2\n  epochs: 3\n"
                                                     "unrelated: 1\n"}},
    "dep content": {"edits": {"src/model.txt": "layers=4\n"}},
    "glob dep content": {"edits": {"conf/b.cfg": "y=3\n"}},
    "glob dep added": {"edits": {"conf/c.cfg": ""}},
    "input content": {"edits": {"build/table.csv": "a,b\n1,3\n"}},
    "env": {"config": BASE.replace("MODE: fast", "MODE: slow")},
    "env added": {"config": BASE.replace("MODE: fast", "MODE: fast, EXTRA: '1'")},
    "outs path": {"config": BASE.replace("build/model.bin", "build/model2.bin")},
    "outs name": {"config": BASE.replace("{model: build", "{weights: build")
                  .replace("${outs.model}", "${outs.weights}")},
    "deps list": {"config": BASE.replace("'conf/*.cfg'", "'conf/*.cfg', data/raw.csv")},
    "fraction of a train stage": {"ctx": RunContext(fraction=0.02), "config": BASE.replace(
        "    deps:", "    kind: train\n    deps:")},
    "seed of a train stage": {"ctx": RunContext(seed=7), "config": BASE.replace(
        "    deps:", "    kind: train\n    deps:")},
}


@pytest.mark.parametrize("what", list(CHANGES))
def test_fingerprint_changes_with(tmp_path: Path, what: str) -> None:
    assert _fingerprint(tmp_path / "after", **CHANGES[what]) != _fingerprint(tmp_path / "before")


UNCHANGED: dict[str, dict[str, Any]] = {
    "unrelated params key": {"edits": {"params.yaml": "train:\n  lr: 0.1\n  epochs: 3\n"
                                                      "unrelated: 2\nnew: x\n"}},
    "undeclared params key of the same section": {
        "edits": {"params.yaml": "train:\n  lr: 0.1\n  epochs: 3\n  batch: 9\nunrelated: 1\n"}},
    "unmatched file next to a glob": {"edits": {"conf/readme.md": "hi"}},
    "unrelated file": {"edits": {"notes.txt": "hi"}},
    "tier name": {"ctx": RunContext(tier="merge")},
    # Seeds separate training runs; a data step is shared between seeds.
    "seed of a transform stage": {"ctx": RunContext(seed=7)},
    "fraction of a transform stage": {"ctx": RunContext(fraction=0.02)},
    "order of deps": {"config": BASE.replace("[src/model.txt, 'conf/*.cfg']",
                                             "['conf/*.cfg', src/model.txt]")},
    "description and kind": {"config": BASE.replace(
        "    deps:", "    description: trains\n    kind: train\n    deps:")},
    "resources and timeout": {"config": BASE.replace(
        "    deps:", "    resources: {cpus: 2}\n    timeout: 1h\n    deps:")},
    "other stage's command": {"config": BASE.replace("cp ${", "cp -p ${")},
}


@pytest.mark.parametrize("what", list(UNCHANGED))
def test_fingerprint_unchanged_by(tmp_path: Path, what: str) -> None:
    assert _fingerprint(tmp_path / "after", **UNCHANGED[what]) == _fingerprint(tmp_path / "before")


def test_tier_values_in_cmd_change_the_fingerprint(tmp_path: Path) -> None:
    config = BASE.replace("--out ${outs.model}", "--out ${outs.model} --tier ${tier.name}")
    assert _fingerprint(tmp_path / "a", config=config, ctx=RunContext(tier="pr")) != \
        _fingerprint(tmp_path / "b", config=config, ctx=RunContext(tier="merge"))


def test_known_outputs_stand_in_for_missing_files(tmp_path: Path) -> None:
    project = _project(tmp_path)
    (tmp_path / "build" / "table.csv").unlink()
    known = {"build/table.csv": "0" * 32}
    parts = stage_components(project, project.config.stages["train"], RunContext(), known)
    assert parts["inputs"] == {"stages.prep.outs.table": "0" * 32}


@pytest.mark.parametrize(("missing", "message"), [
    ("src/model.txt", "dependency `src/model.txt` of stage `train` does not exist"),
    ("build/table.csv", "input `build/table.csv` of stage `train` does not exist"),
])
def test_missing_dependency(tmp_path: Path, missing: str, message: str) -> None:
    project = _project(tmp_path)
    (tmp_path / missing).unlink()
    with pytest.raises(MissingDependency) as info:
        _components(project)
    assert info.value.message == message
    assert info.value.hint


def test_glob_matching_nothing_is_not_missing(tmp_path: Path) -> None:
    project = _project(tmp_path)
    for name in ("a.cfg", "b.cfg"):
        (tmp_path / "conf" / name).unlink()
    assert _components(project)["deps"]["conf/*.cfg"] == hash_bytes(b"[]") + ".dir"


def test_render_command_and_env(tmp_path: Path) -> None:
    config = """\
datasets: {raw: ./data/my raw.csv}
stages:
  a:
    cmd: run ${datasets.raw} ${tier.fraction} ${tier.seed} ${tier.name} ${params.opt}
    env: {WHERE: "${datasets.raw}", FRACTION: "${tier.fraction}", OPT: "${params.opt}"}
    outs: {o: o.txt}
"""
    project = _project(tmp_path, config, {"data/my raw.csv": "x",
                                          "params.yaml": "opt: {b: 1, a: true}\n"})
    stage = project.config.stages["a"]
    ctx = RunContext(tier="pr", fraction=0.02, seed=3)
    assert render_command(project.config, stage, ctx) == \
        "run 'data/my raw.csv' 0.02 3 pr '{\"a\":true,\"b\":1}'"
    assert render_env(project.config, stage, ctx) == {
        "WHERE": "data/my raw.csv", "FRACTION": "0.02", "OPT": '{"a":true,"b":1}'}


def test_stage_environment(tmp_path: Path) -> None:
    config = """\
stages:
  a:
    kind: train
    cmd: x
    env: {EXTRA: "seed-${tier.seed}"}
    outs: {model: build/model.pkl, eval-report: build/report.json}
"""
    project = _project(tmp_path, config, {})
    env = stage_environment(project.config, project.config.stages["a"],
                            RunContext(tier="pr", fraction=0.05, seed=11), "run-123")
    assert env == {
        "SLUICE_TIER": "pr",
        "SLUICE_FRACTION": "0.05",
        "SLUICE_SEED": "11",
        "SLUICE_STAGE": "a",
        "SLUICE_RUN_ID": "run-123",
        "SLUICE_OUTS": json.dumps({"eval-report": "build/report.json",
                                   "model": "build/model.pkl"}, sort_keys=True),
        "SLUICE_OUT_MODEL": "build/model.pkl",
        "SLUICE_OUT_EVAL_REPORT": "build/report.json",
        "SLUICE_PYTHON": sys.executable,
        "EXTRA": "seed-11",
    }
    assert json.loads(env["SLUICE_OUTS"]) == project.config.stages["a"].outs


def _parts(**overrides: Any) -> dict[str, Any]:
    parts: dict[str, Any] = {
        "version": FINGERPRINT_VERSION, "template": "run", "cmd": "run", "env": {},
        "params": {"lr": 0.1},
        "deps": {"src/a.py": "h1"}, "inputs": {"datasets.raw": "h2"},
        "outs": {"m": "m.pkl"}, "tier": {"fraction": 1.0, "seed": 0},
    }
    parts.update(overrides)
    return parts


@pytest.mark.parametrize(("new", "reasons"), [
    (_parts(template="run --fast", cmd="run --fast"), ["command changed in sluice.yaml"]),
    (_parts(cmd="run --fast"), ["a value interpolated into the command changed"]),
    (_parts(deps={"src/a.py": "h9"}), ["dependency `src/a.py` changed"]),
    (_parts(deps={"src/a.py": "h1", "src/b.py": "h3"}), ["dependency `src/b.py` added"]),
    (_parts(deps={}), ["dependency `src/a.py` removed"]),
    (_parts(inputs={"datasets.raw": "h0"}), ["input `datasets.raw` changed"]),
    (_parts(inputs={}), ["input `datasets.raw` removed"]),
    (_parts(params={"lr": 0.2}), ["params lr 0.1 → 0.2"]),
    (_parts(params={"lr": {"a": 1, "b": 2}}), ["params lr 0.1 → {\"a\":1,\"b\":2}"]),
    (_parts(params={"lr": 0.1, "flag": True}), ["params key `flag` added"]),
    (_parts(params={}), ["params key `lr` removed"]),
    (_parts(env={"A": "1"}), ["environment settings changed"]),
    (_parts(outs={"m": "model.pkl"}), ["outputs changed"]),
    (_parts(tier={"fraction": 0.02, "seed": 0}), ["tier fraction or seed changed"]),
    (_parts(version=FINGERPRINT_VERSION + 1), ["sluice's fingerprint format changed"]),
    (_parts(), ["fingerprint changed"]),
    (_parts(template="x", cmd="x", params={"lr": [1, 2]}, deps={}),
     ["command changed in sluice.yaml", "dependency `src/a.py` removed",
      "params lr 0.1 → [1,2]"]),
])
def test_describe_changes(new: dict[str, Any], reasons: list[str]) -> None:
    assert describe_changes(_parts(), new) == reasons


def test_describe_changes_from_a_partial_old_record() -> None:
    assert describe_changes({}, _parts()) == [
        "command changed in sluice.yaml", "dependency `src/a.py` added",
        "input `datasets.raw` added",
        "params key `lr` added", "environment settings changed", "outputs changed",
        "tier fraction or seed changed", "sluice's fingerprint format changed"]


def test_real_change_is_described(tmp_path: Path) -> None:
    before = _components(_project(tmp_path / "a"))
    after = _components(_project(tmp_path / "b", edits={
        "src/model.txt": "layers=4\n",
        "params.yaml": "train:\n  lr: 0.1\n  epochs: 5\nunrelated: 1\n"}))
    assert describe_changes(before, after) == [
        "dependency `src/model.txt` changed", "params train.epochs 3 → 5"]


def test_nested_params_change_names_the_leaf() -> None:
    old = _parts(params={"gbm": {"lr": 0.1, "depth": 3}})
    new = _parts(params={"gbm": {"lr": 0.05, "depth": 3, "extra": 1}})
    assert describe_changes(old, new) == ["params gbm.extra added (1)",
                                          "params gbm.lr 0.1 → 0.05"]


def test_data_steps_see_neutral_fraction_and_seed(tmp_path: Path) -> None:
    """Only train/evaluate stages see the tier's fraction and seed, so data steps are
    shared between a smoke run and a full run."""
    config = "stages:\n  prep:\n    cmd: x\n    outs: {o: o.txt}\n"
    project = _project(tmp_path, config, {})
    env = stage_environment(project.config, project.config.stages["prep"],
                            RunContext(tier="pr", fraction=0.05, seed=11), "run-1")
    assert (env["SLUICE_FRACTION"], env["SLUICE_SEED"], env["SLUICE_TIER"]) == ("1.0", "0", "pr")
