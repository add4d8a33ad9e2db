"""A real S3-compatible server (moto) for tests that need one, counting its requests.

``s3_server`` (session-scoped) serves moto's S3 on 127.0.0.1 with a free port,
from a thread of the test process (its WSGI app wrapped to count requests by
method). Objects live in memory; moto spools large ones to ``tempfile``'s
folder, which the write guard points at the running test's tmp_path.

``s3`` (per test) sets dummy credentials (a fresh random secret, so a test can
grep everything sluice printed or wrote for it), ``AWS_ENDPOINT_URL`` and no
profile or instance metadata, creates a fresh bucket and yields an
:class:`S3Bucket` with its ``sluice`` URL, a boto3 client and the request counter.

Use it from a test module with ``pytest_plugins = ["tests.s3"]``.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

REGION = "us-east-1"


class RequestCounter:
    """WSGI middleware: counts requests by method (thread-safe)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.counts: Counter[str] = Counter()
        self.log: list[str] = []  # "METHOD /path?query", to see what a test's numbers are made of
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        with self._lock:
            self.counts[environ["REQUEST_METHOD"]] += 1
            query = environ.get("QUERY_STRING")
            self.log.append(f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}"
                            + (f"?{query}" if query else ""))
        return self.app(environ, start_response)

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()
            self.log.clear()

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())


@dataclass
class S3Server:
    endpoint: str
    counter: RequestCounter
    names: Iterator[int]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    try:
        from moto.server import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server
    except ImportError:
        pytest.skip("moto[server] is not installed (pip install -e '.[dev]' installs it)")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    counter = RequestCounter(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, counter, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="moto-s3", daemon=True)
    thread.start()
    try:
        yield S3Server(f"http://127.0.0.1:{server.server_port}", counter, itertools.count(1))
    finally:
        server.shutdown()
        thread.join(10)


@dataclass
class S3Bucket:
    """One fresh bucket on the session's server."""

    name: str
    endpoint: str
    secret: str
    client: Any
    counter: RequestCounter

    def url(self, prefix: str = "sluice") -> str:
        return f"s3://{self.name}/{prefix}"

    def keys(self, prefix: str = "") -> dict[str, int]:
        """Every key under ``prefix`` with its size."""
        found: dict[str, int] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.name, Prefix=prefix):
            found.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
        return found

    def read(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.name, Key=key)["Body"].read())

    def write(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=data)


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Bucket:
    """A fresh bucket, with credentials and endpoint in the environment for sluice."""
    import boto3

    secret = "test-secret-" + secrets.token_hex(12)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN",
                 "AWS_ENDPOINT_URL_S3", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    name = f"bucket-{next(s3_server.names)}-{secrets.token_hex(4)}"
    client = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name=REGION,
                          aws_access_key_id="test-key-id", aws_secret_access_key=secret)
    client.create_bucket(Bucket=name)
    _forget_filesystems()
    return S3Bucket(name, s3_server.endpoint, secret, client, s3_server.counter)


def _forget_filesystems() -> None:
    """Drop fsspec's cached S3 filesystems: they hold the previous test's credentials."""
    try:
        import s3fs
    except ImportError:
        return
    s3fs.S3FileSystem.clear_instance_cache()
