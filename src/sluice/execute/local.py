"""The local executor: stage commands as parallel subprocesses on this machine.

This is sluice's one way to start a stage command. Each job runs through the shell
in its own process group (a new session) under a small supervisor
(:mod:`sluice.execute.supervise`) that writes the masked log as output arrives and
stops the whole tree, children and grandchildren, on a timeout, a cancel, or when
sluice itself dies (even by kill -9). CPU slots (``--jobs``), GPUs and memory are
handed out so running jobs never exceed the machine. The supervisor reports each
job's exit status, CPU time and peak memory (``os.wait4``).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import sluice
from sluice.errors import ResourceError
from sluice.execute.base import Job, JobResult, drain


def detect_gpus() -> list[int]:
    """GPU ids this process may use: ``SLUICE_GPUS`` (a count), CUDA_VISIBLE_DEVICES, or none."""
    count = os.environ.get("SLUICE_GPUS")
    if count is not None and count.strip().isdigit():
        return list(range(int(count)))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        return [int(x) for x in visible.split(",") if x.strip().isdigit()]
    if os.path.exists("/proc/driver/nvidia/gpus"):
        return list(range(len(os.listdir("/proc/driver/nvidia/gpus"))))
    return []


def total_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@dataclass
class _Running:
    """A job this executor started and has not yet reported."""

    job: Job
    process: subprocess.Popen[bytes]
    started: float
    gpu_ids: tuple[int, ...]
    timed_out: bool = False
    cancelled: bool = False


class LocalExecutor:
    """Runs up to ``slots`` CPU-slots' worth of jobs at once."""

    def __init__(self, slots: int) -> None:
        self.slots = max(1, slots)
        self.gpus = detect_gpus()
        self.memory = total_memory()
        self._running: dict[str, _Running] = {}
        self._free_gpus = list(self.gpus)
        self._done: queue.Queue[JobResult] = queue.Queue()
        self._lock = threading.Lock()

    def _cpus(self, job: Job) -> int:
        # A stage asking for more CPUs than --jobs still runs, alone.
        return min(job.cpus, self.slots)

    def check(self, job: Job) -> None:
        if job.gpus > len(self.gpus):
            raise ResourceError(
                f"stage `{job.stage}` needs {job.gpus} GPU(s) but {len(self.gpus)} are available",
                hint="lower `resources.gpus`, run on a machine with GPUs, or set SLUICE_GPUS "
                     "if detection is wrong")
        if job.memory is not None and job.memory > self.memory:
            raise ResourceError(
                f"stage `{job.stage}` needs {job.memory / 1e9:.1f} GB of memory but this "
                f"machine has {self.memory / 1e9:.1f} GB",
                hint="lower `resources.memory` or run on a larger machine")

    def fits(self, job: Job) -> bool:
        with self._lock:
            used = sum(self._cpus(r.job) for r in self._running.values())
            mem = sum(r.job.memory or 0 for r in self._running.values())
            if self._running and used + self._cpus(job) > self.slots:
                return False
            if self._running and job.memory and mem + job.memory > self.memory:
                return False
            return job.gpus <= len(self._free_gpus)

    def start(self, job: Job) -> None:
        with self._lock:
            gpu_ids = tuple(self._free_gpus[:job.gpus])
            del self._free_gpus[:job.gpus]
        env = {**os.environ, **job.env}
        if job.gpus or self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, gpu_ids))
        job.log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.time()
        process = _start_supervisor(job, env)
        running = _Running(job, process, started, gpu_ids)
        with self._lock:
            self._running[job.stage] = running
        threading.Thread(target=self._watch, args=(running,), daemon=True,
                         name=f"sluice-{job.stage}").start()

    def _watch(self, running: _Running) -> None:
        process = running.process
        timer = None
        if running.job.timeout is not None:
            timer = threading.Timer(running.job.timeout, self._timeout, args=(running,))
            timer.daemon = True
            timer.start()
        assert process.stdout is not None
        report = process.stdout.read()  # the supervisor's one line, then its end
        _, status, _ = os.wait4(process.pid, 0)
        wall = time.time() - running.started
        if timer is not None:
            timer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        with self._lock:
            _close(process.stdin)
            _close(process.stdout)
            self._running.pop(running.job.stage, None)
            self._free_gpus.extend(running.gpu_ids)
        try:
            done = json.loads(report)
        except ValueError:
            # The supervisor itself failed (it says why on stderr): the job failed.
            done = {"returncode": process.returncode or 1, "cpu_s": 0.0, "max_rss_bytes": 0}
        self._done.put(JobResult(
            stage=running.job.stage, returncode=int(done["returncode"]),
            wall_s=float(done.get("wall_s", wall)),
            cpu_s=float(done["cpu_s"]), max_rss_bytes=int(done["max_rss_bytes"]),
            started_at=running.started, timed_out=running.timed_out,
            cancelled=running.cancelled, gpu_ids=running.gpu_ids))

    def _stop(self, running: _Running) -> None:
        """Ask the job's supervisor to stop it (SIGTERM, then SIGKILL after a grace period)."""
        with self._lock:
            stdin = running.process.stdin
            if stdin is not None and not stdin.closed:
                with contextlib.suppress(OSError, ValueError):  # it is ending already
                    stdin.write(b"stop\n")
                    stdin.flush()

    def _timeout(self, running: _Running) -> None:
        running.timed_out = True
        self._stop(running)

    def wait(self, timeout: float | None) -> list[JobResult]:
        return drain(self._done, timeout)

    def running(self) -> list[str]:
        with self._lock:
            return list(self._running)

    def cancel_all(self) -> None:
        with self._lock:
            running = list(self._running.values())
        for item in running:
            item.cancelled = True
            self._stop(item)


def _close(stream: IO[bytes] | None) -> None:
    if stream is not None:
        with contextlib.suppress(OSError):
            stream.close()


_SUPERVISOR = str(Path(__file__).with_name("supervise.py"))


def _start_supervisor(job: Job, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``job`` under its supervisor; sluice keeps the write end of its stdin.

    The supervisor runs in a session of its own, so signals meant for sluice's group
    (a terminal's Ctrl-C, a CI runner's group kill) reach sluice, which stops the
    stages in order, and not the supervisors, which would stop them unannounced.
    """
    # The supervisor imports sluice from where this sluice came from, whatever the
    # stage's environment says.
    here = str(Path(sluice.__file__).resolve().parent.parent)
    own_env = {**os.environ,
               "PYTHONPATH": os.pathsep.join([here, *filter(None, [os.environ.get("PYTHONPATH")])])}
    # Its start-up is paid once per stage, on the critical path of every wave of
    # parallel stages: run by file name, not `-m` (which imports the sluice.execute
    # package, dataclasses and pathlib with it), and without `site` (-S: only the
    # standard library and sluice, found through PYTHONPATH, are needed).
    # -P: the script's folder is not put first on sys.path, so neither that folder's
    # modules nor a project's own `json.py` or `signal.py` replace the standard library.
    process = subprocess.Popen(
        [sys.executable, "-S", "-P", _SUPERVISOR, job.stage], cwd=job.cwd,
        env=own_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True,
        pass_fds=job.inherit_fds)
    spec = {"command": job.command, "cwd": str(job.cwd), "env": env,
            "log": str(job.log_path), "secret_names": list(job.secret_names),
            "pass_fds": list(job.inherit_fds)}
    assert process.stdin is not None
    with contextlib.suppress(BrokenPipeError):  # it failed to start: its report says so
        process.stdin.write(json.dumps(spec).encode() + b"\n")
        process.stdin.flush()
    return process
