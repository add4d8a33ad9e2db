"""End-to-end: `sluice run` in real git repos, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import sluice
from tests.e2e.pipelines import write_project


def statuses(repo: Path, *args: str, check: int = 0) -> dict[str, str]:
    result = sluice(repo, "run", "--json", *args, check=check)
    return {s["stage"]: s["status"] for s in json.loads(result.stdout)["stages"]}


def test_first_run_runs_everything_and_writes_outputs(repo: Path) -> None:
    write_project(repo)
    assert statuses(repo) == {"prepare": "ran", "left": "ran", "right": "ran",
                              "join": "ran", "other": "ran"}
    assert (repo / "build/joined.txt").read_text().split() == ["2", "4", "6", "3", "6", "9"]
    assert (repo / ".sluice/logs/prepare.log").exists()


def test_noop_rerun_runs_nothing(repo: Path) -> None:
    write_project(repo)
    statuses(repo)
    assert set(statuses(repo).values()) == {"cached"}
    assert "all 5 stages up to date" in sluice(repo, "status").stdout


def test_changing_one_dep_reruns_only_downstream(repo: Path) -> None:
    write_project(repo)
    statuses(repo)
    (repo / "data/input.txt").write_text("1\n2\n3\n4\n")
    status = sluice(repo, "status").stdout
    assert "prepare: stale" in status and "dependency `data/input.txt` changed" in status
    assert "other" not in status
    assert statuses(repo) == {"prepare": "ran", "left": "ran", "right": "ran",
                              "join": "ran", "other": "cached"}


def test_changing_one_params_key_reruns_only_its_users(repo: Path) -> None:
    write_project(repo)
    statuses(repo)
    params = (repo / "params.yaml").read_text().replace("factor: 2", "factor: 5")
    (repo / "params.yaml").write_text(params)
    plan = sluice(repo, "plan").stdout
    assert "params left.factor 2 → 5" in plan
    assert statuses(repo) == {"prepare": "cached", "left": "ran", "right": "cached",
                              "join": "ran", "other": "cached"}
    # A key nobody declares changes nothing.
    (repo / "params.yaml").write_text(params.replace("unused: 1", "unused: 2"))
    assert set(statuses(repo).values()) == {"cached"}


def test_parent_params_key_covers_children(repo: Path) -> None:
    write_project(repo)
    statuses(repo)
    (repo / "params.yaml").write_text(
        (repo / "params.yaml").read_text().replace("factor: 3", "factor: 4\n  extra: x"))
    result = statuses(repo)
    assert result["right"] == "ran" and result["left"] == "cached"


def test_identical_upstream_output_leaves_downstream_cached(repo: Path) -> None:
    write_project(repo)
    statuses(repo)
    # A refactor of prepare.py that writes the same bytes.
    script = repo / "src/prepare.py"
    script.write_text(script.read_text() + "# refactored\n")
    assert statuses(repo) == {"prepare": "ran", "left": "cached", "right": "cached",
                              "join": "cached", "other": "cached"}


def test_deleted_outputs_are_restored_from_cache(repo: Path) -> None:
    write_project(repo)
    statuses(repo)
    (repo / "build/left.txt").unlink()
    (repo / "build/joined.txt").write_text("tampered")
    stages = json.loads(sluice(repo, "run", "--json").stdout)["stages"]
    restored = {s["stage"] for s in stages if s["restored"]}
    assert restored == {"left", "join"}
    assert {s["status"] for s in stages} == {"cached"}
    assert (repo / "build/joined.txt").read_text().split() == ["2", "4", "6", "3", "6", "9"]


def test_reverting_a_change_restores_the_earlier_result(repo: Path) -> None:
    write_project(repo)
    statuses(repo)
    original = (repo / "data/input.txt").read_text()
    (repo / "data/input.txt").write_text("7\n")
    statuses(repo)
    (repo / "data/input.txt").write_text(original)
    result = statuses(repo)
    assert result["prepare"] == "cached" and result["join"] == "cached"


def test_targets_run_only_their_upstream(repo: Path) -> None:
    write_project(repo)
    assert statuses(repo, "left") == {"prepare": "ran", "left": "ran"}
    assert not (repo / "build/right.txt").exists()


def test_force_reruns_even_when_cached(repo: Path) -> None:
    write_project(repo)
    statuses(repo)
    assert statuses(repo, "--force", "other") == {"other": "ran"}


def test_restored_file_is_a_private_copy(repo: Path) -> None:
    """Editing a restored output in place must not change the stored object."""
    write_project(repo)
    statuses(repo)
    (repo / "build/other.txt").unlink()
    statuses(repo)
    (repo / "build/other.txt").write_text("edited in place")
    assert statuses(repo, "other") == {"other": "cached"}
    assert (repo / "build/other.txt").read_text() == "independent\n"


def test_directory_outputs_are_cached_and_restored(repo: Path) -> None:
    write_project(repo, config="""\
stages:
  many:
    cmd: >-
      mkdir -p ${outs.folder}/sub && echo a > ${outs.folder}/a.txt
      && echo b > ${outs.folder}/sub/b.txt
    outs: {folder: build/many}
  count:
    cmd: ls -R ${stages.many.outs.folder} | wc -l > ${outs.n}
    outs: {n: build/count.txt}
""", files={})
    statuses(repo)
    (repo / "build/many/sub/b.txt").write_text("changed")
    (repo / "build/many/stray.txt").write_text("not ours")
    result = statuses(repo)
    assert result == {"many": "cached", "count": "cached"}
    assert (repo / "build/many/sub/b.txt").read_text() == "b\n"
    assert not (repo / "build/many/stray.txt").exists()


def test_dry_run_and_plan_change_nothing(repo: Path) -> None:
    write_project(repo)
    plan = json.loads(sluice(repo, "plan", "--json").stdout)
    assert [s["action"] for s in plan["stages"]] == ["run"] * 5
    assert plan["stages"][0]["reasons"] == ["never run here"]
    dry = sluice(repo, "run", "--dry-run").stdout
    assert "nothing will be executed" in dry
    assert not (repo / "build").exists()
