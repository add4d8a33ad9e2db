"""Publishing reports: environment detection, comment bodies, HTTP retries, and update in place
against a fake GitHub/GitLab API on 127.0.0.1 (in process: fast)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from sluice.errors import PublishError, UsageError
from sluice.report.publish import PUBLISHERS, PublishOptions, publish_report
from sluice.report.publish.base import marker
from sluice.report.publish.body import fit, rewrite_images
from sluice.util.http import ApiClient, HttpFailure, RetryPolicy, next_link, retry_after_s
from sluice.workspace.project import Project
from tests.e2e.forge_server import FakeForge

RUN = "20261129T090105-b055ae"
TOKEN = "s3cr3t-token-value"


def _project(root: Path, tier: str = "pr", markdown: str | None = None) -> Project:
    """A project folder holding one run report, as ``sluice run`` leaves it."""
    folder = root / ".sluice" / "reports" / f"{RUN}-{tier}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps({"run_id": f"{RUN}-{tier}", "tier": tier}))
    (folder / "report.md").write_text(markdown or (
        f"## sluice · tier `{tier}`\n\n| stage | status |\n| --- | --- |\n| train | ran |\n\n"
        "![churn-roc.png](churn-roc.png)\n"))
    (root / ".sluice" / "reports" / "latest").write_text(f"{RUN}-{tier}")
    return cast(Project, SimpleNamespace(root=root, state_dir=root / ".sluice"))


def _github_env(forge: FakeForge, tmp_path: Path, number: int = 7,
                **extra: str) -> dict[str, str]:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": number}}))
    return {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "octo/app", "GITHUB_RUN_ID": "99",
            "GITHUB_EVENT_PATH": str(event), "GITHUB_API_URL": forge.url,
            "GITHUB_SERVER_URL": "https://github.example", "GITHUB_TOKEN": TOKEN, **extra}


def _gitlab_env(forge: FakeForge, **extra: str) -> dict[str, str]:
    return {"GITLAB_CI": "true", "CI_API_V4_URL": f"{forge.url}/api/v4", "CI_PROJECT_ID": "42",
            "CI_MERGE_REQUEST_IID": "5", "CI_PROJECT_URL": "https://gitlab.example/team/app",
            "CI_JOB_URL": "https://gitlab.example/team/app/-/jobs/314", **extra}


def _ours(forge: FakeForge, thread: str, key: str) -> list[dict[str, Any]]:
    return [c for c in forge.comments(thread) if c["body"].startswith(marker(key))]


# -- pure helpers --------------------------------------------------------------------------

def test_next_link_follows_rel_next_only() -> None:
    header = ('<https://api.example/x?page=3>; rel="next", '
              '<https://api.example/x?page=9>; rel="last"')
    assert next_link(header) == "https://api.example/x?page=3"
    assert next_link('<https://api.example/x?page=1>; rel="prev"') is None
    assert next_link(None) is None


def test_retry_after_reads_seconds_and_dates() -> None:
    from datetime import UTC, datetime

    assert retry_after_s("12") == 12.0
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_s("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30.0
    assert retry_after_s("soon") is None and retry_after_s(None) is None


def test_local_images_become_links_or_served_images() -> None:
    text = "a\n![churn-roc.png](churn-roc.png)\n![x](https://cdn.example/x.png)\n"
    linked = rewrite_images(text, ".sluice/reports/r1", None,
                            lambda path: f"https://ci.example/artifacts/{path}")
    assert "[📈 churn-roc.png](https://ci.example/artifacts/.sluice/reports/r1/churn-roc.png)" \
        in linked
    assert "![churn-roc.png](churn-roc.png)" not in linked
    assert "![x](https://cdn.example/x.png)" in linked  # already reachable: kept
    served = rewrite_images(text, ".sluice/reports/r1", "https://img.example/run 1/",
                            lambda path: None)
    assert "![churn-roc.png](https://img.example/run 1/churn-roc.png)" in served
    unlinked = rewrite_images(text, ".sluice/reports/r1", None, lambda path: None)
    assert "`churn-roc.png` (plot in `.sluice/reports/r1/`, not uploaded)" in unlinked


def test_fit_truncates_at_a_line_with_a_note() -> None:
    body = "".join(f"| row {i} | {'x' * 50} |\n" for i in range(2000))
    assert fit("short", 100, "there") == ("short", False)
    cut, truncated = fit(body, 10_000, "[the artifacts](https://ci.example/run)")
    assert truncated and len(cut) <= 10_000
    kept = cut.split("\n\n---\n")[0]
    assert body.startswith(kept + "\n")  # whole lines only
    assert "Report truncated" in cut and "https://ci.example/run" in cut


def test_marker_keys_are_checked() -> None:
    assert marker("pr") == "<!-- sluice-report:pr -->"
    with pytest.raises(UsageError):
        marker("a -->b")


# -- detection -----------------------------------------------------------------------------

def test_github_detection_reads_the_event_and_prefers_sluice_token(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {
        "number": 12, "head": {"repo": {"full_name": "someone/app"}},
        "base": {"repo": {"full_name": "octo/app"}}}}))
    env = {"GITHUB_REPOSITORY": "octo/app", "GITHUB_EVENT_PATH": str(event),
           "GITHUB_RUN_ID": "5", "GITHUB_TOKEN": "plain-token",
           "SLUICE_GITHUB_TOKEN": "sluice-token"}
    target = PUBLISHERS["github"].detect(env, PublishOptions())
    assert (target.repository, target.number, target.fork) == ("octo/app", 12, True)
    assert target.token == "sluice-token" and target.token_source == "SLUICE_GITHUB_TOKEN"
    assert target.api_url == "https://api.github.com"
    assert target.run_url == "https://github.com/octo/app/actions/runs/5"
    assert "sluice-token" not in repr(target)
    event.write_text(json.dumps({"workflow_run": {"pull_requests": [{"number": 3}]}}))
    assert PUBLISHERS["github"].detect(env, PublishOptions()).number == 3
    overridden = PUBLISHERS["github"].detect(env, PublishOptions(pr=9, repository="a/b"))
    assert (overridden.repository, overridden.number) == ("a/b", 9)
    event.write_text(json.dumps({"ref": "refs/heads/main"}))  # a push: no pull request
    with pytest.raises(PublishError, match="not for a pull request"):
        PUBLISHERS["github"].detect(env, PublishOptions())


def test_gitlab_detection_and_job_token_header() -> None:
    env = {"CI_API_V4_URL": "https://gitlab.example/api/v4", "CI_PROJECT_ID": "42",
           "CI_MERGE_REQUEST_IID": "5", "CI_JOB_TOKEN": "job-token-value",
           "CI_JOB_URL": "https://gitlab.example/g/p/-/jobs/8"}
    gitlab = PUBLISHERS["gitlab"]
    target = gitlab.detect(env, PublishOptions())
    assert (target.repository, target.number, target.token_source) == ("42", 5, "CI_JOB_TOKEN")
    assert gitlab.client(target, 5).headers == {"JOB-TOKEN": "job-token-value"}
    assert gitlab.artifact_url(target, ".sluice/reports/r/a.png") == \
        "https://gitlab.example/g/p/-/jobs/8/artifacts/file/.sluice/reports/r/a.png"
    assert gitlab.artifact_url(target, ".sluice/reports/r/") == \
        "https://gitlab.example/g/p/-/jobs/8/artifacts/browse/.sluice/reports/r/"
    with_pat = gitlab.detect({**env, "GITLAB_TOKEN": "pat-value"}, PublishOptions())
    assert gitlab.client(with_pat, 5).headers == {"PRIVATE-TOKEN": "pat-value"}
    with pytest.raises(PublishError, match="not for a merge request"):
        gitlab.detect({**env, "CI_MERGE_REQUEST_IID": ""}, PublishOptions())


# -- HTTP ----------------------------------------------------------------------------------

def test_retries_honour_retry_after_within_bounds() -> None:
    waits: list[float] = []
    with FakeForge() as forge:
        api = ApiClient(forge.url, {"Authorization": f"Bearer {TOKEN}"}, secrets=(TOKEN,),
                        retry=RetryPolicy(attempts=4, max_delay_s=30), sleep=waits.append)
        forge.fail_next(429, {"Retry-After": "7"})
        forge.fail_next(503, {"Retry-After": "100000"})
        forge.fail_next(500)
        reply = api.request("GET", api.url("/repos/octo/app/issues/1/comments"))
        assert reply.status == 200 and reply.data == []
        assert waits == [7.0, 30.0, 4.0]  # as asked, capped, then the doubled back-off
        forge.fail_next(500, times=4)
        with pytest.raises(HttpFailure) as failed:
            api.request("GET", api.url("/repos/octo/app/issues/1/comments"))
        assert failed.value.status == 500 and len(forge.requests) == 8
        forge.fail_next(404)  # a refusal that will not change: no retry
        with pytest.raises(HttpFailure):
            api.request("GET", api.url("/x"))
        assert len(forge.requests) == 9


def test_unreachable_server_and_foreign_next_links() -> None:
    waits: list[float] = []
    with FakeForge() as forge:
        url = forge.url
    api = ApiClient(url, {}, retry=RetryPolicy(attempts=2), sleep=waits.append)
    with pytest.raises(HttpFailure, match="could not reach the server"):
        api.request("GET", api.url("/repos"))
    assert waits == [1.0]
    with pytest.raises(HttpFailure, match="refusing to send the token"):
        api.request("GET", "https://elsewhere.example/repos")


# -- publishing ----------------------------------------------------------------------------

def test_github_creates_then_updates_the_one_comment_found_on_page_three(
        tmp_path: Path) -> None:
    project = _project(tmp_path)
    thread = "octo/app#7"
    with FakeForge() as forge:
        env = _github_env(forge, tmp_path)
        first = publish_report(project, None, PublishOptions(), env)
        assert first.published and first.action == "created"
        assert first.url == f"https://github.example/{thread}#issuecomment-{first.comment_id}"
        # Other people comment: sluice's comment now sits on page 3 of 2-comment pages.
        forge.seed(thread, "review a", "review b", "review c", "review d")
        comments = forge.threads[thread]
        comments.append(comments.pop(0))
        forge.seed(thread, f"> {marker('pr')} quoted by a reviewer")
        forge.requests.clear()
        second = publish_report(project, None, PublishOptions(), env)
        assert second.action == "updated" and second.comment_id == first.comment_id
        assert [(r.method, r.path.split("?")[1] if "?" in r.path else "")
                for r in forge.requests] == [
            ("GET", "per_page=100"), ("GET", "per_page=100&page=2"),
            ("GET", "per_page=100&page=3"), ("PATCH", "")]
        assert len(_ours(forge, thread, "pr")) == 1
        assert [c["body"] for c in forge.comments(thread) if c["user"]["login"] != "sluice-bot"
                ] == ["review a", "review b", "review c", "review d",
                      f"> {marker('pr')} quoted by a reviewer"]  # untouched
        assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in forge.requests)
        body = _ours(forge, thread, "pr")[0]["body"]
        assert "[📈 churn-roc.png](https://github.example/octo/app/actions/runs/99)" in body


def test_each_tier_keeps_its_own_comment(tmp_path: Path) -> None:
    with FakeForge() as forge:
        env = _github_env(forge, tmp_path)
        for tier in ("pr", "merge", "pr", "merge"):
            publish_report(_project(tmp_path, tier), None, PublishOptions(), env)
        assert len(forge.comments("octo/app#7")) == 2
        assert len(_ours(forge, "octo/app#7", "pr")) == 1
        assert len(_ours(forge, "octo/app#7", "merge")) == 1
        publish_report(_project(tmp_path, "pr"), None, PublishOptions(key="churn-pr"), env)
        assert len(forge.comments("octo/app#7")) == 3


def test_gitlab_notes_are_updated_in_place_with_a_private_token(tmp_path: Path) -> None:
    project = _project(tmp_path)
    with FakeForge() as forge:
        forge.seed("42!5", "first", "second", "third")
        env = _gitlab_env(forge, GITLAB_TOKEN=TOKEN, CI_JOB_TOKEN="job-token-value")
        first = publish_report(project, None, PublishOptions(), env)
        forge.seed("42!5", "fourth")
        second = publish_report(project, None, PublishOptions(), env)
        assert (first.action, second.action) == ("created", "updated")
        assert second.url == f"https://gitlab.example/team/app/-/merge_requests/5#note_" \
                             f"{first.comment_id}"
        assert len(_ours(forge, "42!5", "pr")) == 1 and len(forge.comments("42!5")) == 5
        assert all(r.headers.get("private-token") == TOKEN and "job-token" not in r.headers
                   for r in forge.requests)
        assert [r.method for r in forge.requests][-3:] == ["GET", "GET", "PUT"]
        body = _ours(forge, "42!5", "pr")[0]["body"]
        assert "(https://gitlab.example/team/app/-/jobs/314/artifacts/file/.sluice/reports/" \
               f"{RUN}-pr/churn-roc.png)" in body


def test_refusals_are_explained_masked_and_only_fatal_when_required(tmp_path: Path) -> None:
    project = _project(tmp_path)
    with FakeForge(echo_credentials=True, forbid_writes=True) as forge:
        env = _github_env(forge, tmp_path)
        soft = publish_report(project, None, PublishOptions(), env)
        assert not soft.published and soft.error is not None
        assert "HTTP 403 on POST" in soft.error and "pull-requests: write" in soft.error
        assert TOKEN not in soft.error and "***" in soft.error
        with pytest.raises(PublishError) as hard:
            publish_report(project, None, PublishOptions(require=True), env)
        assert TOKEN not in hard.value.render()
        job = publish_report(project, None, PublishOptions(),
                             _gitlab_env(forge, CI_JOB_TOKEN=TOKEN))
        assert job.error is not None and "CI_JOB_TOKEN" in job.error
        assert "cannot post merge request notes" in job.error and TOKEN not in job.error
    fork_event = tmp_path / "fork.json"
    fork_event.write_text(json.dumps({"pull_request": {
        "number": 7, "head": {"repo": {"full_name": "someone/app"}},
        "base": {"repo": {"full_name": "octo/app"}}}}))
    with FakeForge(forbid_writes=True) as forge:
        fork = publish_report(project, None, PublishOptions(), {
            **_github_env(forge, tmp_path), "GITHUB_EVENT_PATH": str(fork_event)})
        assert fork.error is not None
        assert "no write access to pull requests from forks" in fork.error
        assert "workflow_run" in fork.error
    missing = publish_report(project, None, PublishOptions(pr=3), {
        "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "o/r", "GITHUB_TOKEN": ""})
    assert missing.error is not None and "no GitHub token" in missing.error


def test_long_reports_are_truncated_with_a_link_to_the_artifacts(tmp_path: Path) -> None:
    long = "## sluice\n\n" + "".join(f"| stage{i} | ran | {'why ' * 20} |\n"
                                     for i in range(1000))
    project = _project(tmp_path, markdown=long)
    with FakeForge() as forge:
        forge.fail_next(500, {"Retry-After": "0"})
        result = publish_report(project, None, PublishOptions(), _github_env(forge, tmp_path))
        assert result.published and result.truncated
        body = forge.comments("octo/app#7")[0]["body"]
        assert len(body) <= 65_536 and "Report truncated" in body
        assert "(https://github.example/octo/app/actions/runs/99)" in body
        assert [r.method for r in forge.requests] == ["GET", "GET", "POST"]  # 500 retried


def test_a_jenkins_pull_request_build_is_read_from_change_url() -> None:
    from sluice.report.publish.base import PublishOptions
    from sluice.report.publish.jenkins import from_jenkins

    env, options = from_jenkins({"CHANGE_ID": "12", "CHANGE_URL":
                                 "https://github.com/octo/app/pull/12"}, PublishOptions())
    assert (options.platform, options.repository, options.pr) == ("github", "octo/app", 12)
    assert env["GITHUB_API_URL"] == "https://api.github.com"
    env, options = from_jenkins({"CHANGE_ID": "7", "CHANGE_URL":
                                 "https://ghe.example.com/octo/app/pull/7"}, PublishOptions())
    assert env["GITHUB_API_URL"] == "https://ghe.example.com/api/v3"
    env, options = from_jenkins({"CHANGE_ID": "3", "CHANGE_URL":
                                 "https://gitlab.example.com/ml/team/churn/-/merge_requests/3"},
                                PublishOptions(pr=None))
    assert (options.platform, options.repository, options.pr) == ("gitlab", "ml/team/churn", 3)
    assert env["CI_API_V4_URL"] == "https://gitlab.example.com/api/v4"
    # Not a pull request build, or explicit options: left as they are.
    plain = {"BUILD_ID": "1"}
    assert from_jenkins(plain, PublishOptions()) == (plain, PublishOptions())
    _, kept = from_jenkins({"CHANGE_ID": "12", "CHANGE_URL": "https://github.com/o/r/pull/12"},
                           PublishOptions(pr=99, repository="x/y"))
    assert (kept.pr, kept.repository) == (99, "x/y")


@pytest.mark.parametrize("env", [
    {"GITHUB_ACTIONS": "true"}, {"GITLAB_CI": "true"}, {"GITHUB_ACTIONS": "True"},
    {"GITLAB_CI": "TRUE"}, {"GITHUB_ACTIONS": "false", "GITLAB_CI": "true"},
    {"JENKINS_URL": "https://ci.example.com/", "GITLAB_CI": "true"}, {"CIRCLECI": "true"}, {},
])
def test_publish_detects_the_ci_system_as_the_rest_of_sluice(env: dict[str, str]) -> None:
    """One CI detection (ci.base.ci_system) for publishing, --base auto and annotations."""
    from sluice.ci.base import ci_system
    from sluice.report.publish.core import detect_platform

    system = ci_system(env)
    if system in PUBLISHERS:
        assert detect_platform(env, PublishOptions()) == system
    else:
        with pytest.raises(PublishError, match="cannot tell where to publish"):
            detect_platform(env, PublishOptions())
