"""The .gitignore lines sluice keeps for pinned data and stage outputs."""

from __future__ import annotations

import threading
from pathlib import Path

from sluice.workspace.gitignore import ensure_ignored
from tests.conftest import git


def _repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    return root


def test_each_path_is_listed_once_and_anchored(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    (root / ".gitignore").write_text(".sluice/")  # no final newline: kept intact
    assert ensure_ignored(root, ["out/model.pkl", "metrics.json"], tmp_path / "locks") == [
        "metrics.json", "out/model.pkl"]
    assert ensure_ignored(root, ["metrics.json"], tmp_path / "locks") == []
    assert (root / ".gitignore").read_text() == ".sluice/\n/metrics.json\n/out/model.pkl\n"
    (root / "metrics.json").write_text("{}")
    assert git(root, "status", "--porcelain").strip() == "?? .gitignore"


def test_paths_a_pattern_ignores_or_git_tracks_are_left_alone(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    (root / ".gitignore").write_text("build/\n")
    (root / "report.json").write_text("{}")
    (root / "plots").mkdir()
    (root / "plots" / "roc.svg").write_text("<svg/>")
    git(root, "add", "report.json", "plots")
    assert ensure_ignored(root, ["build/model.pkl", "report.json", "plots"],
                          tmp_path / "locks") == []
    assert (root / ".gitignore").read_text() == "build/\n"
    # `data add` of a committed file moves its content to the store: ignored even so
    assert ensure_ignored(root, ["report.json"], tmp_path / "locks",
                          unless_tracked=False) == ["report.json"]


def test_parallel_writers_lose_no_line(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    paths = [f"out/{i}.bin" for i in range(16)]
    threads = [threading.Thread(target=ensure_ignored, args=(root, [p], tmp_path / "locks"))
               for p in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = (root / ".gitignore").read_text().splitlines()
    assert sorted(lines) == sorted(f"/{p}" for p in paths)
