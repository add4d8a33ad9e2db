"""A small client of Ray's Jobs REST API (the dashboard's ``/api/jobs/``), stdlib only.

The Ray executor needs five calls: submit, one job's info, all jobs, a job's log, stop.
Ray's own ``JobSubmissionClient`` makes the same HTTP requests, but importing it costs
about a second of CPU (it imports most of Ray), paid by every ``sluice run`` that sends
a stage to a cluster; benchmarks/remote.py counts it in the overhead per remote stage.
The REST API is Ray's documented, stable interface (what ``ray job submit`` uses too),
so sluice speaks it directly. Answers are plain namespaces with the attribute names of
Ray's ``JobDetails`` (``status``, ``message``, ``driver_exit_code``, ``start_time``,
``end_time``, ``submission_id``, ``metadata``), so callers read them like Ray's.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from types import SimpleNamespace
from typing import Any

_TIMEOUT_S = 30.0  # per request; a head this slow is as good as unreachable


class JobsAPIError(RuntimeError):
    """The Jobs API answered with an error (the text says which, and its HTTP status)."""


class JobsClient:
    """Ray Jobs API at ``address`` (``http://head:8265``); the methods of Ray's client."""

    def __init__(self, address: str) -> None:
        # `head:8265` means http, as Ray's own client reads it.
        self.address = (address if "://" in address else f"http://{address}").rstrip("/")

    def submit_job(self, *, entrypoint: str, submission_id: str, runtime_env: dict[str, Any],
                   entrypoint_num_cpus: float | None = None,
                   entrypoint_num_gpus: float | None = None,
                   entrypoint_memory: int | None = None,
                   metadata: dict[str, str] | None = None) -> str:
        body = {"entrypoint": entrypoint, "submission_id": submission_id,
                "runtime_env": runtime_env, "metadata": metadata or {},
                "entrypoint_num_cpus": entrypoint_num_cpus,
                "entrypoint_num_gpus": entrypoint_num_gpus,
                "entrypoint_memory": entrypoint_memory}
        # Unset fields are left out, so an older head does not refuse unknown ones.
        answer = self._request("POST", "/api/jobs/",
                               {k: v for k, v in body.items() if v is not None})
        return str(answer.get("submission_id") or submission_id)

    def get_job_info(self, job_id: str) -> SimpleNamespace:
        return _details(self._request("GET", f"/api/jobs/{_quote(job_id)}"))

    def get_job_status(self, job_id: str) -> str:
        return str(self.get_job_info(job_id).status)

    def list_jobs(self) -> list[SimpleNamespace]:
        answer = self._request("GET", "/api/jobs/")
        return [_details(item) for item in (answer if isinstance(answer, list) else [])]

    def get_job_logs(self, job_id: str) -> str:
        return str(self._request("GET", f"/api/jobs/{_quote(job_id)}/logs").get("logs", ""))

    def stop_job(self, job_id: str) -> bool:
        return bool(self._request("POST", f"/api/jobs/{_quote(job_id)}/stop").get("stopped"))

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.address + path, data=data, method=method,
            headers={"Content-Type": "application/json"} if data is not None else {})
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as reply:
                text = reply.read().decode("utf-8", errors="replace")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", errors="replace").strip()
            if exc.code == 404:
                raise JobsAPIError(f"{path}: does not exist (HTTP 404) {detail[:200]}"
                                   ) from None
            raise JobsAPIError(f"the Ray Jobs API answered HTTP {exc.code}: "
                               f"{detail[:300] or exc.reason}") from None
        return json.loads(text) if text.strip() else {}


def _quote(job_id: str) -> str:
    return urllib.parse.quote(job_id, safe="")


def _details(item: Any) -> SimpleNamespace:
    """A job's details as attributes, missing ones None (as Ray's JobDetails has them)."""
    fields = item if isinstance(item, dict) else {}
    return SimpleNamespace(**{key: fields.get(key) for key in (
        "submission_id", "job_id", "status", "message", "driver_exit_code", "start_time",
        "end_time", "metadata", "entrypoint")})
