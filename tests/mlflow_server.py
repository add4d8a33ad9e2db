"""A throw-away MLflow tracking server for tests that need a real one.

``mlflow_server`` (session-scoped) starts ``$SLUICE_MLFLOW_BIN server`` (MLflow in its
own virtualenv: `make test` builds one in .tools/mlflow) with a SQLite backend store
and a local artifact destination in a folder under pytest's temporary root, on
127.0.0.1 with a free port, waits for ``/health`` and yields an :class:`MlflowServer`.
Tests share it, so each gives its models a prefix of its own. The server is stopped
(its process group) when the session ends. Skipped, saying why, only when
SLUICE_MLFLOW_BIN is unset.

Use it from a test module with ``pytest_plugins = ["tests.mlflow_server"]``. Like
tests/postgres.py, everything written outside a test's own folder happens while the
session fixture is set up, before any test's write guard is active.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

BIN_ENV = "SLUICE_MLFLOW_BIN"
STARTUP_TIMEOUT_S = 300  # a cold start on a loaded 2-core machine takes a minute or more


@dataclass
class MlflowServer:
    url: str
    python: str  # the python of MLflow's virtualenv, for MlflowClient scripts
    root: Path

    def call(self, method: str, path: str, body: Any = None,
             query: dict[str, str] | None = None) -> Any:
        """One REST call (``/api/2.0/mlflow`` + path); the JSON answer."""
        url = f"{self.url}/api/2.0/mlflow{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as reply:
            raw = reply.read()
        return json.loads(raw) if raw.strip() else {}

    def model(self, name: str) -> dict[str, Any]:
        return dict(self.call("GET", "/registered-models/get", query={"name": name})
                    ["registered_model"])

    def versions(self, name: str) -> list[dict[str, Any]]:
        found = self.call("GET", "/model-versions/search",
                          query={"filter": f"name='{name}'", "max_results": "200"})
        return list(found.get("model_versions", []))

    def aliases(self, name: str) -> dict[str, str]:
        return {a["alias"]: a["version"] for a in self.model(name).get("aliases", [])}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    binary = os.environ.get(BIN_ENV)
    if not binary:
        pytest.skip(f"set {BIN_ENV} to an `mlflow` executable (MLflow 3 in its own venv; "
                    "`make test` builds .tools/mlflow)")
    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "MLFLOW_TRACKING_URI")}
    # One worker and no job runner: a test server, on a machine the suite shares.
    env.update(HOME=str(root), TMPDIR=str(root), MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    log = (root / "server.log").open("w")
    process = subprocess.Popen(
        [binary, "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not _healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the MLflow server did not start:\n"
                            + (root / "server.log").read_text()[-3000:])
            time.sleep(0.5)
        yield MlflowServer(url, str(Path(binary).parent / "python"), root)
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
