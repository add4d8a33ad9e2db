"""What every publisher shares: the options, where a report goes, and the ``Publisher`` protocol.

A publisher knows one forge's API (GitHub, GitLab): how to read its CI environment,
how to find sluice's earlier comment on a pull/merge request, how to create or
update it, where the CI run's artifacts can be seen, and how to explain a refusal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from sluice.errors import PublishError, UsageError
from sluice.util.http import ApiClient, HttpFailure

MARKER_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class PublishOptions:
    """What ``sluice report --publish`` was asked; None means "from the CI environment"."""

    platform: str | None = None
    pr: int | None = None
    repository: str | None = None
    image_base_url: str | None = None
    key: str | None = None  # the comment's marker key [default: the report's tier]
    require: bool = False  # a failure to publish is an error, not a warning
    timeout_s: float = 30.0


@dataclass(frozen=True)
class Target:
    """One pull/merge request on one forge, and how to reach it."""

    platform: str
    api_url: str
    repository: str  # GitHub "owner/name"; GitLab project id or "group/name"
    number: int  # pull request number / merge request iid
    token: str = field(repr=False)
    token_source: str = ""  # the environment variable it came from (never its value)
    run_url: str | None = None  # GitHub: the Actions run page; GitLab: the job page
    web_url: str | None = None  # GitLab: the project's page (to link a note)
    fork: bool = False  # GitHub: the pull request comes from a fork

    def describe(self) -> str:
        sign = "#" if self.platform == "github" else "!"
        return f"{self.repository}{sign}{self.number}"


@dataclass(frozen=True)
class Comment:
    id: int
    url: str | None


def marker(key: str) -> str:
    """The hidden line that identifies sluice's comment for one tier (or key)."""
    if not MARKER_KEY.match(key):
        raise UsageError(f"`{key}` cannot key a report comment",
                         hint="use letters, digits, `.`, `_` and `-` (at most 64)")
    return f"<!-- sluice-report:{key} -->"


def is_ours(body: object, mark: str) -> bool:
    """A comment is sluice's when it *starts* with the marker: a reply quoting it is not."""
    return isinstance(body, str) and body.lstrip().startswith(mark)


def first_token(env: Mapping[str, str], names: tuple[str, ...]) -> tuple[str, str] | None:
    """(value, name) of the first non-empty token variable."""
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value, name
    return None


def positive_int(value: object, what: str) -> int | None:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    if number <= 0:
        raise PublishError(f"{what} is {value}, not a pull/merge request number",
                           hint="pass --pr NUMBER")
    return number


class Publisher(Protocol):
    """One forge's way of putting a report on a pull/merge request."""

    name: str
    body_limit: int  # the longest comment the forge accepts, in characters
    token_variables: tuple[str, ...]

    def detect(self, env: Mapping[str, str], options: PublishOptions) -> Target:
        """The target from the CI environment and the options; raises PublishError."""
        ...

    def client(self, target: Target, timeout_s: float) -> ApiClient: ...

    def artifact_url(self, target: Target, path: str) -> str | None:
        """Where a file (or a folder, ending in ``/``) of the run's artifacts can be seen."""
        ...

    def find_comment(self, api: ApiClient, target: Target, mark: str) -> Comment | None: ...

    def create_comment(self, api: ApiClient, target: Target, body: str) -> Comment: ...

    def update_comment(self, api: ApiClient, target: Target, comment: Comment,
                       body: str) -> Comment: ...

    def explain(self, target: Target, failure: HttpFailure) -> PublishError:
        """A refusal turned into what went wrong and what to do about it."""
        ...


def explain_failure(forge: str, request: str, target: Target, failure: HttpFailure,
                    api_variable: str, token_hint: str,
                    specific: Callable[[int, str], PublishError | None]) -> PublishError:
    """A forge's refusal as what went wrong and what to do: ``specific`` answers the
    statuses that differ between forges, the rest is said the same way for both."""
    where = f"publishing to {forge} {request} {target.describe()} failed"
    status, detail = failure.status, failure.detail
    if status is None:
        return PublishError(f"{where}: {detail}",
                            hint=f"check the network and {api_variable} ({target.api_url})")
    said = f"{where}: HTTP {status} on {failure.method} ({detail})"
    answer = specific(status, said)
    if answer is not None:
        return answer
    if status == 401:
        return PublishError(said, hint=f"the token in {target.token_source} is invalid or "
                                       f"expired; {token_hint}")
    if status >= 500 or status == 429:
        return PublishError(said, hint=f"{forge} is busy or having trouble; publish again later")
    return PublishError(said, hint=f"{forge} refused the request for the reason it gives above")
