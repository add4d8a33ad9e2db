"""The supervisor of one stage command: its masking log writer and its tie to sluice.

:mod:`sluice.execute.local` starts every stage command through
``python -S -P …/sluice/execute/supervise.py STAGE``, a small process that

- starts the command in a session of its own, so its whole tree is one process group;
- reads the command's output from a pipe and appends it to the stage's log with every
  secret masked (:func:`sluice.util.credentials.masker`) a line at a time, so no way a run
  can end (finished, timed out, SIGTERM, Ctrl-C, a kill -9 of sluice) leaves a secret
  on disk for CI to upload;
- watches its stdin, whose write end only sluice holds: a byte there asks it to stop
  the command; end-of-file means sluice died, and the command is stopped too (a
  kill -9 of sluice must not leave a GPU training running). End-of-file works on every
  OS and, unlike Linux's parent-death signal, does not depend on which of sluice's
  threads started the supervisor;
- when the command ends, stops what it left running in its group, and reports the
  exit status, wall and CPU time and peak memory as one JSON line on stdout.

Stopping is SIGTERM to the group, then SIGKILL after a grace period. The first line
on stdin is the job as JSON: ``command``, ``cwd``, ``env``, ``log``, ``secret_names``
and ``pass_fds`` (the stage lock, held by the command's processes while they live).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import time

TYPE_CHECKING = False  # not typing's: its import would be a tenth of this process's start
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

GRACE_S = 3.0  # between SIGTERM and SIGKILL
_AFTER_KILL_S = 1.0  # what still "lives" this long after SIGKILL is a zombie someone else reaps
_READ = 65536
# A line longer than this is written in pieces; the last _KEEP bytes stay behind, so
# a secret that arrives split across reads is still masked whole.
_LINE_LIMIT = 65536
_KEEP = 4096
_PR_SET_CHILD_SUBREAPER = 36
_DEFAULT_SIGNALS = tuple(getattr(signal, name) for name in ("SIGPIPE", "SIGXFSZ", "SIGXFZ")
                         if hasattr(signal, name))


class LineMasker:
    """Masks a byte stream a complete line at a time; endless lines in bounded pieces."""

    def __init__(self, mask: Callable[[str], str], keep: int = _KEEP,
                 limit: int = _LINE_LIMIT) -> None:
        self._mask = mask
        self._keep = keep
        self._limit = max(limit, 2 * keep)
        self._pending = b""

    def _masked(self, data: bytes) -> bytes:
        # surrogateescape: bytes that are not UTF-8 pass through unchanged.
        return self._mask(data.decode("utf-8", "surrogateescape")).encode(
            "utf-8", "surrogateescape")

    def feed(self, data: bytes) -> bytes:
        """What of ``data`` (and what was held back) can be written now, masked."""
        buffer = self._pending + data
        # A carriage return ends a line too: progress bars redraw with it.
        cut = max(buffer.rfind(b"\n"), buffer.rfind(b"\r")) + 1
        ready, self._pending = self._masked(buffer[:cut]), buffer[cut:]
        if len(self._pending) > self._limit:
            # Every secret wholly inside is masked; one still arriving lies in the tail.
            masked = self._masked(self._pending)
            ready += masked[:-self._keep]
            self._pending = masked[-self._keep:]
        return ready

    def flush(self) -> bytes:
        rest, self._pending = self._pending, b""
        return self._masked(rest)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _become_subreaper() -> None:
    """Linux: orphans of the command become our children, not init's (which, in a
    container, may never reap them)."""
    if sys.platform != "linux":
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _read_job(fd: int) -> tuple[dict[str, Any], bytes]:
    """The job (stdin's first line) and whatever followed it."""
    data = b""
    while b"\n" not in data:
        chunk = os.read(fd, _READ)
        if not chunk:
            raise SystemExit("sluice.execute.supervise: no job on stdin")
        data += chunk
    line, _, rest = data.partition(b"\n")
    job: dict[str, Any] = json.loads(line)
    return job, rest


class _Supervisor:
    def __init__(self, job: dict[str, Any]) -> None:
        from sluice.util.credentials import masker, secret_values

        env: dict[str, str] = job["env"]
        names: list[str] = job.get("secret_names", [])
        longest = max((len(v.encode()) for v in secret_values(env, names)), default=0)
        self.masker = LineMasker(masker(env, names), keep=max(_KEEP, longest))
        self.log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND,
                           0o644)
        out_r, out_w = os.pipe()
        self.started = time.monotonic()
        # posix_spawn rather than subprocess, whose import (threading, selectors,
        # locale) would be a good part of this process's start, paid per stage. The
        # fds it passes on (the stage lock) came inheritable from sluice; every other
        # fd here is close-on-exec. Signals Python ignores are reset for the command.
        os.chdir(job["cwd"])
        for fd in job.get("pass_fds", ()):
            os.set_inheritable(fd, True)
        self.pgid = os.posix_spawn(
            "/bin/sh", ["/bin/sh", "-c", job["command"]], env,
            file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                          (os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_DUP2, out_w, 2)],
            setsid=True, setsigdef=_DEFAULT_SIGNALS)
        os.close(out_w)
        self.output: int | None = out_r
        self.status: int | None = None
        self.usage: Any = None
        self.wall_s = 0.0
        self.stop_at: float | None = None  # when SIGTERM went to the group
        self.killed_at: float | None = None  # when SIGKILL did

    def stop(self) -> None:
        if self.stop_at is None:
            self.stop_at = time.monotonic()
            _signal_group(self.pgid, signal.SIGTERM)

    def escalate(self) -> None:
        now = time.monotonic()
        if self.stop_at is not None and self.killed_at is None and now - self.stop_at > GRACE_S:
            self.killed_at = now
            _signal_group(self.pgid, signal.SIGKILL)

    def reap(self) -> None:
        # Every child: the command, and (as a subreaper) what it left behind when it
        # ended, so no zombie of the group keeps it looking alive.
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if not pid:
                return
            if pid == self.pgid:
                self.status, self.usage = status, usage
                self.wall_s = time.monotonic() - self.started

    def done(self) -> bool:
        if self.status is None:
            return False
        if self.killed_at is not None and time.monotonic() - self.killed_at > _AFTER_KILL_S:
            return True
        if _group_alive(self.pgid):
            # The command ended but left processes running: a stage ends with its command.
            self.stop()
            return False
        return True

    def read_output(self) -> None:
        assert self.output is not None
        data = os.read(self.output, _READ)
        if data:
            _write_all(self.log, self.masker.feed(data))
        else:
            os.close(self.output)
            self.output = None

    def finish(self) -> dict[str, Any]:
        # What is left in the pipe is drained; a process that escaped the group (and
        # keeps the pipe open) is not waited for.
        deadline = time.monotonic() + _AFTER_KILL_S
        while self.output is not None and time.monotonic() < deadline and \
                select.select([self.output], [], [], 0)[0]:
            self.read_output()
        if self.output is not None:
            os.close(self.output)
        _write_all(self.log, self.masker.flush())
        os.close(self.log)
        assert self.status is not None
        usage = self.usage
        # The command's own wall time, without the supervisor's start.
        return {"returncode": os.waitstatus_to_exitcode(self.status), "wall_s": self.wall_s,
                "cpu_s": usage.ru_utime + usage.ru_stime,
                "max_rss_bytes": usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)}


