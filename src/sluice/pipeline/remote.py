"""Stages on remote executors: their capsule jobs, the record of each job, and orphans.

A stage whose executor is remote (``type: ray``) runs as a capsule
(:mod:`sluice.pipeline.capsule`): the scheduler stores its spec in the shared store and
submits ``sluice stage exec DIGEST`` as the job; the job's environment carries the store
URL only (credentials come from the cluster's environment or the executor's `env:`).

Every job is written to the database (``remote_jobs``) before it is submitted, with the
run's lock file: a run holds that lock while it lives, so a later ``sluice run`` that
finds a submitted job whose run's lock is free (on the same host) knows its run was
killed, and stops the job.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice.errors import ConfigError, StageFailed
from sluice.execute.base import Job
from sluice.workspace.project import SHARED_CACHE_ENV, STATE_DIR, Project

if TYPE_CHECKING:
    from sluice.db import Database
    from sluice.pipeline.fingerprint import RunContext
    from sluice.pipeline.plan import Decision


def run_lock_path(project: Project, run_id: str) -> Path:
    return project.state_dir / "locks" / f"run-{run_id}.lock"


def _hostname() -> str:
    import socket  # not at the top: a local-only run never needs it

    return socket.gethostname()


def check_remote(project: Project, names: set[str]) -> None:
    """Every remote executor in use has a store to reach and the variables it copies."""
    for name in sorted(names):
        spec = project.config.executor_spec(name)
        if spec is None or not project.config.is_remote(name):
            continue
        if project.shared_cache_url is None:
            raise ConfigError(
                f"executor `{name}` runs stages on a cluster, but there is no shared store "
                "for its workers to read inputs from and write results to",
                location=project.config.locate("executors", name, key=True),
                hint=f"set `storage: cache:` in sluice.yaml (or ${SHARED_CACHE_ENV}) to a "
                     "store the workers reach: s3://…, or file:///shared/path")
        for i, variable in enumerate(spec.env):
            if variable not in os.environ:
                raise ConfigError(
                    f"executor `{name}` copies ${variable} into its jobs, but it is not set",
                    location=project.config.locate("executors", name, "env", i),
                    hint=f"export {variable} before `sluice run`, or remove it from `env:`")


def capsule_job(project: Project, name: str, ctx: RunContext, run_id: str,
                decision: Decision, executor: str, local: Job) -> Job:
    """The job that runs stage ``name`` as a capsule on ``executor`` (its spec stored)."""
    from sluice.pipeline.capsule import build_spec, capsule_command, put_spec

    spec = project.config.executor_spec(executor)
    setup = spec.setup if spec is not None else None
    digest = put_spec(project, build_spec(project, name, ctx, run_id, decision=decision,
                                          setup=setup, executor=executor))
    url = project.shared_cache_url or ""
    return replace(local, command=capsule_command(digest), env={SHARED_CACHE_ENV: url},
                   inherit_fds=())


def stored_result(project: Project, name: str, fingerprint: str) -> dict[str, Any]:
    """The run record a remote stage's capsule wrote for ``fingerprint`` (never trusted
    blindly: its outputs are validated when restored)."""
    record = project.store.get_run(fingerprint)
    if record is None or not isinstance(record.get("outs"), dict):
        raise StageFailed(f"the capsule of stage `{name}` succeeded but the store holds "
                          f"no run record for its fingerprint {fingerprint[:12]}",
                          hint="check that the workers and this run use the same store "
                               f"(${SHARED_CACHE_ENV})")
    return record


def needed_here(project: Project, name: str, selected: list[str],
                where: dict[str, str]) -> bool:
    """Whether a remote stage's outputs must be restored into this checkout: a stage
    running here reads them, or they are a model's (gates read predictions, the
    registry the artifact)."""
    if any(name in (m.train, m.evaluate) for m in project.config.models.values()):
        return True
    return any(name in project.graph.upstream[down] and not project.config.is_remote(where[down])
               for down in selected)


class JobBook:
    """The database's record of a run's remote jobs (opened on first use)."""

    def __init__(self, project: Project, run_id: str) -> None:
        self.project = project
        self.run_id = run_id
        self._db: Database | None = None

    def db(self) -> Database:
        if self._db is None:
            from sluice.db import open_project_database

            self._db = open_project_database(self.project)
        return self._db

    def submitting(self, job: Job, job_id: str, executor: str, address: str) -> None:
        from sluice.db.schema import remote_jobs

        with self.db().engine.begin() as conn:
            conn.execute(remote_jobs.insert(), [{
                "job_id": job_id, "run_id": self.run_id, "stage": job.stage,
                "executor": executor, "address": address, "host": _hostname(),
                "run_lock": str(run_lock_path(self.project, self.run_id)),
                "submitted_at": time.time(), "state": "submitted"}])

    def ended(self, job_id: str, state: str = "ended", note: str | None = None) -> None:
        from sluice.db.schema import remote_jobs

        with self.db().engine.begin() as conn:
            conn.execute(remote_jobs.update().where(remote_jobs.c.job_id == job_id)
                         .values(state=state, note=note))


_RUN_LOCK_NAME = re.compile(r"run-[A-Za-z0-9_.-]+\.lock")


def run_is_alive(lock_path: object) -> bool:
    """Whether the run whose lock file the database names still holds it.

    The path comes from the database, which other checkouts write too: it is only
    ever opened read-only, never created or followed through a link, and only when it
    has the shape of a run lock (``…/.sluice/locks/run-ID.lock``). A missing or
    malformed lock file means no live run holds it.
    """
    if not isinstance(lock_path, str) or not os.path.isabs(lock_path):
        return False
    path = Path(lock_path)
    if not _RUN_LOCK_NAME.fullmatch(path.name) or path.parent.name != "locks" or \
            path.parent.parent.name != STATE_DIR:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock taken here
    return False


def stop_orphans(project: Project) -> list[str]:
    """Stop the submitted jobs of runs that died (their run lock is free); what was done."""
    from sqlalchemy import select

    from sluice.db.schema import remote_jobs
    from sluice.execute.ray import stop_remote_job

    book = JobBook(project, "")
    with book.db().engine.connect() as conn:
        rows = list(conn.execute(select(remote_jobs).where(remote_jobs.c.state == "submitted")))
    notes = []
    host = _hostname()
    for row in rows:
        if row.host != host:
            continue  # its run's lock is on another machine: whether it lives is unknown here
        if run_is_alive(row.run_lock):
            continue
        what = stop_remote_job(row.address, row.job_id)
        book.ended(row.job_id, "stopped", f"orphan of run {row.run_id}: {what}")
        notes.append(f"Ray job {row.job_id} of stage `{row.stage}` (run {row.run_id}, "
                     f"killed) {what}")
    return notes
