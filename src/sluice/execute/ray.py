"""The Ray executor: each job is a Ray job (Ray Jobs API) on a cluster sluice does not own.

It runs ``job.command`` through the shell on a Ray worker with ``job.env`` (plus the
variables the executor copies from this environment at submit time) as the runtime
environment, and ``cpus``/``gpus``/``memory`` as the entrypoint's resource requests.
It knows nothing of stages or capsules: the scheduler gives it a command that runs
one (``sluice stage exec DIGEST``).

One background thread submits, polls and copies each job's log into ``job.log_path``
(masked, a line at a time), and stops jobs on a timeout or a cancel; results arrive
through :meth:`RayExecutor.wait` like the local executor's. A cluster that cannot be
reached, or a job that vanished or whose driver died without an exit code, is *lost*:
it is submitted again up to ``retries`` times (capsules are idempotent), then it is a
failed result whose ``error`` says why. It speaks Ray's Jobs REST API itself
(:mod:`sluice.execute.ray_api`): importing Ray's own client costs about a second of CPU
per run, and sluice never imports ``ray`` (the workers run Ray; the runner needs only
the API's URL).

Overhead per job is kept to what Ray needs (benchmarks/remote.py measures it): each
poll cycle asks for every in-flight job's status with one request (``list_jobs`` once
several are in flight), running jobs' logs are copied a few per cycle, and an ended
job's log counts as complete as soon as its last line is the capsule's one-line JSON
result (else once it stops growing) instead of waiting for Ray's log to settle.
At most ``max_jobs`` jobs are in flight per executor, so a thousand ready stages do not
become a thousand pending jobs on the head, each polled.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sluice.execute.base import Job, JobResult, drain
from sluice.execute.ray_api import JobsClient
from sluice.util.credentials import masker

ADDRESS_ENV = "SLUICE_RAY_ADDRESS"  # overrides `address:` of every Ray executor
_POLL_S = 0.25  # between status polls of the in-flight jobs (one request per poll)
_LIST_FROM = 3  # from this many jobs in flight, one list_jobs instead of one call each
_LOG_EVERY_S = 1.0  # between copies of a running job's log
_LOGS_PER_CYCLE = 2  # running jobs whose log is copied in one poll cycle, at most
MAX_JOBS = 64  # jobs in flight per executor; more wait in sluice, not on the head
_LOST_AFTER_S = 10.0  # a cluster unreachable this long has lost its jobs
_RETRY_AFTER_S = 1.0  # before a lost job is submitted again
_LOG_SETTLE_S = 5.0  # the longest an ended job's log is waited for

# Called with (job, submission id) before that id is submitted, so a record of it
# exists even if sluice dies the moment the job starts (see sluice.db jobs).
OnSubmit = Callable[[Job, str], None]


def resolve_address(configured: str | None) -> str | None:
    """The Jobs API URL: $SLUICE_RAY_ADDRESS, then the executor's `address:`."""
    return os.environ.get(ADDRESS_ENV) or configured or None


@dataclass
class _Remote:
    job: Job
    started: float  # time.time() of start(): timeouts count queueing on the cluster
    mask: Callable[[str], str]
    submission_id: str | None = None
    attempts: int = 0
    submit_after: float = 0.0
    log_written: int = 0  # characters of the Ray log already in job.log_path
    log_checked: float = 0.0
    unreachable_since: float | None = None
    timed_out: bool = False
    cancelled: bool = False
    stopping: bool = False
    finished_at: float | None = None  # when its end was first seen: the log may lag behind
    log_size: int = -1  # the Ray log's length at the last copy
    errors: list[str] = field(default_factory=list)


