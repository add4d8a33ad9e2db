"""The local executor and its per-stage supervisor: masked logs, stopping, dying with sluice."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from sluice.execute import run_one
from sluice.execute.base import Job, JobResult
from sluice.execute.local import LocalExecutor, _start_supervisor
from sluice.execute.supervise import LineMasker
from sluice.util.credentials import masker
from tests.processes import alive, wait_for

SECRET = "hunter2-0123456789"


def _masker() -> LineMasker:
    return LineMasker(masker({"MY_DB_PASS": SECRET}), keep=64, limit=256)


def test_a_secret_split_across_reads_is_masked_whole() -> None:
    lines = _masker()
    written = lines.feed(b"password is hun") + lines.feed(b"ter2-01234") + \
        lines.feed(b"56789 ok\nnext ") + lines.flush()
    assert written == b"password is *** ok\nnext "


def test_an_endless_line_is_written_in_bounded_pieces_and_still_masked() -> None:
    lines = _masker()
    written = b""
    held = 0
    for _ in range(200):  # 200 x 20 bytes, no newline: never all held back
        written += lines.feed(b"x" * 10 + SECRET[:5].encode())
        written += lines.feed(SECRET[5:].encode()[:5])
        written += lines.feed(SECRET[10:].encode() + b"y" * 2)
        held = len(lines._pending)
        assert held <= 256 + 64
    written += lines.flush()
    assert SECRET.encode() not in written
    assert written == (b"x" * 10 + b"***" + b"yy") * 200


def test_bytes_that_are_not_utf8_and_carriage_returns_pass_through() -> None:
    lines = _masker()
    data = b"\xff\xfe progress 10%\rprogress 20%\r"
    assert lines.feed(data) == data  # a progress bar's \r ends a line too
    assert lines.flush() == b""


def _job(tmp_path: Path, command: str, env: dict[str, str] | None = None,
         **kwargs: Any) -> Job:
    return Job(stage="s", command=command, cwd=tmp_path, env=env or {},
               log_path=tmp_path / "logs" / "s.log", **kwargs)


def test_the_log_is_masked_as_it_is_written(tmp_path: Path) -> None:
    job = _job(tmp_path, 'echo "db=$MY_DB_PASS deploy=$DEPLOY_HOOK"; echo done',
               env={"MY_DB_PASS": SECRET, "DEPLOY_HOOK": "hook-value-42"},
               secret_names=("DEPLOY_HOOK",))
    result = run_one(job)
    assert result.ok and result.returncode == 0
    assert job.log_path.read_text() == "db=*** deploy=***\ndone\n"


def test_exit_status_cpu_time_and_memory_are_the_commands(tmp_path: Path) -> None:
    result = run_one(_job(tmp_path, "exit 7"))
    assert result.returncode == 7 and not result.ok
    assert result.max_rss_bytes > 0 and result.cpu_s >= 0


def test_timeout_stops_the_whole_group_and_keeps_the_masked_log(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    job = _job(tmp_path, f'echo "$MY_TOKEN"; sleep 60 & echo $! > {pids}; echo $$ >> {pids}; '
                         "wait", env={"MY_TOKEN": SECRET}, timeout=0.5)
    result = run_one(job)
    assert result.timed_out and not result.ok
    for pid in map(int, pids.read_text().split()):
        wait_for(lambda pid=pid: not alive(pid))
    assert job.log_path.read_text() == "***\n"


def test_what_a_command_leaves_running_is_stopped_with_it(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    result = run_one(_job(tmp_path, f"sleep 60 & echo $! > {pids}"))
    assert result.ok
    wait_for(lambda: not alive(int(pids.read_text())))


def test_cancel_all_stops_running_jobs(tmp_path: Path) -> None:
    executor = LocalExecutor(2)
    executor.start(_job(tmp_path, "echo started; exec sleep 60"))
    log = tmp_path / "logs" / "s.log"
    wait_for(lambda: log.exists() and log.read_text() == "started\n")
    executor.cancel_all()
    results: list[JobResult] = []
    wait_for(lambda: bool(results.extend(executor.wait(0.1)) or results))
    assert results[0].cancelled and results[0].returncode < 0
    assert executor.running() == []


@pytest.mark.parametrize("how", ["eof", "sigterm"])
def test_the_stage_dies_when_sluice_does(tmp_path: Path, how: str) -> None:
    """sluice's end (its end of the supervisor's stdin closes) stops the stage's group."""
    import signal

    pids = tmp_path / "pids"
    job = _job(tmp_path, f"sleep 60 & echo $! > {pids}; echo $$ >> {pids}; echo $MY_TOKEN; wait",
               env={"MY_TOKEN": SECRET})
    job.log_path.parent.mkdir(parents=True)
    supervisor = _start_supervisor(job, {**os.environ, **job.env})
    wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 2)
    wait_for(lambda: job.log_path.read_text() == "***\n")
    assert supervisor.stdin is not None and supervisor.stdout is not None
    if how == "eof":
        supervisor.stdin.close()  # what the kernel does when sluice is killed
    else:
        supervisor.send_signal(signal.SIGTERM)
    supervisor.stdout.read()
    supervisor.wait(timeout=30)
    supervisor.stdout.close()
    for pid in map(int, pids.read_text().split()):
        wait_for(lambda pid=pid: not alive(pid))
    if how == "sigterm":
        supervisor.stdin.close()


# What a stage's supervisor must not import: its start is paid once per stage, on the
# critical path of every wave of parallel stages (benchmarks/parallel_sleep.py).
_SUPERVISOR_NEVER_IMPORTS = {"site", "subprocess", "threading", "typing", "dataclasses",
                             "inspect", "pathlib", "sluice.errors", "sluice.execute"}


def test_a_stage_supervisor_starts_without_heavy_imports(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # The supervisor inherits sluice's environment and stderr: its import log lands here.
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")
    result = run_one(_job(tmp_path, "echo done"))
    assert result.ok
    assert (tmp_path / "logs" / "s.log").read_text() == "done\n"
    imported = {line.rsplit("|", 1)[-1].strip() for line in capfd.readouterr().err.splitlines()
                if line.startswith("import time:")}
    assert "sluice.util.credentials" in imported  # the log is still masked by sluice's masker
    assert not imported & _SUPERVISOR_NEVER_IMPORTS
