"""The local executor: stage commands as parallel subprocesses on this machine.

Each job runs through the shell in its own process group (a new session), so a
timeout or cancel kills the whole tree: children and grandchildren. CPU slots
(``--jobs``), GPUs and memory are handed out so running jobs never exceed the
machine. ``os.wait4`` gives each job's CPU time and peak memory.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

from sluice.errors import ResourceError
from sluice.execute import Job, JobResult

_GRACE_S = 3.0  # between SIGTERM and SIGKILL


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
        with open(job.log_path, "wb") as log:
            started = time.time()
            process = subprocess.Popen(
                ["/bin/sh", "-c", job.command], cwd=job.cwd, env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, pass_fds=job.inherit_fds)
        running = _Running(job, process, started, gpu_ids)
        with self._lock:
            self._running[job.stage] = running
        threading.Thread(target=self._watch, args=(running,), daemon=True,
                         name=f"sluice-{job.stage}").start()

    def _watch(self, running: _Running) -> None:
        pid = running.process.pid
        timer = None
        if running.job.timeout is not None:
            timer = threading.Timer(running.job.timeout, self._timeout, args=(running,))
            timer.daemon = True
            timer.start()
        _, status, usage = os.wait4(pid, 0)
        wall = time.time() - running.started
        if timer is not None:
            timer.cancel()
        running.process.returncode = os.waitstatus_to_exitcode(status)
        if running.timed_out or running.cancelled:
            # The leader is gone; make sure nothing it started lives on.
            _signal_group(pid, signal.SIGKILL)
        with self._lock:
            self._running.pop(running.job.stage, None)
            self._free_gpus.extend(running.gpu_ids)
        self._done.put(JobResult(
            stage=running.job.stage, returncode=running.process.returncode, wall_s=wall,
            cpu_s=usage.ru_utime + usage.ru_stime, max_rss_bytes=usage.ru_maxrss * 1024,
            started_at=running.started, timed_out=running.timed_out,
            cancelled=running.cancelled, gpu_ids=running.gpu_ids))

    def _timeout(self, running: _Running) -> None:
        running.timed_out = True
        _terminate_group(running.process.pid)

    def wait(self, timeout: float | None) -> list[JobResult]:
        results: list[JobResult] = []
        try:
            results.append(self._done.get(timeout=timeout))
        except queue.Empty:
            return results
        while True:
            try:
                results.append(self._done.get_nowait())
            except queue.Empty:
                return results

    def running(self) -> list[str]:
        with self._lock:
            return list(self._running)

    def cancel_all(self) -> None:
        with self._lock:
            running = list(self._running.values())
        for item in running:
            item.cancelled = True
            threading.Thread(target=_terminate_group, args=(item.process.pid,),
                             daemon=True).start()


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _terminate_group(pgid: int) -> None:
    """SIGTERM the group, then SIGKILL whatever is left after a grace period."""
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + _GRACE_S
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.05)
    _signal_group(pgid, signal.SIGKILL)
