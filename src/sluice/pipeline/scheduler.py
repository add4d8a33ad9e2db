"""Running the pipeline: schedule ready stages, reuse cached results, record outcomes.

Stages start as soon as every upstream stage has settled, in parallel up to the
executor's capacity. Before a stage runs it is fingerprinted from the *actual*
content of its inputs, so an upstream stage that reran but produced identical
bytes leaves its downstream cached. A per-stage file lock keeps two concurrent
``sluice run`` processes from running the same stage at once: the second waits,
then finds the first's result in the cache.

This module decides and starts stages and runs the loop. What becomes of a stage once
it is decided (a cached result restored, a finished job's outputs and record) is in
:mod:`sluice.pipeline.finishing`; the executors a run makes, one per name, are in
:mod:`sluice.pipeline.run_executors`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from sluice.errors import Interrupted, SluiceError
from sluice.pipeline.base import (
    FAILED,
    Event,
    RunOptions,
    RunResult,
    StageOutcome,
    new_run_id,
)
from sluice.pipeline.fingerprint import render_command, stage_environment
from sluice.pipeline.finishing import job_outcome, log_tail, reused_outcome
from sluice.pipeline.plan import Decision, decide, select_stages
from sluice.pipeline.run_executors import RunExecutors
from sluice.util.credentials import declare_secret_names
from sluice.util.fs import FileLock, atomic_write_json
from sluice.workspace.gitignore import ignore_outputs as _ignore_outputs
from sluice.workspace.outputs import (
    check_output_links,
    prepare_output_parents,
    remove_outputs,
)
from sluice.workspace.project import Project
from sluice.workspace.records import read_record

if TYPE_CHECKING:
    # Imported where a stage is first started: a no-op run starts none (sluice.execute
    # brings subprocess management, queues and its dataclasses).
    from sluice.execute.base import Job, JobResult

_LOCK_POLL_S = 0.2
# How much older than the plan a stage's record must be to count as the one the plan
# read without reading it again: well above any file system's timestamp granularity.
_RECORD_SETTLED_NS = 2_000_000_000


class _Scheduler:
    def __init__(self, project: Project, options: RunOptions,
                 on_event: Callable[[Event], None]) -> None:
        self.project = project
        self.options = options
        self.emit = on_event
        self.run_id = options.run_id or new_run_id()
        self.selected = select_stages(project, options.targets)
        kinds = {s: project.config.stages[s].kind for s in self.selected}
        # Cheap before expensive: checks (and what they read) run first; every other
        # stage waits for them and is gated when one fails.
        self.checks = [s for s in self.selected if kinds[s] == "check"]
        needed_by_checks = set(project.graph.with_upstream(self.checks))
        self.gated = {s for s in self.selected if s not in needed_by_checks}
        self.budget_capped: dict[str, str] = {}
        self.pending = list(self.selected)
        self.outcomes: dict[str, StageOutcome] = {}
        self.active: dict[str, tuple[FileLock, Decision]] = {}
        self.known_outputs: dict[str, str] = {}
        self.waiting_noted: set[str] = set()
        self.checked: set[str] = set()  # stages whose resources the executor accepted
        self.ignored: set[str] = set()  # stages whose outputs are git-ignored
        self.to_ignore: list[str] = []  # stages whose outputs are to be, before a wait
        # Stages that must run but found their executor full: decided once, not on
        # every pass of the loop (a decision hashes inputs and may ask a remote store).
        self.deferred: dict[str, Decision] = {}
        self.stop = False
        # One executor per name the selected stages use: local and remote side by side.
        self.where = {s: project.config.executor_name(s, options.context.tier)
                      for s in self.selected}
        self.executors = RunExecutors(project, options, self.run_id, self.where)
        # A `sluice gc` waits while this run may read or write the store. A run whose
        # every stage was planned up to date touches no object: it takes the lease only
        # if a stage turns out to need deciding again (store_lease).
        self.lease = contextlib.ExitStack()
        self.leased = False

    def ignore_outputs(self) -> None:
        """Git-ignore the outputs of the stages started or restored since the last call.

        Called when nothing more can start (before waiting), at the end and when the
        run is interrupted: one pair of git calls for all the stages started in a pass,
        never between one start and the next. Only stages that wrote here get lines.
        """
        names = [n for n in dict.fromkeys(self.to_ignore) if n not in self.ignored]
        if names:
            _ignore_outputs(self.project, names)
            self.ignored.update(names)
        self.to_ignore.clear()  # only once done: an interrupted call is made again

    def store_lease(self) -> None:
        """Hold the store against `sluice gc` from now until the run ends."""
        if self.leased:
            return
        from sluice.store.layered import local_layer
        from sluice.store.sweep import run_lease

        self.lease.enter_context(run_lease(local_layer(self.project.store)))
        self.leased = True

    def job_for(self, name: str) -> Job:
        from sluice.execute.base import Job

        stage = self.project.config.stages[name]
        ctx = self.options.context
        resources = stage.spec.resources
        timeout = stage.spec.timeout
        tracker = self.options.tracker
        capped = tracker.time_limit(resources.cpus, resources.gpus, self.executors.rates(name)) \
            if tracker else None
        if capped is not None and (timeout is None or capped[0] < timeout):
            timeout = max(capped[0], 0.001)
            self.budget_capped[name] = capped[1]
        else:
            self.budget_capped.pop(name, None)
        return Job(stage=name, command=render_command(self.project.config, stage, ctx),
                   cwd=self.project.root,
                   env=stage_environment(self.project.config, stage, ctx, self.run_id),
                   log_path=self.project.log_path(name), timeout=timeout,
                   cpus=resources.cpus, gpus=resources.gpus, memory=resources.memory,
                   secret_names=self.project.config.secret_names)

    def settle(self, outcome: StageOutcome) -> None:
        self.outcomes[outcome.stage] = outcome
        self.emit(Event("finish", outcome.stage, outcome.reason, outcome))

    def blocked_by(self, name: str) -> str | None:
        for up in self.project.graph.upstream[name]:
            done = self.outcomes.get(up)
            if done is not None and done.status in FAILED:
                return up
        return None

    def ready(self, name: str) -> bool:
        if name in self.gated and any(c not in self.outcomes for c in self.checks):
            return False
        return all(up in self.outcomes or up not in self.selected
                   for up in self.project.graph.upstream[name])

    def refusal(self, name: str) -> StageOutcome | None:
        """Why ``name`` must not start: a failed check, upstream, or an exhausted budget."""
        if name in self.gated:
            failed = [*self.options.failed_checks,
                      *(c for c in self.checks if self.outcomes[c].status in FAILED)]
            if failed:
                return StageOutcome(name, "gated", f"gated by failing check `{failed[0]}`")
        if name in self.options.over_budget:
            return StageOutcome(name, "budget", "not started: the estimate exceeds the budget "
                                                "(on_budget: skip-expensive)")
        failed_up = self.blocked_by(name)
        if failed_up is not None:
            return StageOutcome(name, "skipped", f"upstream `{failed_up}` did not succeed")
        if self.stop:
            return StageOutcome(name, "skipped", "not started: a stage failed (--fail-fast)")
        return None

    def try_start(self, name: str) -> bool:
        """Settle or start ``name``; False when it has to wait (lock or capacity)."""
        refused = self.refusal(name)
        if refused is not None:
            self.settle(refused)
            return True
        deferred = self.deferred.get(name)
        if deferred is not None and not self.executors.executor(name).fits(self.job_for(name)):
            return False  # still no room: not fingerprinted nor looked up again
        lock = FileLock(self.project.lock_path(name))
        if not lock.acquire():
            if name not in self.waiting_noted:
                self.waiting_noted.add(name)
                self.emit(Event("waiting", name, "another sluice run holds this stage; waiting"))
            return False
        try:
            decision = self.decision(name, deferred)
        except SluiceError as exc:
            lock.release()
            self.settle(StageOutcome(name, "failed", exc.render()))
            return True
        if decision.action != "run":
            return self.reuse(name, lock, decision)
        tracker = self.options.tracker
        spent = tracker.exhausted() if tracker is not None else None
        if spent is not None:
            lock.release()
            self.settle(StageOutcome(name, "budget", f"not started: {spent}"))
            return True
        job = self.job_for(name)
        lock_fd = lock.fileno()
        if lock_fd is not None:
            job = replace(job, inherit_fds=(lock_fd,))
        executor = self.executors.executor(name)
        if name not in self.checked:
            try:
                executor.check(job)
            except SluiceError as exc:
                lock.release()
                self.settle(StageOutcome(name, "failed", exc.render(), decision.fingerprint))
                return True
            self.checked.add(name)
        if not executor.fits(job):
            lock.release()
            self.deferred[name] = decision
            return False
        self.deferred.pop(name, None)
        if self.project.config.is_remote(self.where[name]):
            from sluice.pipeline.remote import capsule_job

            try:  # the spec and every object it names go to the shared store first
                job = capsule_job(self.project, name, self.options.context, self.run_id,
                                  decision, self.where[name], job)
            except SluiceError as exc:
                lock.release()
                self.settle(StageOutcome(name, "failed", exc.render(), decision.fingerprint,
                                         executor=self.where[name]))
                return True
        else:
            remove_outputs(self.project, self.project.config.stages[name])
            prepare_output_parents(self.project, self.project.config.stages[name])
        executor.start(job)
        self.active[name] = (lock, decision)
        if not self.project.config.is_remote(self.where[name]):
            self.to_ignore.append(name)  # git-ignored once nothing else can start
        self.emit(Event("start", name, "; ".join(decision.reasons)))
        return True

    def decision(self, name: str, deferred: Decision | None) -> Decision:
        """Whether ``name`` runs or is cached. A stage that waited for room keeps the
        decision it had (its upstream had settled, so its fingerprint stands); only its
        run record is looked up again, in case another sluice run made it meanwhile."""
        planned = self.options.planned.get(name)
        if deferred is None and planned is not None and self.still_up_to_date(name, planned):
            return planned
        self.store_lease()
        if deferred is None or self.project.store.get_run(deferred.fingerprint) is not None:
            return decide(self.project, name, self.options.context,
                          force=self.options.force, known_outputs=self.known_outputs)
        return deferred

    def still_up_to_date(self, name: str, planned: Decision) -> bool:
        """Whether the plan's up-to-date decision for ``name`` still stands: every
        upstream stage settled as it was planned (cached, nothing restored) and the
        stage's record is the one it was decided against (no other run wrote it)."""
        if planned.action != "up-to-date" or planned.record is None:
            return False
        for up in self.project.graph.upstream[name]:
            done = self.outcomes.get(up)
            if done is not None and (done.status != "cached" or done.restored):
                return False
        try:
            written_ns = os.stat(self.project.record_path(name)).st_mtime_ns
        except OSError:
            return False
        # Records are replaced whole, and a replacement bears the time it was written:
        # one written well before the plan read it is the one the plan read. Only a
        # recent one is read again (a stat per stage on a no-op run, not a JSON parse).
        if written_ns < self.options.planned_at_ns - _RECORD_SETTLED_NS:
            return True
        return read_record(self.project, name) == planned.record

    def reuse(self, name: str, lock: FileLock, decision: Decision) -> bool:
        try:
            outcome = reused_outcome(self.project, name, decision, self.outcomes,
                                     known_outputs=self.known_outputs, to_ignore=self.to_ignore)
        finally:
            lock.release()
        self.settle(outcome)
        return True

    def finish(self, result: JobResult) -> None:
        lock, decision = self.active.pop(result.stage)
        if self.options.tracker is not None:
            resources = self.project.config.stages[result.stage].spec.resources
            self.options.tracker.charge(result.wall_s, resources.cpus, resources.gpus,
                                        self.executors.rates(result.stage))
        if self.project.config.is_remote(self.where[result.stage]):
            self.executors.ended(result, note=result.error)
        try:
            outcome = job_outcome(self.project, result, decision, run_id=self.run_id,
                                  selected=self.selected, where=self.where,
                                  capped=self.budget_capped.get(result.stage),
                                  known_outputs=self.known_outputs, to_ignore=self.to_ignore)
        finally:
            lock.release()
        if outcome.status != "ran":
            outcome.log_tail = log_tail(str(self.project.log_path(result.stage)))
            if not self.options.keep_going and not self.stop:
                self.stop = True
                self.executors.cancel_all()
        self.settle(outcome)

    def loop(self) -> None:
        self.emit(Event("plan", "", f"{len(self.selected)} stage(s)", total=len(self.selected)))
        remote = {w for w in self.where.values() if self.project.config.is_remote(w)}
        if remote:
            from sluice.pipeline.remote import check_remote

            check_remote(self.project, remote)
        for name in self.selected:
            # Resources are checked before anything starts, except for stages the plan
            # found up to date: a no-op run builds no job and makes no executor. One of
            # them that must run after all is checked when it starts (try_start).
            planned = self.options.planned.get(name)
            if planned is None or planned.action != "up-to-date":
                self.executors.executor(name).check(self.job_for(name))
                self.checked.add(name)
            check_output_links(self.project, self.project.config.stages[name])
        while self.pending or self.active:
            progressed = False
            for name in list(self.pending):
                if self.ready(name) and self.try_start(name):
                    self.pending.remove(name)
                    progressed = True
            if progressed:
                continue
            self.ignore_outputs()
            if not self.active:
                time.sleep(_LOCK_POLL_S)  # only other processes' locks hold us up
                continue
            # Never block for good: a Ctrl-C may be delivered to another thread,
            # and the main thread only notices it when it runs Python code again.
            for result in self.executors.wait(_LOCK_POLL_S):
                self.finish(result)
        self.ignore_outputs()

    def interrupt(self) -> None:
        self.executors.cancel_all()
        deadline = time.monotonic() + 30  # a cluster takes longer to confirm a stop
        while self.active and time.monotonic() < deadline:
            for result in self.executors.wait(0.5):
                lock, _ = self.active.pop(result.stage)
                lock.release()
                self.executors.ended(result, "stopped", "interrupted")


