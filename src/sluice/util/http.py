"""A small JSON-over-HTTP client for web APIs (GitHub, GitLab, MLflow), on the standard library.

Why not ``requests``: publishing is one comment per run, and the standard library keeps
``sluice`` light. What it adds over bare ``urllib``: a timeout on every request, bounded
retries on 5xx/429 (and 403 with ``Retry-After``, GitHub's secondary rate limit)
honouring ``Retry-After``, tokens sent only to the API's own host (never along a
redirect or a ``next`` link elsewhere), and every error message stripped of secrets.
"""

from __future__ import annotations

import email.utils
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sluice.util.credentials import mask_values

USER_AGENT = "sluice-report-publisher"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait; every wait is capped so a run never hangs."""

    attempts: int = 4
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    data: Any


class HttpFailure(Exception):
    """A request that failed for good: ``status`` is None when the server was never reached."""

    def __init__(self, method: str, url: str, status: int | None, detail: str,
                 headers: Mapping[str, str] | None = None) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})
        where = f"{method} {urllib.parse.urlsplit(url).path}"
        super().__init__(f"{where}: HTTP {status}: {detail}" if status is not None
                         else f"{where}: {detail}")


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _retryable(status: int, headers: Mapping[str, str]) -> bool:
    return status >= 500 or status == 429 or (status == 403 and "retry-after" in headers)


def _detail(raw: bytes) -> str:
    """The server's own explanation, short: ``message`` (and ``errors``) or the text."""
    text = raw.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:300] or "(empty response)"
    if isinstance(data, dict):
        parts = [str(data.get(key)) for key in ("message", "error", "errors") if data.get(key)]
        if parts:
            return "; ".join(parts)[:300]
    return json.dumps(data)[:300]


@dataclass
class ApiClient:
    """Requests to one API (``base_url``) with its authentication headers."""

    base_url: str
    headers: dict[str, str] = field(repr=False)  # authentication and API version
    secrets: tuple[str, ...] = field(default=(), repr=False)
    timeout_s: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    user_agent: str = USER_AGENT

    def url(self, path: str, query: Mapping[str, str | int] | None = None) -> str:
        url = self.base_url.rstrip("/") + path
        return f"{url}?{urllib.parse.urlencode(query)}" if query else url

    def same_origin(self, url: str) -> bool:
        mine, theirs = urllib.parse.urlsplit(self.base_url), urllib.parse.urlsplit(url)
        return (mine.scheme, mine.netloc) == (theirs.scheme, theirs.netloc)

    def request(self, method: str, url: str, body: Any = None, *,
                raw: bytes | Path | None = None) -> Response:
        """Send ``body`` as JSON (or ``raw`` bytes as they are, or a file's, streamed from
        disk), retrying what may succeed later; raises ``HttpFailure`` (masked)."""
        if not self.same_origin(url):
            raise HttpFailure(method, url, None, f"refusing to send the token to {url!r}, "
                              f"which is not on {self.base_url}")
        delay = self.retry.first_delay_s
        for attempt in range(1, max(1, self.retry.attempts) + 1):
            try:
                return self._once(method, url, body, raw)
            except HttpFailure as failure:
                last = attempt == max(1, self.retry.attempts)
                retry = failure.status is None or _retryable(failure.status, failure.headers)
                if last or not retry:
                    raise
                wait = retry_after_s(failure.headers.get("retry-after"))
                self.sleep(min(delay if wait is None else wait, self.retry.max_delay_s))
                delay *= 2
        raise AssertionError("unreachable")  # the loop returns or raises

    def _once(self, method: str, url: str, body: Any,
              raw: bytes | Path | None = None) -> Response:
        with ExitStack() as stack:
            data: Any = None if body is None else json.dumps(body).encode()
            request = urllib.request.Request(url, method=method)
            if isinstance(raw, Path):  # streamed: a model may not fit in memory
                data = stack.enter_context(raw.open("rb"))
                request.add_header("Content-Length", str(raw.stat().st_size))
            elif raw is not None:
                data = raw
            request.data = data
            request.add_header("User-Agent", self.user_agent)
            request.add_header("Accept", "application/json")
            if data is not None:
                request.add_header("Content-Type", "application/octet-stream"
                                   if raw is not None else "application/json")
            for name, value in self.headers.items():
                # Unredirected: urllib would otherwise copy it to wherever a redirect points.
                request.add_unredirected_header(name, value)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as reply:
                    answer = reply.read()
                    headers = {k.lower(): v for k, v in reply.headers.items()}
                    status = reply.status
            except urllib.error.HTTPError as error:
                headers = {k.lower(): v for k, v in (error.headers or {}).items()}
                detail = mask_values(_detail(error.read() or b""), self.secrets)
                raise HttpFailure(method, url, error.code, detail, headers) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
                reason = getattr(error, "reason", error)
                said = mask_values(f"could not reach the server ({reason})", self.secrets)
                raise HttpFailure(method, url, None, said) from None
        try:
            parsed = json.loads(answer) if answer.strip() else None
        except ValueError:
            raise HttpFailure(method, url, status, "the answer is not JSON: "
                              + mask_values(_detail(answer), self.secrets), headers) from None
        return Response(status, headers, parsed)


def next_link(link_header: str | None) -> str | None:
    """The ``rel="next"`` URL of an RFC 8288 ``Link`` header (GitHub's pagination)."""
    for part in (link_header or "").split(","):
        pieces = part.split(";")
        target = pieces[0].strip()
        if not (target.startswith("<") and target.endswith(">")):
            continue
        for param in pieces[1:]:
            name, _, value = param.strip().partition("=")
            if name.strip() == "rel" and "next" in value.strip().strip('"').split():
                return target[1:-1]
    return None
