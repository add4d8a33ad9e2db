"""The Ray executor's own overhead: how it polls, when an ended job's log is whole, the cap.

No cluster here: a stand-in client counts the requests the poller makes (the real
cluster's behaviour is covered by test_ray.py and tests/e2e/test_ray.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sluice.execute.base import Job
from sluice.execute.ray import RayExecutor, _log_complete
from sluice.execute.ray_api import JobsClient
from tests.ray_cluster import free_port

ENTRYPOINT = "Running entrypoint for job sluice-x: sluice stage exec abc\n"


class CountingClient:
    """Answers like JobSubmissionClient for the jobs it knows; counts every call."""

    def __init__(self, known: list[str]) -> None:
        self.known = known
        self.calls: list[str] = []

    def list_jobs(self) -> list[Any]:
        self.calls.append("list_jobs")
        return [SimpleNamespace(submission_id=i, status="RUNNING") for i in self.known]

    def get_job_info(self, job_id: str) -> Any:
        self.calls.append("get_job_info")
        if job_id not in self.known:
            raise RuntimeError(f"Job {job_id} does not exist")
        return SimpleNamespace(submission_id=job_id, status="RUNNING")


def test_many_jobs_in_flight_are_polled_with_one_listing() -> None:
    executor = RayExecutor(1, address="http://127.0.0.1:1")
    executor._client = client = CountingClient(["a", "b", "c", "d"])
    polled = executor._poll(["a", "b", "c", "gone"])
    assert client.calls == ["list_jobs"]  # not one request per job
    assert [polled[i].status for i in ("a", "b", "c")] == ["RUNNING"] * 3
    # A job the cluster no longer lists is reported as not existing (a lost job).
    assert isinstance(polled["gone"], LookupError) and "does not exist" in str(polled["gone"])

    client.calls.clear()
    polled = executor._poll(["a", "gone"])  # few jobs: asked for one by one
    assert client.calls == ["get_job_info", "get_job_info"]
    assert polled["a"].status == "RUNNING" and "does not exist" in str(polled["gone"])


def test_an_ended_jobs_log_is_whole_once_the_capsule_result_line_is_there() -> None:
    result = json.dumps({"ok": True, "stage": "train", "wall_s": 0.1}, sort_keys=True)
    # The capsule's one-line JSON result is its last line: no waiting for the log to settle.
    assert _log_complete(ENTRYPOINT + "training...\n" + result + "\n", size_before=-1)
    assert _log_complete(ENTRYPOINT + result, size_before=-1)
    # Not yet: the result line has not arrived, and the log grew since the last copy.
    text = ENTRYPOINT + "training...\n"
    assert not _log_complete(text, size_before=len(ENTRYPOINT))
    assert not _log_complete(text + '{"epoch": 1}\n', size_before=-1)  # JSON, not a result
    assert not _log_complete(None, size_before=-1)
    # Another command (no result line): whole once it stops growing.
    assert _log_complete(text, size_before=len(text))


class BlockedClient:
    """Holds every submission until released, then refuses it."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def submit_job(self, **kwargs: Any) -> None:
        self.release.wait(60)
        raise RuntimeError("refused")


def test_jobs_in_flight_are_capped(tmp_path: Path) -> None:
    def job(stage: str) -> Job:
        return Job(stage=stage, command="true", cwd=tmp_path, env={},
                   log_path=tmp_path / "logs" / f"{stage}.log")

    executor = RayExecutor(1, address="http://127.0.0.1:1", retries=0, max_jobs=2)
    executor._client = client = BlockedClient()
    executor.start(job("a"))
    assert executor.fits(job("b"))
    executor.start(job("b"))
    assert not executor.fits(job("c"))  # two in flight: the third waits in sluice
    client.release.set()
    results = executor.wait(60)
    while len(results) < 2:
        results += executor.wait(60)
    assert not any(r.ok for r in results)
    assert executor.fits(job("c"))  # their places are free again


def test_submitting_never_imports_ray(tmp_path: Path) -> None:
    """sluice speaks the Jobs REST API itself: Ray's client costs a second of CPU to import."""
    address = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    code = ("import sys\nfrom pathlib import Path\n"
            "from sluice.execute.base import Job\nfrom sluice.execute.ray import RayExecutor\n"
            f"executor = RayExecutor(1, address={address!r}, retries=0)\n"
            f"tmp = Path({str(tmp_path)!r})\n"
            "executor.start(Job(stage='a', command='true', cwd=tmp, env={},"
            " log_path=tmp / 'a.log'))\n"
            "[result] = executor.wait(60)\n"
            "print(result.error)\n"
            "print('RAY' if 'ray' in sys.modules else 'NO RAY')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    error, imported = done.stdout.strip().splitlines()[-2:]
    assert f"cannot submit to the Ray cluster at {address}" in error
    assert imported == "NO RAY"


def test_an_address_without_a_scheme_is_http() -> None:
    assert JobsClient("127.0.0.1:8265/").address == "http://127.0.0.1:8265"
    assert JobsClient("https://ray.example.com/").address == "https://ray.example.com"


def test_the_rest_client_reads_ray_answers_and_names_a_missing_job(tmp_path: Path) -> None:
    """The Jobs API's JSON becomes JobDetails-like attributes; a 404 says "does not exist"
    (what the executor reads as a vanished, lost job)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Head(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/api/jobs/":
                body = json.dumps([{"submission_id": "a", "status": "SUCCEEDED",
                                    "driver_exit_code": 0, "start_time": 1000,
                                    "end_time": 3500}]).encode()
                self.send_response(200)
            else:
                body, _ = b"Job gone does not exist", self.send_response(404)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Head)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = JobsClient(f"127.0.0.1:{server.server_address[1]}")
        [job] = client.list_jobs()
        assert (job.submission_id, job.status, job.driver_exit_code) == ("a", "SUCCEEDED", 0)
        assert job.message is None  # absent fields read as None, as Ray's JobDetails
        with pytest.raises(RuntimeError, match=r"does not exist \(HTTP 404\)"):
            client.get_job_info("gone")
    finally:
        server.shutdown()
        server.server_close()
