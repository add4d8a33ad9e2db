"""Publishing to a GitHub pull request: one issue comment, found by its marker and edited.

The REST endpoints: ``GET/POST /repos/{owner}/{repo}/issues/{number}/comments`` (pages
followed through ``Link: rel="next"``) and ``PATCH /repos/{owner}/{repo}/issues/comments/{id}``.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any

from sluice.ci.revision import github_event
from sluice.errors import PublishError
from sluice.report.publish.base import (
    Comment,
    PublishOptions,
    Target,
    explain_failure,
    first_token,
    is_ours,
    positive_int,
)
from sluice.util.http import ApiClient, HttpFailure, next_link

MAX_PAGES = 1000  # 100 comments a page: far beyond any real pull request
TOKEN_HINT = ("in the workflow, give the job `permissions: pull-requests: write` and "
              "`env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}`")


def _pr_number(event: dict[str, Any]) -> int | None:
    """The pull request of a ``pull_request(_target)``, ``issue_comment`` on a pull request,
    or ``workflow_run`` event (the way fork pull requests get a write token)."""
    pull = event.get("pull_request")
    if isinstance(pull, dict) and pull.get("number") is not None:
        return positive_int(pull["number"], "the event's pull_request.number")
    issue = event.get("issue")
    if isinstance(issue, dict) and issue.get("pull_request") and issue.get("number"):
        return positive_int(issue["number"], "the event's issue.number")
    run = event.get("workflow_run")
    pulls = run.get("pull_requests") if isinstance(run, dict) else None
    if isinstance(pulls, list) and pulls and isinstance(pulls[0], dict):
        return positive_int(pulls[0].get("number"), "the workflow_run's pull request")
    return None


def _is_fork(event: dict[str, Any]) -> bool:
    pull = event.get("pull_request")
    if not isinstance(pull, dict):
        return False
    names = [((pull.get(side) or {}).get("repo") or {}).get("full_name")
             for side in ("head", "base")]
    return bool(names[0] and names[1] and names[0] != names[1])


class GitHubPublisher:
    name: str = "github"
    body_limit: int = 65_536
    token_variables: tuple[str, ...] = ("SLUICE_GITHUB_TOKEN", "GITHUB_TOKEN")

    def detect(self, env: Mapping[str, str], options: PublishOptions) -> Target:
        repository = options.repository or env.get("GITHUB_REPOSITORY", "")
        if repository.count("/") != 1 or not all(repository.split("/")):
            raise PublishError(
                "no GitHub repository to publish to" if not repository
                else f"`{repository}` is not a GitHub repository name",
                hint="run in GitHub Actions (it sets GITHUB_REPOSITORY) or pass "
                     "--repository OWNER/NAME")
        event = github_event(env)
        number = options.pr or _pr_number(event)
        if number is None:
            path = env.get("GITHUB_EVENT_PATH")
            why = ("GITHUB_EVENT_PATH is not set" if not path else
                   f"GITHUB_EVENT_PATH ({path}) cannot be read as an event" if not event else
                   "the event in GITHUB_EVENT_PATH has no pull request number")
            raise PublishError(
                f"this run is not for a pull request ({why})",
                hint="publish from a `pull_request` or `workflow_run` job, or pass --pr NUMBER")
        token = first_token(env, self.token_variables)
        if token is None:
            raise PublishError("no GitHub token: neither SLUICE_GITHUB_TOKEN nor GITHUB_TOKEN "
                               "is set", hint=TOKEN_HINT)
        server = (env.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/")
        run_id = env.get("GITHUB_RUN_ID")
        run_repo = env.get("GITHUB_REPOSITORY") or repository
        return Target(platform=self.name,
                      api_url=(env.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/"),
                      repository=repository, number=number, token=token[0],
                      token_source=token[1],
                      run_url=f"{server}/{run_repo}/actions/runs/{run_id}" if run_id else None,
                      fork=_is_fork(event))

    def client(self, target: Target, timeout_s: float) -> ApiClient:
        return ApiClient(target.api_url, {"Authorization": f"Bearer {target.token}",
                                          "Accept": "application/vnd.github+json",
                                          "X-GitHub-Api-Version": "2022-11-28"},
                         secrets=(target.token,), timeout_s=timeout_s)

    def artifact_url(self, target: Target, path: str) -> str | None:
        # An artifact is a zip: GitHub links the run's page, not the files inside.
        return target.run_url

    def _repo(self, target: Target) -> str:
        owner, name = target.repository.split("/")
        return f"/repos/{urllib.parse.quote(owner, safe='')}/{urllib.parse.quote(name, safe='')}"

    def find_comment(self, api: ApiClient, target: Target, mark: str) -> Comment | None:
        url: str | None = api.url(f"{self._repo(target)}/issues/{target.number}/comments",
                                  {"per_page": 100})
        for _ in range(MAX_PAGES):
            if url is None:
                return None
            page = api.request("GET", url)
            if not isinstance(page.data, list):
                raise HttpFailure("GET", url, page.status, "expected a list of comments")
            for comment in page.data:
                if isinstance(comment, dict) and is_ours(comment.get("body"), mark):
                    return Comment(int(comment["id"]), comment.get("html_url"))
            url = next_link(page.headers.get("link"))
        return None

    def create_comment(self, api: ApiClient, target: Target, body: str) -> Comment:
        reply = api.request("POST", api.url(
            f"{self._repo(target)}/issues/{target.number}/comments"), {"body": body})
        return Comment(int(reply.data["id"]), reply.data.get("html_url"))

    def update_comment(self, api: ApiClient, target: Target, comment: Comment,
                       body: str) -> Comment:
        reply = api.request("PATCH", api.url(
            f"{self._repo(target)}/issues/comments/{comment.id}"), {"body": body})
        return Comment(comment.id, reply.data.get("html_url") or comment.url)

    def explain(self, target: Target, failure: HttpFailure) -> PublishError:
        def specific(status: int, said: str) -> PublishError | None:
            if status == 403 and failure.headers.get("x-ratelimit-remaining") == "0":
                return PublishError(said, hint="the API rate limit is spent; publish again later")
            if status == 403 and target.fork:
                return PublishError(said, hint="the token has no write access to pull requests "
                                               "from forks; add `permissions: pull-requests: "
                                               "write` or publish from a `workflow_run` job "
                                               "(see docs/publish.md)")
            if status == 403:
                return PublishError(said, hint="the token may not comment on pull requests; add "
                                               "`permissions: pull-requests: write` to the job "
                                               "(a fine-grained token needs `Pull requests: "
                                               "write`)")
            if status == 404:
                return PublishError(said, hint=f"check that `{target.repository}` has pull "
                                               f"request #{target.number} and the token can "
                                               "see it")
            return None

        return explain_failure("GitHub", "pull request", target, failure, "GITHUB_API_URL",
                               TOKEN_HINT, specific)
