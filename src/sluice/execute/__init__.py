"""Executors: where and how stage commands run.

An executor takes :class:`~sluice.execute.base.Job` values and hands back
:class:`~sluice.execute.base.JobResult` values; scheduling *which* job is ready belongs
to :mod:`sluice.pipeline.scheduler`. Backends implement
:class:`~sluice.execute.base.Executor` and are listed in :data:`EXECUTORS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sluice.execute.base import Executor, Job, JobResult
from sluice.execute.local import LocalExecutor


def _ray(slots: int, **options: Any) -> Executor:
    # Imported here: a project that never runs a stage on Ray never imports it.
    from sluice.execute.ray import RayExecutor

    return RayExecutor(slots, **options)


# Each backend is made with the CPU slots it may fill (``--jobs``), then its own
# options from `executors:` in sluice.yaml (an address, retries...).
EXECUTORS: dict[str, Callable[..., Executor]] = {"local": LocalExecutor, "ray": _ray}


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
