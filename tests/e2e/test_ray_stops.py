"""Ray jobs stopped from outside the stage, through the real CLI on a real cluster.

Ctrl-C stops the running Ray job and sluice exits 130; a tier budget stops it and the
stage is reported as `budget`; a cluster that goes away mid-run fails its stage with
the reason, skips what depends on it, and caches nothing. The last case starts its
own single-node cluster (the session's one must live on for the other tests).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import allowed_ray_cluster, git, sluice
from tests.e2e import test_ray as ray_tests
from tests.e2e.test_ray import _last_run
from tests.processes import wait_for

pytestmark = pytest.mark.slow

CONFIG = """\
storage: {cache: "file://STORE"}
executors:
  gpu: {type: ray, retries: 0}
stages:
  sleepy:
    executor: gpu
    cmd: sleep 300
    outs: {x: build/sleepy.txt}
  after:
    cmd: cat build/sleepy.txt
    inputs: [stages.sleepy.outs.x]
tiers:
  capped: {select: [sleepy], budget: {wall: 5s}}
"""


def _project(repo: Path, store: Path) -> None:
    (repo / "sluice.yaml").write_text(CONFIG.replace("STORE", str(store)))
    (repo / ".gitignore").write_text("build/\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "project")


def _jobs(repo: Path) -> list[tuple[str, str, str]]:
    try:
        return ray_tests._jobs(repo)
    except sqlite3.Error:  # the database is not made yet
        return []


def _status(address: str, job_id: str) -> str:
    from ray.job_submission import JobSubmissionClient

    try:
        return str(JobSubmissionClient(address).get_job_status(job_id)).rsplit(".", 1)[-1]
    except RuntimeError as exc:  # recorded before it is submitted: not there yet
        if "does not exist" in str(exc):
            return ""
        raise


def _start(repo: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    return subprocess.Popen([sys.executable, "-m", "sluice", "run", *args], cwd=repo,
                            env={**os.environ, "PATH": path, **env}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _running_job(repo: Path, address: str, proc: subprocess.Popen[str]) -> str:
    """The id of the Ray job of `sleepy` once it runs on the cluster."""
    def recorded() -> bool:
        assert proc.poll() is None, proc.communicate()[0]
        return any(j[1] == "sleepy" for j in _jobs(repo))

    wait_for(recorded, 180, "for the Ray job to be recorded")
    [job_id] = [j[0] for j in _jobs(repo) if j[1] == "sleepy"]
    wait_for(lambda: _status(address, job_id) == "RUNNING", 180, "for the Ray job to run")
    return job_id


def test_ctrl_c_and_a_budget_stop_the_ray_job(tmp_path: Path, repo: Path,
                                              ray_cluster: Any) -> None:
    _project(repo, tmp_path / "store")
    env = {"SLUICE_RAY_ADDRESS": ray_cluster.address}

    # Ctrl-C: the job is stopped on the cluster, sluice exits 130.
    proc = _start(repo, env, "sleepy")
    try:
        job_id = _running_job(repo, ray_cluster.address, proc)
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output
    assert _status(ray_cluster.address, job_id) == "STOPPED"
    assert [j[2] for j in _jobs(repo) if j[0] == job_id] == ["stopped"]

    # A tier budget: the job is stopped when the budget is spent; the stage says why.
    result = sluice(repo, "run", "--tier", "capped", env=env, check=None, timeout=600)
    assert result.returncode == 3, result.stdout + result.stderr
    stage = _last_run(repo)["sleepy"]
    assert stage["status"] == "budget" and "budget" in stage["reason"], stage
    [(budget_job, _, state)] = [j for j in _jobs(repo) if j[1] == "sleepy" and j[0] != job_id]
    assert state == "ended"
    wait_for(lambda: _status(ray_cluster.address, budget_job) == "STOPPED", 60,
             "for the Ray job over budget to stop")


@pytest.fixture(scope="module")
def lone_cluster() -> Iterator[Any]:
    """A single-node cluster of its own, to be killed: set up before the write guard of
    the test (like the session's cluster), so that its temp dir is allowed."""
    with allowed_ray_cluster(workers=0) as cluster:
        yield cluster


def test_the_cluster_going_away_fails_the_stage(tmp_path: Path, repo: Path,
                                                lone_cluster: Any) -> None:
    store = tmp_path / "store"
    _project(repo, store)
    env = {"SLUICE_RAY_ADDRESS": lone_cluster.address}
    proc = _start(repo, env, "after")
    try:
        _running_job(repo, lone_cluster.address, proc)
        lone_cluster.stop(remove=False)  # its files go when the fixture ends
        output = proc.communicate(timeout=180)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, output
    run = _last_run(repo)
    assert run["sleepy"]["status"] == "failed", run
    assert "Ray cluster" in run["sleepy"]["reason"], run["sleepy"]
    assert run["after"]["status"] == "skipped"
    assert "upstream `sleepy`" in run["after"]["reason"]
    assert not list((store / "runs").rglob("*.json")), "a failed stage was cached"
    assert not (repo / ".sluice" / "stages" / "sleepy.json").exists()
