"""The executors of one pipeline run: one per executor name its stages use.

The scheduler (:mod:`sluice.pipeline.scheduler`) asks this for the executor that runs
a stage, the prices that stage runs at (for the budget), and the results of every
executor's jobs; local and remote executors run side by side. Each executor is made on
first use: a run whose stages are all up to date makes none (:mod:`sluice.execute`
brings subprocess management and queues). A remote executor's jobs are written to the
database before they are submitted (:class:`sluice.pipeline.remote.JobBook`), so that a
later run can stop those of a run that was killed.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from sluice.pipeline.base import RunOptions
from sluice.workspace.project import Project

if TYPE_CHECKING:
    from sluice.execute.base import Executor, Job, JobResult
    from sluice.pipeline.costs import Rates


class RunExecutors:
    """The executors a run has made, by name; ``where`` maps each stage to its executor."""

    def __init__(self, project: Project, options: RunOptions, run_id: str,
                 where: dict[str, str]) -> None:
        self.project = project
        self.options = options
        self.run_id = run_id
        self.where = where
        self.jobs = options.jobs or os.cpu_count() or 1
        self.made: dict[str, Executor] = {}
        self.remote_jobs: dict[str, str] = {}  # stage -> the id of its job on a cluster
        self.prices: dict[tuple[str, bool], Rates] = {}  # (executor, needs GPU) -> rates
        self.book: Any = None  # sluice.pipeline.remote.JobBook, once a remote job is sent

    def executor(self, name: str) -> Executor:
        """The executor that runs stage ``name``, made on first use."""
        where = self.where[name]
        if where not in self.made:
            spec = self.project.config.executor_spec(where)
            from sluice.execute import EXECUTORS

            if spec is None or not self.project.config.is_remote(where):
                self.made[where] = EXECUTORS[self.options.executor](self.jobs)
            else:
                from sluice.execute.ray import resolve_address

                address = resolve_address(spec.address) or ""
                self.made[where] = EXECUTORS[spec.type](
                    self.jobs, address=address, retries=spec.retries,
                    copy_env=tuple(spec.env), name=where,
                    on_submit=lambda job, job_id: self.submitting(job, job_id, where, address))
        return self.made[where]

    def rates(self, name: str) -> Rates | None:
        """The prices of the executor that runs ``name``; None: the run's own."""
        tracker = self.options.tracker
        if tracker is None:
            return None
        key = (self.where[name], self.project.config.stages[name].spec.resources.gpus > 0)
        if key not in self.prices:  # once per executor: NVML may be asked
            from sluice.pipeline.costs import executor_rates

            self.prices[key] = executor_rates(self.project.config, key[0], needs_gpu=key[1],
                                              default=tracker.rates)
        return self.prices[key]

    def submitting(self, job: Job, job_id: str, executor: str, address: str) -> None:
        """Called before a remote job is submitted: the database knows of it first."""
        from sluice.pipeline.remote import JobBook

        if self.book is None:
            self.book = JobBook(self.project, self.run_id)
        self.book.submitting(job, job_id, executor, address)
        self.remote_jobs[job.stage] = job_id

    def ended(self, result: JobResult, state: str = "ended", note: str | None = None) -> None:
        """Record in the database that ``result``'s remote job ended, if one was sent."""
        if result.remote_id is not None and self.book is not None:
            self.book.ended(result.remote_id, state, note)

    def cancel_all(self) -> None:
        """Stop every job of every executor made so far."""
        for executor in self.made.values():
            executor.cancel_all()

    def wait(self, timeout: float) -> list[JobResult]:
        """Results from every executor; waits up to ``timeout`` in all."""
        executors = list(self.made.values())
        if len(executors) == 1:
            return executors[0].wait(timeout)
        found: list[JobResult] = []
        for executor in executors:
            found += executor.wait(0)
        if not found:
            time.sleep(min(timeout, 0.05))
        return found