class RayExecutor:
    """Runs jobs on the Ray cluster whose Jobs API is at ``address``; the cluster queues them."""

    def __init__(self, slots: int, *, address: str | None, retries: int = 1,
                 copy_env: tuple[str, ...] = (), on_submit: OnSubmit | None = None,
                 name: str = "ray", max_jobs: int = MAX_JOBS) -> None:
        self.slots = max(1, slots)  # unused: the cluster, not sluice, decides what fits
        self.max_jobs = max(1, max_jobs)
        self.address = resolve_address(address)
        self.retries = retries
        self.copy_env = copy_env
        self.on_submit = on_submit
        self.name = name
        self._client: Any = None
        self._jobs: dict[str, _Remote] = {}
        self._done: queue.Queue[JobResult] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # --- the Executor protocol -------------------------------------------------------

    def check(self, job: Job) -> None:
        """Nothing to check here: the cluster decides what it can run, and says so."""

    def fits(self, job: Job) -> bool:
        # Jobs the cluster cannot start yet wait in its queue; past max_jobs in sluice's,
        # where they cost the head nothing (each job in flight is polled and holds an actor).
        with self._lock:
            return len(self._jobs) < self.max_jobs

    def start(self, job: Job) -> None:
        env = {**job.env, **{k: os.environ[k] for k in self.copy_env if k in os.environ}}
        job = replace(job, env=env)
        # Copied variables are masked whatever their names (store credentials).
        remote = _Remote(job, time.time(), masker({**os.environ, **env},
                                                  (*job.secret_names, *self.copy_env)))
        job.log_path.parent.mkdir(parents=True, exist_ok=True)
        job.log_path.write_text("")  # this run's log, not the last one's
        with self._lock:
            self._jobs[job.stage] = remote
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, daemon=True,
                                                name=f"sluice-ray-{self.name}")
                self._thread.start()

    def wait(self, timeout: float | None) -> list[JobResult]:
        return drain(self._done, timeout)

    def running(self) -> list[str]:
        with self._lock:
            return list(self._jobs)

    def cancel_all(self) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
        for remote in jobs:
            remote.cancelled = True
            self._stop(remote)

    # --- the poller thread ---------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._lock:
                jobs = list(self._jobs.values())
                if not jobs:
                    self._thread = None
                    return
            polled = self._poll([r.submission_id for r in jobs if r.submission_id is not None])
            # The running jobs whose log copy is most overdue get this cycle's few copies.
            due = {id(r) for r in sorted((r for r in jobs if r.submission_id is not None),
                                         key=lambda r: r.log_checked)[:_LOGS_PER_CYCLE]}
            for remote in jobs:
                try:
                    self._step(remote, polled, id(remote) in due)
                except Exception as exc:  # never let one job's surprise end the others
                    self._end(remote, error=f"sluice lost track of the Ray job: {exc}")
            time.sleep(_POLL_S)

    def _poll(self, ids: list[str]) -> dict[str, Any]:
        """Each job's info, or the exception that asking for it raised: one request a cycle
        once several jobs are in flight (a job missing from the listing does not exist)."""
        polled: dict[str, Any] = {}
        if len(ids) >= _LIST_FROM:
            try:
                listed = {j.submission_id: j for j in self._connect().list_jobs()}
            except Exception as exc:
                return dict.fromkeys(ids, exc)
            for job_id in ids:
                polled[job_id] = listed.get(job_id) or LookupError(
                    f"Job {job_id} does not exist")
            return polled
        for job_id in ids:
            try:
                polled[job_id] = self._connect().get_job_info(job_id)
            except Exception as exc:
                polled[job_id] = exc
        return polled

    def _step(self, remote: _Remote, polled: dict[str, Any], log_due: bool) -> None:
        now = time.time()
        if remote.submission_id is None:
            if remote.cancelled:
                self._end(remote)
            elif now >= remote.submit_after:
                self._submit(remote)
            return
        if not remote.stopping and remote.job.timeout is not None and \
                now - remote.started > remote.job.timeout:
            remote.timed_out = True
            self._stop(remote)
        if remote.submission_id not in polled:
            return  # submitted after this cycle's poll
        info = polled[remote.submission_id]
        if isinstance(info, Exception):
            self._unreachable(remote, info)
            return
        remote.unreachable_since = None
        status = str(getattr(info.status, "value", info.status))
        finished = status in ("SUCCEEDED", "FAILED", "STOPPED")
        if finished:
            # Ray's log can lag behind the status (more so on a loaded node): copy it
            # until it ends with the capsule's result line, or holds Ray's line about
            # the entrypoint and stops growing.
            if remote.finished_at is None:
                remote.finished_at = now
            before = remote.log_size
            text = self._copy_log(remote, final=False)
            if not _log_complete(text, before) and now - remote.finished_at < _LOG_SETTLE_S:
                return
            self._copy_log(remote, final=True, text=text)
        elif log_due and now - remote.log_checked >= _LOG_EVERY_S:
            remote.log_checked = now
            self._copy_log(remote, final=False)
            return
        else:
            return
        code = getattr(info, "driver_exit_code", None)
        wall = _wall(info, remote.started)
        if status == "SUCCEEDED":
            self._end(remote, returncode=0, wall=wall)
        elif status == "STOPPED" and (remote.timed_out or remote.cancelled or remote.stopping):
            self._end(remote, returncode=code if code is not None else -15, wall=wall)
        elif status == "FAILED" and code is not None:
            self._end(remote, returncode=int(code), wall=wall)
        else:
            why = (info.message or "").strip() or status.lower()
            if status == "STOPPED":
                why = f"stopped on the cluster, not by sluice ({why})"
            self._lost(remote, f"Ray job `{remote.submission_id}` ended without an exit "
                               f"code: {why}")

    def _connect(self) -> Any:
        if self._client is None:
            if not self.address:
                raise ConnectionError(f"executor `{self.name}` has no address (set `address:` "
                                      f"in sluice.yaml or ${ADDRESS_ENV})")
            self._client = JobsClient(self.address)
        return self._client

    def _submit(self, remote: _Remote) -> None:
        job = remote.job
        remote.attempts += 1
        submission_id = f"sluice-{job.stage[:40]}-{secrets.token_hex(6)}"
        try:
            client = self._connect()
            if self.on_submit is not None:
                self.on_submit(job, submission_id)  # recorded before it exists
            client.submit_job(
                entrypoint=job.command, submission_id=submission_id,
                runtime_env={"env_vars": dict(job.env)},
                entrypoint_num_cpus=job.cpus, entrypoint_num_gpus=job.gpus or None,
                entrypoint_memory=job.memory,
                metadata={"sluice_stage": job.stage[:200]})
        except Exception as exc:
            self._client = None
            self._lost(remote, f"cannot submit to the Ray cluster at {self.address}: "
                               f"{_reason(exc)}")
            return
        remote.submission_id = submission_id
        self._log(remote, f"[sluice] submitted Ray job {submission_id} to {self.address} "
                          f"(attempt {remote.attempts})\n")

    def _unreachable(self, remote: _Remote, exc: Exception) -> None:
        text = _reason(exc)
        if "does not exist" in text or "404" in text:
            self._lost(remote, f"Ray job `{remote.submission_id}` vanished from the cluster")
            return
        self._client = None
        now = time.time()
        if remote.unreachable_since is None:
            remote.unreachable_since = now
        elif now - remote.unreachable_since >= _LOST_AFTER_S:
            self._lost(remote, f"lost contact with the Ray cluster at {self.address} for "
                               f"{now - remote.unreachable_since:.0f} s: {text}")

    def _lost(self, remote: _Remote, why: str) -> None:
        """Submit a lost job again while retries are left; else it failed, and why."""
        remote.errors.append(why)
        self._log(remote, f"[sluice] {why}\n")
        if remote.submission_id is not None:
            self._stop(remote)  # best effort: it may still run somewhere
        if remote.cancelled or remote.timed_out or remote.attempts > self.retries:
            tries = f" (after {remote.attempts} attempts)" if remote.attempts > 1 else ""
            self._end(remote, error=why + tries)
            return
        remote.submission_id = None
        remote.finished_at = None
        remote.log_size = -1
        remote.log_written = 0
        remote.unreachable_since = None
        remote.stopping = False
        remote.submit_after = time.time() + _RETRY_AFTER_S

    def _stop(self, remote: _Remote) -> None:
        remote.stopping = True
        if remote.submission_id is None:
            return
        with contextlib.suppress(Exception):  # gone already, or the cluster is
            self._connect().stop_job(remote.submission_id)

    def _copy_log(self, remote: _Remote, *, final: bool, text: str | None = None
                  ) -> str | None:
        """Append what is new in the job's Ray log (``text``: as just read, else read now);
        returns the whole log (None: unreadable)."""
        if text is None:
            try:
                text = str(self._connect().get_job_logs(remote.submission_id))
            except Exception as exc:
                if final:
                    self._log(remote, f"[sluice] could not read the Ray job's log: "
                                      f"{_reason(exc)}\n")
                return None  # else the next poll tries again; the status says if it is lost
        remote.log_size = len(text)
        new = text[remote.log_written:]
        if not final:
            # Whole lines only: a secret split across two copies is still masked whole.
            new = new[:new.rfind("\n") + 1]
        if new:
            self._log(remote, new)
            remote.log_written += len(new)
        return text

    def _log(self, remote: _Remote, text: str) -> None:
        with contextlib.suppress(OSError), open(remote.job.log_path, "a", encoding="utf-8",
                                                errors="replace") as handle:
            handle.write(remote.mask(text))

    def _end(self, remote: _Remote, *, returncode: int = 1, wall: float | None = None,
             error: str | None = None) -> None:
        with self._lock:
            if self._jobs.get(remote.job.stage) is not remote:
                return
            del self._jobs[remote.job.stage]
        self._done.put(JobResult(
            stage=remote.job.stage, returncode=returncode if error is None else 1,
            wall_s=wall if wall is not None else time.time() - remote.started,
            cpu_s=0.0, max_rss_bytes=0, started_at=remote.started,
            timed_out=remote.timed_out, cancelled=remote.cancelled and not remote.timed_out,
            error=error, remote_id=remote.submission_id))


