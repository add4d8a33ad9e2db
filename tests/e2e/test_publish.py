"""End-to-end: ``sluice report --publish`` posts a real run's report to a fake GitHub/GitLab
API on 127.0.0.1, updates the same comment on later pushes, and never fails a run for
a missing token unless ``--require-publish``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import sluice
from tests.e2e.forge_server import FakeForge
from tests.e2e.pipelines import MODEL_PIPELINE, PREDICT, write_project

TOKEN = "s3cr3t-token-value"
CONFIG = MODEL_PIPELINE + """\
    gates:
      - {metric: roc_auc, min: 0.6}
tiers:
  pr: {select: all}
  merge: {select: all}
"""
# Every variable that could leak in from a CI that runs these tests, blanked.
CLEAN = {name: "" for name in (
    "GITHUB_ACTIONS", "GITHUB_REPOSITORY", "GITHUB_EVENT_PATH", "GITHUB_API_URL",
    "GITHUB_SERVER_URL", "GITHUB_RUN_ID", "GITHUB_TOKEN", "SLUICE_GITHUB_TOKEN", "GITLAB_CI",
    "CI_API_V4_URL", "CI_SERVER_URL", "CI_PROJECT_ID", "CI_MERGE_REQUEST_IID", "CI_JOB_URL",
    "CI_PIPELINE_URL", "CI_PROJECT_URL", "CI_MERGE_REQUEST_PROJECT_URL", "GITLAB_TOKEN",
    "SLUICE_GITLAB_TOKEN", "CI_JOB_TOKEN")} | {"NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}


@pytest.fixture
def project(repo: Path) -> Path:
    write_project(repo, CONFIG, files={"predict.py": PREDICT,
                                       "params.yaml": "quality: 0.3\nrows: 300\n"})
    sluice(repo, "run", "--tier", "pr")
    return repo


def _github(forge: FakeForge, repo: Path, **extra: str) -> dict[str, str]:
    event = repo.parent / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7}}))
    return {**CLEAN, "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "octo/app",
            "GITHUB_EVENT_PATH": str(event), "GITHUB_API_URL": forge.url,
            "GITHUB_SERVER_URL": "https://github.example", "GITHUB_RUN_ID": "99",
            "GITHUB_TOKEN": TOKEN, **extra}


def _ours(forge: FakeForge, thread: str, tier: str) -> list[str]:
    return [c["body"] for c in forge.comments(thread)
            if c["body"].startswith(f"<!-- sluice-report:{tier} -->")]


@pytest.mark.slow
def test_github_comment_is_created_then_updated_per_tier(project: Path) -> None:
    with FakeForge() as forge:
        env = _github(forge, project)
        forge.seed("octo/app#7", "LGTM", "one question", "another")
        created = sluice(project, "report", "--publish", env=env)
        assert "published the report to octo/app#7 (created): https://github.example/" \
               "octo/app#7#issuecomment-" in created.stdout
        assert "### Model `churn`" in created.stdout  # the report is still shown
        sluice(project, "run", "--tier", "pr", env=CLEAN)  # a later push
        updated = json.loads(sluice(project, "report", "--publish", "--json", env=env).stdout)
        assert updated["tier"] == "pr" and updated["publish"]["action"] == "updated"
        assert updated["publish"]["url"].startswith("https://github.example/octo/app#7")
        pr_bodies = _ours(forge, "octo/app#7", "pr")
        assert len(pr_bodies) == 1 and updated["run_id"] in pr_bodies[0]
        assert "[📈 churn-roc.png](https://github.example/octo/app/actions/runs/99)" \
            in pr_bodies[0] and "![churn-roc.png](churn-roc.png)" not in pr_bodies[0]
        # The merge tier keeps its own comment; other people's comments are untouched.
        sluice(project, "run", "--tier", "merge", env=CLEAN)
        sluice(project, "report", "--publish", env=env)
        assert len(_ours(forge, "octo/app#7", "pr")) == 1
        assert len(_ours(forge, "octo/app#7", "merge")) == 1
        assert [c["body"] for c in forge.comments("octo/app#7")][:3] == \
            ["LGTM", "one question", "another"]
        assert {r.headers["authorization"] for r in forge.requests} == {f"Bearer {TOKEN}"}
        markdown = sluice(project, "report", "--format", "markdown", "--publish",
                          "--image-base-url", "https://img.example/plots", env=env)
        assert "published the report" in markdown.stderr  # stdout stays pure Markdown
        assert "![churn-roc.png](https://img.example/plots/churn-roc.png)" in \
            _ours(forge, "octo/app#7", "merge")[0]


def test_failures_warn_unless_publishing_is_required(project: Path) -> None:
    with FakeForge(echo_credentials=True) as forge:
        no_token = sluice(project, "report", "--publish",
                          env=_github(forge, project, GITHUB_TOKEN=""))
        assert "warning: the report was not published: no GitHub token" in no_token.stderr
        required = sluice(project, "report", "--require-publish", check=1,
                          env=_github(forge, project, GITHUB_TOKEN=""))
        assert "error: no GitHub token" in required.stderr
        forge.forbid_writes = True
        forbidden = sluice(project, "report", "--publish", env=_github(forge, project))
        assert "HTTP 403 on POST" in forbidden.stderr
        assert "permissions: pull-requests: write" in forbidden.stderr
        strict = sluice(project, "report", "--publish", "--require-publish", "--json", check=1,
                        env=_github(forge, project))
        for output in (forbidden.stdout, forbidden.stderr, strict.stdout, strict.stderr):
            assert TOKEN not in output
        forge.forbid_writes = False
        forge.fail_next(500, {"Retry-After": "0"})
        retried = sluice(project, "report", "--publish", env=_github(forge, project))
        assert "(created)" in retried.stdout
        assert [r.method for r in forge.requests][-3:] == ["GET", "GET", "POST"]
        outside_ci = sluice(project, "report", "--publish", env=CLEAN)
        assert "cannot tell where to publish" in outside_ci.stderr


def test_gitlab_job_token_is_explained_and_a_project_token_updates_in_place(
        project: Path) -> None:
    with FakeForge() as forge:
        env = {**CLEAN, "GITLAB_CI": "true", "CI_API_V4_URL": f"{forge.url}/api/v4",
               "CI_PROJECT_ID": "42", "CI_MERGE_REQUEST_IID": "5",
               "CI_PROJECT_URL": "https://gitlab.example/team/app",
               "CI_JOB_URL": "https://gitlab.example/team/app/-/jobs/314", "CI_JOB_TOKEN": TOKEN}
        job = sluice(project, "report", "--publish", env=env)
        assert "HTTP 403" in job.stderr and "CI_JOB_TOKEN" in job.stderr
        assert "SLUICE_GITLAB_TOKEN" in job.stderr and TOKEN not in job.stderr
        assert forge.requests[-1].headers["job-token"] == TOKEN
        env["SLUICE_GITLAB_TOKEN"] = TOKEN
        for action in ("created", "updated"):
            result = json.loads(sluice(project, "report", "--publish", "--json",
                                       env=env).stdout)["publish"]
            assert result["action"] == action
            assert result["url"] == "https://gitlab.example/team/app/-/merge_requests/5#note_" \
                                    f"{result['comment_id']}"
        assert len(_ours(forge, "42!5", "pr")) == 1
        assert forge.requests[-1].method == "PUT"
        assert forge.requests[-1].headers["private-token"] == TOKEN
        assert "/-/jobs/314/artifacts/file/.sluice/reports/" in _ours(forge, "42!5", "pr")[0]
