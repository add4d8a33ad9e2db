"""End-to-end: `sluice params diff` between revisions of a real git repository."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import git, sluice
from tests.e2e.pipelines import write_project

CONFIG = """\
params: params.yaml
stages:
  prepare:
    cmd: python -c "pass"
    params: [data]
  train:
    cmd: python -c "pass" ${params.train.lr}
"""


def test_params_diff_names_each_changed_leaf_and_its_readers(repo: Path) -> None:
    write_project(repo, CONFIG, files={
        "params.yaml": "data: {rows: 100}\ntrain: {lr: 0.1, depth: 3}\nunused: 1\n"})
    first = git(repo, "rev-parse", "HEAD").strip()
    (repo / "params.yaml").write_text(
        "data: {rows: 200}\ntrain: {lr: 0.05}\nunused: 1\nnew: {k: [1, 2]}\n")

    worktree = json.loads(sluice(repo, "params", "diff", "--json").stdout)
    assert worktree["new"] == "the working tree" and worktree["params_file"] == "params.yaml"
    assert worktree["params"] == [
        {"key": "data.rows", "state": "modified", "old": 100, "new": 200,
         "stages": ["prepare"]},
        {"key": "new.k", "state": "added", "old": None, "new": [1, 2], "stages": []},
        {"key": "train.depth", "state": "removed", "old": 3, "new": None, "stages": []},
        {"key": "train.lr", "state": "modified", "old": 0.1, "new": 0.05,
         "stages": ["train"]},
    ]
    text = sluice(repo, "params", "diff").stdout
    assert "train.lr" in text and "0.1 → 0.05" in text and "(read by train)" in text
    assert "unused" not in text and "4 of 5 params changed" in text
    assert "unused" in sluice(repo, "params", "diff", "--all").stdout

    git(repo, "commit", "-qam", "new params")
    between = json.loads(sluice(repo, "params", "diff", first, "HEAD", "--json").stdout)
    assert [p["key"] for p in between["params"]] == ["data.rows", "new.k", "train.depth",
                                                     "train.lr"]
    assert "no params changed" in sluice(repo, "params", "diff").stdout


def test_params_diff_of_an_unknown_revision_is_a_usage_error(repo: Path) -> None:
    write_project(repo, CONFIG, files={"params.yaml": "data: {rows: 1}\ntrain: {lr: 1}\n"})
    bad = sluice(repo, "params", "diff", "no-such-rev", check=2)
    assert "no-such-rev" in bad.stderr and "Traceback" not in bad.stderr
