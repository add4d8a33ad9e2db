"""End-to-end: failing stages, timeouts, concurrent runs and kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import sluice
from tests.e2e.pipelines import write_project

FAILING = """\
stages:
  good:
    cmd: echo ok > ${outs.x}
    outs: {x: good.txt}
  bad:
    cmd: echo "something broke on line 3" >&2; exit 7
    outs: {x: bad.txt}
  after_bad:
    cmd: cat ${stages.bad.outs.x} > ${outs.y}
    outs: {y: after.txt}
  slow_independent:
    cmd: sleep 1; echo done > ${outs.z}
    outs: {z: slow.txt}
"""


def _statuses(stdout: str) -> dict[str, str]:
    return {s["stage"]: s["status"] for s in json.loads(stdout)["stages"]}


def test_failing_stage_stops_downstream_but_not_independent_stages(repo: Path) -> None:
    write_project(repo, FAILING, files={})
    result = sluice(repo, "run", "--json", "--jobs", "4", check=1)
    assert _statuses(result.stdout) == {"good": "ran", "bad": "failed", "after_bad": "skipped",
                                        "slow_independent": "ran"}
    bad = next(s for s in json.loads(result.stdout)["stages"] if s["stage"] == "bad")
    assert bad["reason"] == "command exited with code 7"
    assert bad["log_tail"] == ["something broke on line 3"]
    plain = sluice(repo, "run", check=1)
    assert "FAILED" in plain.stderr and "| something broke on line 3" in plain.stderr
    assert "upstream `bad` did not succeed" in plain.stderr


def test_fail_fast_stops_running_stages(repo: Path) -> None:
    config = FAILING.replace("sleep 1;", "sleep 30;")
    write_project(repo, config, files={})
    result = sluice(repo, "run", "--json", "--jobs", "4", "--fail-fast", check=1)
    status = _statuses(result.stdout)
    assert status["bad"] == "failed" and status["slow_independent"] == "cancelled"


def test_missing_output_is_a_failure(repo: Path) -> None:
    write_project(repo, "stages:\n  lazy:\n    cmd: 'true'\n    outs: {x: never.txt}\n",
                  files={})
    result = sluice(repo, "run", "--json", check=1)
    stage = json.loads(result.stdout)["stages"][0]
    assert stage["status"] == "failed"
    assert "did not create output `x` at `never.txt`" in stage["reason"]


def _alive_in_group(pgid_marker: str) -> list[int]:
    """PIDs (not zombies) whose command line contains the marker."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().split(") ", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if pgid_marker in cmdline and state != "Z" and int(entry.name) != os.getpid():
            alive.append(int(entry.name))
    return alive


def test_timeout_kills_children_and_grandchildren(repo: Path, tmp_path: Path) -> None:
    marker = f"sluice-timeout-marker-{os.getpid()}"
    script = repo / "spawn.py"
    # The stage starts a child that starts a grandchild; all ignore nothing and sleep.
    script.write_text(
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', 'import subprocess,sys,time; "
        f"subprocess.Popen([sys.executable, \"-c\", \"import time; time.sleep(60)\", "
        f"\"{marker}-grandchild\"]); time.sleep(60)', '{marker}-child'])\n"
        "time.sleep(60)\n")
    write_project(repo, f"stages:\n  hang:\n    cmd: {sys.executable} spawn.py {marker}\n"
                        "    timeout: 2s\n", files={})
    result = sluice(repo, "run", "--json", check=1)
    stage = json.loads(result.stdout)["stages"][0]
    assert stage["status"] == "timeout" and "2 s timeout" in stage["reason"]
    deadline = time.monotonic() + 30
    while _alive_in_group(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _alive_in_group(marker) == []


def test_two_concurrent_runs_both_succeed_and_run_each_stage_once(repo: Path) -> None:
    config = """\
stages:
  slow:
    cmd: echo run >> ../runs.log; sleep 2; echo slow > ${outs.x}
    outs: {x: slow.txt}
  after:
    cmd: echo run-after >> ../runs.log; cat ${stages.slow.outs.x} > ${outs.y}
    outs: {y: after.txt}
"""
    write_project(repo, config, files={})
    env = {**os.environ}
    procs = [subprocess.Popen([sys.executable, "-m", "sluice", "run", "--json"], cwd=repo,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for _ in range(2)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    runs = (repo.parent / "runs.log").read_text().split()
    assert runs.count("run") == 1 and runs.count("run-after") == 1
    all_statuses = [_statuses(out) for out, _ in outputs]
    assert sorted(s["slow"] for s in all_statuses) == ["cached", "ran"]
    assert (repo / "after.txt").read_text() == "slow\n"


@pytest.mark.slow
def test_kill_9_during_a_run_then_rerun_completes(repo: Path) -> None:
    big = "python3 -c \"import os; open('${outs.x}', 'wb').write(os.urandom(50_000_000))\""
    config = f"""\
stages:
  big:
    cmd: {big.replace('${outs.x}', 'big.bin')}
    outs: {{x: big.bin}}
  slow:
    cmd: sleep 0.5; cat ${{stages.big.outs.x}} > ${{outs.y}}
    outs: {{y: copy.bin}}
"""
    write_project(repo, config, files={})
    for delay in (0.3, 0.6, 0.9, 1.2, 1.6):
        proc = subprocess.Popen([sys.executable, "-m", "sluice", "run", "--force"], cwd=repo,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    sluice(repo, "run")
    again = sluice(repo, "run", "--json")
    assert set(_statuses(again.stdout).values()) == {"cached"}
    assert (repo / "copy.bin").read_bytes() == (repo / "big.bin").read_bytes()
    _assert_store_consistent(repo)


def _assert_store_consistent(repo: Path) -> None:
    """Every stored object matches its name, and every run record's objects exist."""
    from sluice.util.hashing import hash_file_uncached

    objects = repo / ".sluice/cache/objects"
    for path in objects.rglob("*"):
        if path.is_file() and not path.name.endswith(".dir"):
            assert hash_file_uncached(path) == path.parent.name + path.name, path
    for record_path in (repo / ".sluice/cache/runs").rglob("*.json"):
        record = json.loads(record_path.read_text())
        for item in record["outs"].values():
            digest = item["hash"]
            assert (objects / digest[:2] / digest[2:]).is_file()
