"""End-to-end: a stage dies with the sluice process that started it, even by kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import sluice
from tests.e2e.pipelines import write_project
from tests.processes import alive, wait_for

KILLS = 20
# The stage's shell writes its pid, its child's and its parent's (sluice's supervisor
# of the stage), then sleeps "forever".
COMMAND = 'sleep 300 & echo "$$ $! $PPID" > ../pids.tmp; mv ../pids.tmp ../pids; wait'
HANGING = f"""\
stages:
  train:
    cmd: {COMMAND}
    outs: {{model: model.txt}}
"""


@pytest.mark.slow
def test_no_stage_outlives_a_kill_9_of_sluice(repo: Path) -> None:
    write_project(repo, HANGING, files={})
    pids_file = repo.parent / "pids"
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    for attempt in range(KILLS):
        pids_file.unlink(missing_ok=True)
        proc = subprocess.Popen([sys.executable, "-m", "sluice", "run"], cwd=repo,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "PATH": path})
        wait_for(lambda: pids_file.exists() or proc.poll() is not None,  # noqa: B023
                 60, "for the stage")
        assert proc.poll() is None, f"sluice ended before the stage started (kill {attempt})"
        os.kill(proc.pid, signal.SIGKILL)  # sluice alone, not its process group
        proc.wait()
        pids = [int(p) for p in pids_file.read_text().split()]
        wait_for(lambda: not any(alive(pid) for pid in pids), 10,  # noqa: B023
                 f"for stage processes {pids} to die after kill {attempt}")
    # Nothing holds the stage's lock: the next run runs the stage at once.
    write_project(repo, HANGING.replace(COMMAND, "echo done > ${outs.model}"), files={})
    result = sluice(repo, "run")
    assert "another sluice run holds this stage" not in result.stdout + result.stderr
    assert (repo / "model.txt").read_text() == "done\n"