def _log_complete(text: str | None, size_before: int) -> bool:
    """Whether an ended job's log is whole: it ends with a one-line JSON result with an
    ``ok`` key (what ``sluice stage exec`` prints last), or it holds Ray's line about the
    entrypoint and did not grow since the last copy."""
    if text is None:
        return False
    last = text.rstrip("\n").rpartition("\n")[2].strip()
    if last.startswith("{") and last.endswith("}"):
        with contextlib.suppress(ValueError):
            result = json.loads(last)
            if isinstance(result, dict) and "ok" in result:
                return True
    return "Running entrypoint for job" in text and len(text) == size_before


def _wall(info: Any, started: float) -> float:
    """The job's own wall time from Ray's timestamps (milliseconds), else since start()."""
    begin, end = getattr(info, "start_time", None), getattr(info, "end_time", None)
    if begin and end and end >= begin:
        return float(end - begin) / 1000.0
    return time.time() - started


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def stop_remote_job(address: str, job_id: str) -> str:
    """Stop one Ray job by id (an orphan of a killed run); what happened, in words."""
    try:
        client = JobsClient(address)
        status = str(client.get_job_info(job_id).status or "")
        if status in ("SUCCEEDED", "FAILED", "STOPPED"):
            return f"had ended ({status.lower()})"
        client.stop_job(job_id)
    except Exception as exc:
        return f"could not be stopped: {_reason(exc)}"
    return "stopped"
