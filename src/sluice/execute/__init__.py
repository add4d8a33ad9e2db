"""Executors: where and how stage commands run.

An executor takes :class:`Job` values and hands back :class:`JobResult` values;
scheduling *which* job is ready belongs to :mod:`sluice.pipeline.scheduler`. Backends
implement :class:`Executor` and are listed in :data:`EXECUTORS`.
"""

from __future__ import annotations

from collections.abc import Callable
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

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.cancelled


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


def _local(jobs: int) -> Executor:
    from sluice.execute.local import LocalExecutor
    return LocalExecutor(jobs)


EXECUTORS: dict[str, Callable[[int], Executor]] = {"local": _local}


def run_one(job: Job, executor: str = "local") -> JobResult:
    """Run ``job`` to its end, as the scheduler runs a stage (a baseline's re-evaluation).

    On Ctrl-C (or SIGTERM) the job is stopped before the interrupt goes on.
    """
    runner = EXECUTORS[executor](max(1, job.cpus))
    runner.check(job)
    runner.start(job)
    try:
        while True:
            # Short waits: a Ctrl-C reaches the main thread only when it runs Python.
            for result in runner.wait(0.2):
                return result
    except KeyboardInterrupt:
        runner.cancel_all()
        runner.wait(10)
        raise
