"""A fake GitHub and GitLab comment API on 127.0.0.1, for the publishing tests.

Comments live in memory; every request is recorded (method, path, headers, body);
lists are paginated at ``page_size`` (GitHub through ``Link: rel="next"``, GitLab
through ``X-Next-Page``) whatever ``per_page`` asks, so that tests reach page 3
with a handful of comments. Failures can be queued (``fail_next``), writes forbidden
(``forbid_writes``), and GitLab's job token refused as on most real instances.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

GITHUB_LIST = re.compile(r"^/repos/([^/]+)/([^/]+)/issues/(\d+)/comments$")
GITHUB_ONE = re.compile(r"^/repos/([^/]+)/([^/]+)/issues/comments/(\d+)$")
GITLAB_LIST = re.compile(r"^/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes$")
GITLAB_ONE = re.compile(r"^/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes/(\d+)$")


@dataclass
class Recorded:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # lower-case names
    body: Any


@dataclass
class FakeForge:
    token: str = "s3cr3t-token-value"
    page_size: int = 2
    forbid_writes: bool = False  # every POST/PATCH/PUT answers 403
    job_token_can_write: bool = False  # as on most GitLab instances
    echo_credentials: bool = False  # a 403 that repeats the token back (to test masking)
    threads: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    queued: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    next_id: int = 1000
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        forge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep the test output clean

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                headers = {k.lower(): v for k, v in self.headers.items()}
                with forge.lock:
                    forge.requests.append(Recorded(self.command, self.path, headers, body))
                    status, extra, data = forge.answer(self.command, self.path, headers, body)
                payload = b"" if data is None else json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeForge:
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- what tests set up and inspect -------------------------------------------------

    def fail_next(self, status: int, headers: dict[str, str] | None = None,
                  times: int = 1) -> None:
        self.queued += [(status, headers or {})] * times

    def seed(self, thread: str, *bodies: str, author: str = "someone") -> None:
        """Comments by other people (or earlier runs) on ``thread``."""
        for body in bodies:
            self._add(thread, body, author)

    def comments(self, thread: str) -> list[dict[str, Any]]:
        return list(self.threads.get(thread, []))

    # -- the API -----------------------------------------------------------------------

    def _add(self, thread: str, body: str, author: str) -> dict[str, Any]:
        self.next_id += 1
        comment = {"id": self.next_id, "body": body, "user": {"login": author},
                   "author": {"username": author}, "system": False,
                   "html_url": f"https://github.example/{thread}#issuecomment-{self.next_id}"}
        self.threads.setdefault(thread, []).append(comment)
        return comment

    def _authorised(self, headers: dict[str, str]) -> tuple[bool, bool]:
        """(known credentials, may write)."""
        if headers.get("authorization") == f"Bearer {self.token}":
            return True, True
        if headers.get("private-token") == self.token:
            return True, True
        if headers.get("job-token") == self.token:
            return True, self.job_token_can_write
        return False, False

    def answer(self, method: str, path: str, headers: dict[str, str],
               body: Any) -> tuple[int, dict[str, str], Any]:
        if self.queued:
            status, extra = self.queued.pop(0)
            return status, extra, {"message": f"queued failure {status}"}
        known, may_write = self._authorised(headers)
        if not known:
            return 401, {}, {"message": "Bad credentials"}
        if method != "GET" and (self.forbid_writes or not may_write):
            said = "Resource not accessible by integration"
            if self.echo_credentials:
                said += f" (credentials {headers.get('authorization') or headers})"
            return 403, {}, {"message": said}
        parts = urllib.parse.urlsplit(path)
        query = urllib.parse.parse_qs(parts.query)
        route = urllib.parse.unquote(parts.path)
        if match := GITHUB_LIST.match(parts.path):
            thread = f"{match[1]}/{match[2]}#{match[3]}"
            if method == "POST":
                return 201, {}, self._add(thread, body["body"], "sluice-bot")
            return self._page(thread, int(query.get("page", ["1"])[0]), path, github=True)
        if match := GITHUB_ONE.match(parts.path):
            return self._edit(int(match[3]), body)
        if (match := GITLAB_LIST.match(parts.path)) is not None:
            thread = f"{urllib.parse.unquote(match[1])}!{match[2]}"
            if method == "POST":
                note = self._add(thread, body["body"], "sluice-bot")
                return 201, {}, {k: v for k, v in note.items() if k != "html_url"}
            return self._page(thread, int(query.get("page", ["1"])[0]), path, github=False)
        if match := GITLAB_ONE.match(parts.path):
            return self._edit(int(match[3]), body)
        return 404, {}, {"message": f"no route {method} {route}"}

    def _page(self, thread: str, page: int, path: str,
              github: bool) -> tuple[int, dict[str, str], Any]:
        items = self.threads.get(thread, [])
        start = (page - 1) * self.page_size
        chunk = items[start:start + self.page_size]
        more = start + self.page_size < len(items)
        headers: dict[str, str] = {}
        if github and more:
            base = path.split("?")[0]
            headers["Link"] = (f'<{self.url}{base}?per_page=100&page={page + 1}>; rel="next", '
                               f'<{self.url}{base}?page=1>; rel="first"')
        if not github:
            headers["X-Next-Page"] = str(page + 1) if more else ""
            headers["X-Page"] = str(page)
        return 200, headers, chunk

    def _edit(self, comment_id: int, body: Any) -> tuple[int, dict[str, str], Any]:
        for comments in self.threads.values():
            for comment in comments:
                if comment["id"] == comment_id:
                    comment["body"] = body["body"]
                    return 200, {}, comment
        return 404, {}, {"message": "Not Found"}