def supervise(control: int = 0) -> dict[str, Any]:
    """Run the job read from ``control`` (stdin) to its end; its exit status and usage."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    stopped = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopped
        stopped = True
    # A signal to the supervisor stops the command; SIGCHLD only wakes the loop.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    job, early = _read_job(control)
    _become_subreaper()
    supervisor = _Supervisor(job)
    watching = True
    if early:
        supervisor.stop()
    while True:
        supervisor.reap()
        if stopped:
            supervisor.stop()
        supervisor.escalate()
        if supervisor.done():
            break
        fds = [wake_r] + ([control] if watching else []) + \
            ([supervisor.output] if supervisor.output is not None else [])
        # Block until output, a signal or a child's end; poll while processes that are
        # not our children (what the command left) are being stopped.
        timeout = 0.05 if supervisor.status is not None or supervisor.stop_at else None
        readable = select.select(fds, [], [], timeout)[0]
        if wake_r in readable:
            os.read(wake_r, _READ)
        if control in readable:
            # A byte: sluice asks to stop. End-of-file: sluice is gone.
            os.read(control, _READ)
            watching = False
            supervisor.stop()
        if supervisor.output is not None and supervisor.output in readable:
            supervisor.read_output()
    return supervisor.finish()


def main() -> None:
    result = supervise()
    with contextlib.suppress(OSError):  # sluice may be gone: nobody to tell
        _write_all(1, json.dumps(result).encode() + b"\n")


if __name__ == "__main__":
    main()
