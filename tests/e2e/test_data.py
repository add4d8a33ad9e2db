"""End-to-end: `sluice data add/status/checkout/push/pull` in a real git repo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import git, sluice
from tests.e2e.pipelines import write_project


@pytest.fixture
def project(repo: Path) -> Path:
    (repo / "sluice.yaml").write_text(
        "datasets:\n  events: data/events\nstages:\n  count:\n"
        "    cmd: ls ${datasets.events} | wc -l > ${outs.n}\n"
        "    inputs: [datasets.events]\n    outs: {n: build/n.txt}\n")
    events = repo / "data/events"
    events.mkdir(parents=True)
    for i in range(5):
        (events / f"part {i}.csv").write_text(f"{i}\n" * (i + 1))
    (repo / "data/labels.bin").write_bytes(bytes(range(256)))
    return repo


def _status(repo: Path, check: int = 0) -> dict[str, str]:
    result = sluice(repo, "data", "status", "--json", check=check)
    return {item["path"]: item["state"] for item in json.loads(result.stdout)}


def test_add_pins_stores_and_ignores(project: Path) -> None:
    out = sluice(project, "data", "add", "data/events", "data/labels.bin").stdout
    assert "pinned data/events: 5 file(s)" in out
    lock = (project / "sluice.lock").read_text()
    assert "data/events:" in lock and ".dir" in lock and "data/labels.bin:" in lock
    assert (project / ".gitignore").read_text().splitlines() == ["/data/events",
                                                                 "/data/labels.bin"]
    git(project, "add", "-A")
    tracked = git(project, "ls-files").split()
    assert "sluice.lock" in tracked and not any(p.startswith("data/") for p in tracked)
    assert _status(project) == {"data/events": "unchanged", "data/labels.bin": "unchanged"}


def test_status_reports_modified_and_missing_with_exit_1(project: Path) -> None:
    sluice(project, "data", "add", "data/events", "data/labels.bin")
    (project / "data/events/part 0.csv").write_text("changed\n")
    (project / "data/labels.bin").unlink()
    assert _status(project, check=1) == {"data/events": "modified", "data/labels.bin": "missing"}


def test_checkout_restores_and_records_stat_cache(project: Path) -> None:
    sluice(project, "data", "add", "data/events")
    (project / "data/events/part 1.csv").write_text("edited\n")
    (project / "data/events/extra.csv").write_text("stray\n")
    assert "restored data/events" in sluice(project, "data", "checkout").stdout
    assert (project / "data/events/part 1.csv").read_text() == "1\n1\n"
    assert not (project / "data/events/extra.csv").exists()
    assert "already matches" in sluice(project, "data", "checkout").stdout
    # Restored files are trusted by the stat cache: status re-reads nothing.
    from sluice.util.hashing import Hasher
    from sluice.util.statcache import StatCache

    cache = StatCache(project / ".sluice/stat-index")
    hasher = Hasher(cache)
    reads = 0
    import sluice.util.hashing as hashing

    original = hashing.hash_file_uncached

    def counting(path: Path | str) -> str:
        nonlocal reads
        reads += 1
        return original(path)

    hashing.hash_file_uncached = counting
    try:
        for path in sorted((project / "data/events").iterdir()):
            hasher.file(path)
    finally:
        hashing.hash_file_uncached = original
    assert reads == 0


def test_git_checkout_of_an_older_lock_then_data_checkout(project: Path) -> None:
    sluice(project, "data", "add", "data/events")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "v1")
    (project / "data/events/part 5.csv").write_text("new\n")
    sluice(project, "data", "add", "data/events")
    git(project, "commit", "-q", "-am", "v2")
    git(project, "checkout", "-q", "HEAD~1")
    assert _status(project, check=1) == {"data/events": "modified"}
    sluice(project, "data", "checkout")
    assert not (project / "data/events/part 5.csv").exists()
    assert _status(project) == {"data/events": "unchanged"}


def test_push_pull_to_a_shared_folder(project: Path, tmp_path: Path) -> None:
    remote = tmp_path / "team-store"
    sluice(project, "data", "add", "data/events")
    assert "6 object(s) copied" in sluice(project, "data", "push", "--remote",
                                          str(remote)).stdout
    assert "0 object(s) copied" in sluice(project, "data", "push", "--remote",
                                          str(remote)).stdout
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "pin")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(project), str(clone))
    missing = sluice(clone, "data", "checkout", check=1)
    assert "is not in the store" in missing.stderr and "sluice data pull" in missing.stderr
    (clone / "sluice.yaml").write_text(
        (clone / "sluice.yaml").read_text() + f"remote: {remote}\n")
    sluice(clone, "data", "pull")
    sluice(clone, "data", "checkout")
    assert (clone / "data/events/part 4.csv").read_text() == "4\n" * 5
    run = json.loads(sluice(clone, "run", "--json").stdout)
    assert run["stages"][0]["status"] == "ran"


def test_add_refuses_stage_outputs_and_missing_paths(project: Path) -> None:
    assert "does not exist" in sluice(project, "data", "add", "nope", check=2).stderr
    sluice(project, "run")
    result = sluice(project, "data", "add", "build/n.txt", check=2)
    assert "is output `n` of stage `count`" in result.stderr


def test_push_without_remote_says_how_to_configure(project: Path) -> None:
    sluice(project, "data", "add", "data/events")
    result = sluice(project, "data", "push", check=2)
    assert "no remote store configured" in result.stderr and "remote:" in result.stderr


def test_corrupt_lock_file_names_file_and_line(project: Path) -> None:
    (project / "sluice.lock").write_text("version: 1\ndata:\n  data/events: {size: 3}\n")
    result = sluice(project, "data", "status", check=2)
    assert "entry `data/events` in sluice.lock has no `hash`" in result.stderr
    assert "(sluice.lock:3:" in result.stderr


def test_stage_outputs_are_git_ignored_when_first_written(repo: Path) -> None:
    write_project(repo, """\
stages:
  make:
    cmd: python make.py
    outs: {table: table.csv}
""", files={"make.py": "open('table.csv', 'w').write('a,b\\n')\n"})
    sluice(repo, "run")
    assert "/table.csv" in (repo / ".gitignore").read_text().splitlines()
    changed = git(repo, "status", "--porcelain").split("\n")
    assert not any("table.csv" in line for line in changed)
