"""Publishing to a GitLab merge request: one note, found by its marker and edited.

The REST endpoints (API v4): ``GET/POST /projects/:id/merge_requests/:iid/notes`` (pages
followed through ``X-Next-Page``) and ``PUT /projects/:id/merge_requests/:iid/notes/:note_id``.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping

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
from sluice.util.http import ApiClient, HttpFailure

MAX_PAGES = 1000
JOB_TOKEN = "CI_JOB_TOKEN"
TOKEN_HINT = ("create a project access token (role Reporter or higher, scope `api`) and store "
              "it as a masked CI/CD variable named SLUICE_GITLAB_TOKEN")


class GitLabPublisher:
    name: str = "gitlab"
    body_limit: int = 1_000_000
    token_variables: tuple[str, ...] = ("SLUICE_GITLAB_TOKEN", "GITLAB_TOKEN", JOB_TOKEN)

    def detect(self, env: Mapping[str, str], options: PublishOptions) -> Target:
        server = (env.get("CI_SERVER_URL") or "").rstrip("/")
        api_url = (env.get("CI_API_V4_URL") or (f"{server}/api/v4" if server else "")
                   or "https://gitlab.com/api/v4").rstrip("/")
        project = options.repository or env.get("CI_PROJECT_ID", "")
        if not project:
            raise PublishError("no GitLab project to publish to",
                               hint="run in GitLab CI (it sets CI_PROJECT_ID) or pass "
                                    "--repository PROJECT_ID or GROUP/NAME")
        iid = options.pr or positive_int(env.get("CI_MERGE_REQUEST_IID"),
                                         "CI_MERGE_REQUEST_IID")
        if iid is None:
            raise PublishError("this pipeline is not for a merge request "
                               "(CI_MERGE_REQUEST_IID is not set)",
                               hint="run the job in merge request pipelines (`rules: - if: "
                                    "$CI_PIPELINE_SOURCE == \"merge_request_event\"`) or pass "
                                    "--pr IID")
        token = first_token(env, self.token_variables)
        if token is None:
            raise PublishError("no GitLab token: none of SLUICE_GITLAB_TOKEN, GITLAB_TOKEN or "
                               "CI_JOB_TOKEN is set", hint=TOKEN_HINT)
        if options.repository is None:
            web = env.get("CI_MERGE_REQUEST_PROJECT_URL") or env.get("CI_PROJECT_URL")
        else:
            base = server or api_url.removesuffix("/api/v4")
            web = f"{base}/{project}" if "/" in project else None
        return Target(platform=self.name, api_url=api_url, repository=project, number=iid,
                      token=token[0], token_source=token[1],
                      run_url=env.get("CI_JOB_URL") or env.get("CI_PIPELINE_URL") or None,
                      web_url=web.rstrip("/") if web else None)

    def client(self, target: Target, timeout_s: float) -> ApiClient:
        header = "JOB-TOKEN" if target.token_source == JOB_TOKEN else "PRIVATE-TOKEN"
        return ApiClient(target.api_url, {header: target.token}, secrets=(target.token,),
                         timeout_s=timeout_s)

    def artifact_url(self, target: Target, path: str) -> str | None:
        run = target.run_url
        if run is None or "/-/jobs/" not in run:
            return run  # a pipeline page lists its jobs, and each job its artifacts
        way = "browse" if path.endswith("/") else "file"  # `file` shows an image inline
        return f"{run.rstrip('/')}/artifacts/{way}/{urllib.parse.quote(path, safe='/')}"

    def _notes(self, target: Target) -> str:
        project = urllib.parse.quote(target.repository, safe="")
        return f"/projects/{project}/merge_requests/{target.number}/notes"

    def _link(self, target: Target, note_id: int) -> str | None:
        if target.web_url is None:
            return None
        return f"{target.web_url}/-/merge_requests/{target.number}#note_{note_id}"

    def find_comment(self, api: ApiClient, target: Target, mark: str) -> Comment | None:
        page: str | None = "1"
        for _ in range(MAX_PAGES):
            if not page:
                return None
            url = api.url(self._notes(target), {"per_page": 100, "sort": "asc",
                                                "order_by": "created_at", "page": page})
            reply = api.request("GET", url)
            if not isinstance(reply.data, list):
                raise HttpFailure("GET", url, reply.status, "expected a list of notes")
            for note in reply.data:
                if isinstance(note, dict) and not note.get("system") \
                        and is_ours(note.get("body"), mark):
                    return Comment(int(note["id"]), self._link(target, int(note["id"])))
            page = reply.headers.get("x-next-page", "").strip()
        return None

    def create_comment(self, api: ApiClient, target: Target, body: str) -> Comment:
        reply = api.request("POST", api.url(self._notes(target)), {"body": body})
        note_id = int(reply.data["id"])
        return Comment(note_id, self._link(target, note_id))

    def update_comment(self, api: ApiClient, target: Target, comment: Comment,
                       body: str) -> Comment:
        api.request("PUT", api.url(f"{self._notes(target)}/{comment.id}"), {"body": body})
        return comment

    def explain(self, target: Target, failure: HttpFailure) -> PublishError:
        def specific(status: int, said: str) -> PublishError | None:
            if status in (401, 403) and target.token_source == JOB_TOKEN:
                return PublishError(said, hint="the only token is CI_JOB_TOKEN, and GitLab's CI "
                                               "job token cannot post merge request notes on "
                                               f"most instances; {TOKEN_HINT}")
            if status == 403:
                return PublishError(said, hint="the token may not comment on this merge "
                                               "request: it needs the `api` scope and the "
                                               "Reporter role or higher")
            if status == 404:
                return PublishError(said, hint=f"check that project `{target.repository}` has "
                                               f"merge request !{target.number} and the token "
                                               "can see it")
            return None

        return explain_failure("GitLab", "merge request", target, failure, "CI_API_V4_URL",
                               TOKEN_HINT, specific)
