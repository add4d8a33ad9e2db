"""Stages on a real Ray cluster through the CLI (the session cluster, tests/ray_cluster.py).

One test walks the scenarios that build on each other: a tier whose train stage runs
on Ray while its evaluate stage runs here; a fresh clone with the same store and
cluster reruns nothing; a timeout stops the Ray job; a sluice killed with -9 leaves
its job running, and the next run stops it.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git, sluice
from tests.processes import wait_for

pytestmark = pytest.mark.slow

CONFIG = """\
storage: {cache: "file://STORE"}
executors:
  gpu: {type: ray, retries: 0}
stages:
  prep:
    cmd: python prep.py
    deps: [prep.py]
    outs: {data: build/data.txt}
  train:
    kind: train
    cmd: python train.py
    deps: [train.py]
    inputs: [stages.prep.outs.data]
    outs: {model: build/model.txt}
  score:
    kind: evaluate
    executor: local
    cmd: python score.py
    deps: [score.py]
    inputs: [stages.train.outs.model]
    outs: {score: build/score.txt}
  slow:
    executor: gpu
    cmd: sleep 300
    timeout: 4s
    outs: {x: build/slow.txt}
  orphan:
    executor: gpu
    cmd: sleep 300
    outs: {x: build/orphan.txt}
tiers:
  nightly: {select: [prep, train, score], executor: gpu}
"""

FILES = {
    "prep.py": "import os\nos.makedirs('build', exist_ok=True)\n"
               "open('build/data.txt', 'w').write('1 2 3\\n')\n",
    # Writes where it ran, so the test can tell a Ray worker from this checkout.
    "train.py": "import os\nos.makedirs('build', exist_ok=True)\n"
                "total = sum(map(int, open('build/data.txt').read().split()))\n"
                "open('build/model.txt', 'w').write(f'{total} {os.getcwd()}\\n')\n",
    "score.py": "import os\nos.makedirs('build', exist_ok=True)\n"
                "open('build/score.txt', 'w').write(open('build/model.txt').read().split()[0])\n",
}


def _project(repo: Path, store: Path) -> None:
    (repo / "sluice.yaml").write_text(CONFIG.replace("STORE", str(store)))
    for name, text in FILES.items():
        (repo / name).write_text(text)
    (repo / ".gitignore").write_text("build/\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "project")


def _last_run(repo: Path) -> dict[str, Any]:
    runs = sorted((repo / ".sluice" / "runs").glob("*.json"), key=os.path.getmtime)
    return {s["stage"]: s for s in json.loads(runs[-1].read_text())["stages"]}


def _jobs(repo: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(repo / ".sluice" / "sluice.db") as conn:
        return list(conn.execute("SELECT job_id, stage, state FROM remote_jobs"))


def _status(address: str, job_id: str) -> str:
    from ray.job_submission import JobSubmissionClient

    return str(JobSubmissionClient(address).get_job_status(job_id)).rsplit(".", 1)[-1]


def test_stages_on_a_ray_cluster(tmp_path: Path, repo: Path, ray_cluster: Any) -> None:
    store = tmp_path / "store"
    _project(repo, store)
    env = {"SLUICE_RAY_ADDRESS": ray_cluster.address}

    # The tier's train stage runs on Ray, its evaluate stage here, on the train output.
    sluice(repo, "run", "--tier", "nightly", env=env, timeout=600)
    run = _last_run(repo)
    assert {s: run[s]["status"] for s in run} == {"prep": "ran", "train": "ran",
                                                   "score": "ran"}
    assert run["train"]["executor"] == "gpu" and run["score"]["executor"] == "local"
    assert (repo / "build" / "score.txt").read_text() == "6"
    model = (repo / "build" / "model.txt").read_text().split()
    assert model[0] == "6" and not model[1].startswith(str(repo))  # a capsule ran it
    assert [stage for _, stage, _ in _jobs(repo)] == ["train"]
    assert "submitted Ray job" in (repo / ".sluice" / "logs" / "train.log").read_text()

    # A fresh clone with the same store and cluster reruns nothing.
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    sluice(clone, "run", "--tier", "nightly", env=env, timeout=600)
    assert {s["status"] for s in _last_run(clone).values()} == {"cached"}
    assert (clone / "build" / "score.txt").read_text() == "6"

    # A timeout stops the Ray job.
    sluice(repo, "run", "slow", env=env, check=1, timeout=600)
    assert _last_run(repo)["slow"]["status"] == "timeout"
    [(job_id, _, state)] = [j for j in _jobs(repo) if j[1] == "slow"]
    assert state == "ended"
    wait_for(lambda: _status(ray_cluster.address, job_id) == "STOPPED", 60,
             "for the timed-out Ray job to stop")

    # sluice killed with -9 leaves its Ray job running; the next run stops it.
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    killed = subprocess.Popen([sys.executable, "-m", "sluice", "run", "orphan"], cwd=repo,
                              env={**os.environ, "PATH": path, **env},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: any(j[1] == "orphan" for j in _jobs(repo)), 120,
                 "for the orphan's job to be recorded")
        [(orphan_id, _, _)] = [j for j in _jobs(repo) if j[1] == "orphan"]
        wait_for(lambda: _status(ray_cluster.address, orphan_id) == "RUNNING", 120,
                 "for the orphan's job to run")
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait(30)
    time.sleep(1)
    assert _status(ray_cluster.address, orphan_id) == "RUNNING"  # it outlived sluice
    result = sluice(repo, "run", "prep", env=env, timeout=600)
    assert f"Ray job {orphan_id} of stage `orphan`" in result.stdout + result.stderr
    wait_for(lambda: _status(ray_cluster.address, orphan_id) == "STOPPED", 60,
             "for the orphaned Ray job to stop")
    assert [j[2] for j in _jobs(repo) if j[0] == orphan_id] == ["stopped"]