def run_pipeline(project: Project, options: RunOptions,
                 on_event: Callable[[Event], None] = lambda e: None) -> RunResult:
    """Run the selected stages; returns every stage's outcome (raises only for bad setups)."""
    started = time.monotonic()
    declare_secret_names(project.config.secret_names)  # masked in all that is shown
    scheduler = _Scheduler(project, options, on_event)
    run_lock = None
    if any(project.config.is_remote(w) for w in scheduler.where.values()):
        from sluice.pipeline.remote import run_lock_path

        # Held while this run lives: a later run that finds it free stops our jobs.
        run_lock = FileLock(run_lock_path(project, scheduler.run_id))
        run_lock.acquire()
    if any(project.config.is_remote(name) for name in project.config.spec.executors):
        from sluice.pipeline.remote import stop_orphans

        for note in stop_orphans(project):  # jobs of runs killed with -9
            on_event(Event("note", "", note))
    if any(getattr(options.planned.get(s), "action", None) != "up-to-date"
           for s in scheduler.selected):
        scheduler.store_lease()
    try:
        scheduler.loop()
    except KeyboardInterrupt:
        scheduler.interrupt()
        raise Interrupted("interrupted; running stages were stopped",
                          hint="rerun `sluice run`: finished stages are cached") from None
    finally:
        # Outputs written before an interrupt or an error stay out of git all the same;
        # a failure here must not hide the one that ended the run.
        with contextlib.suppress(Exception):
            scheduler.ignore_outputs()
        scheduler.lease.close()
        project.stat_cache.flush()
        if run_lock is not None:
            run_lock.release()
            with contextlib.suppress(OSError):
                run_lock.path.unlink()
    project.store.clean_tmp()  # leftovers of writers killed in a previous run
    outcomes = [scheduler.outcomes[name] for name in scheduler.selected]
    result = RunResult(scheduler.run_id, outcomes, time.monotonic() - started)
    atomic_write_json(project.state_dir / "runs" / f"{result.run_id}.json", result.to_json())
    return result
