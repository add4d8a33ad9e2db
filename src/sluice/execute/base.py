"""What every executor shares: :class:`Job`, :class:`JobResult` and the :class:`Executor` protocol.

An executor takes jobs (a stage's command, environment, resources, log and timeout)
and hands back results (exit code, wall, CPU and peak memory).
"""

from __future__ import annotations

import queue
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Job:
    """One stage command to run."""

    stage: str
    command: str
    cwd: Path
    env: dict[str, str]
    log_path: Path
    timeout: float | None = None
    cpus: int = 1
    gpus: int = 0
    memory: int | None = None
    # Descriptors the process inherits. The stage's lock is passed this way so
    # it stays held while the stage's processes live, even if sluice is killed.
    inherit_fds: tuple[int, ...] = ()
    # Variables to mask in the log besides those named like secrets (``ci.secrets``).
    secret_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobResult:
    """How a job ended and what it used."""

    stage: str
    returncode: int
    wall_s: float
    cpu_s: float
    max_rss_bytes: int
    started_at: float
    timed_out: bool = False
    cancelled: bool = False
    gpu_ids: tuple[int, ...] = field(default_factory=tuple)
    # Why the job did not run to its end when its command is not to blame: a cluster
    # that cannot be reached, a job lost on it (after the executor's retries).
    error: str | None = None
    remote_id: str | None = None  # the job's id where it ran (a Ray submission id)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.cancelled and \
            self.error is None


class Executor(Protocol):
    """What the scheduler needs from a place that runs commands."""

    def check(self, job: Job) -> None:
        """Raise ResourceError if ``job`` could never run here."""

    def fits(self, job: Job) -> bool:
        """Whether ``job`` can start now without exceeding capacity."""

    def start(self, job: Job) -> None: ...

    def wait(self, timeout: float | None) -> list[JobResult]:
        """Results of jobs that finished; waits up to ``timeout`` seconds for one."""

    def running(self) -> list[str]: ...

    def cancel_all(self) -> None:
        """Stop every running job (their results still arrive through ``wait``)."""


def drain(done: queue.Queue[JobResult], timeout: float | None) -> list[JobResult]:
    """What :meth:`Executor.wait` returns from a queue of results: the first to arrive
    within ``timeout`` seconds, and every one already there after it."""
    results: list[JobResult] = []
    try:
        results.append(done.get(timeout=timeout))
    except queue.Empty:
        return results
    while True:
        try:
            results.append(done.get_nowait())
        except queue.Empty:
            return results
