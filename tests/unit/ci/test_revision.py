"""``--base auto`` in each CI's environment, on real git repositories (shallow ones too)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from sluice.ci.base import ci_system
from sluice.ci.revision import explain_base, resolve_base
from sluice.errors import UsageError


def git(cwd: Path, *args: str, check: bool = True) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=check, capture_output=True,
                          text=True).stdout.strip()


def commit(repo: Path, name: str) -> str:
    (repo / f"{name}.txt").write_text(name)
    git(repo, "add", f"{name}.txt")
    git(repo, "commit", "-q", "-m", name)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def origin(tmp_path: Path) -> dict[str, str]:
    """main: m1..m5; feature branches from m2 and adds f1; main then moves on to m5."""
    repo = tmp_path / "origin"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for key, value in (("user.email", "t@example.com"), ("user.name", "T"),
                       ("commit.gpgsign", "false"), ("uploadpack.allowAnySHA1InWant", "true")):
        git(repo, "config", key, value)
    shas = {"m1": commit(repo, "m1"), "m2": commit(repo, "m2")}
    git(repo, "checkout", "-q", "-b", "feature")
    shas["f1"] = commit(repo, "f1")
    git(repo, "checkout", "-q", "main")
    for name in ("m3", "m4", "m5"):
        shas[name] = commit(repo, name)
    shas["url"] = (repo.resolve()).as_uri()
    return shas


def clone(tmp_path: Path, origin: dict[str, str], branch: str, depth: int | None = None,
          name: str = "work", *extra: str) -> Path:
    target = tmp_path / name
    args = ["clone", "-q", "--branch", branch, "--no-local", *extra]
    if depth is not None:
        args += ["--depth", str(depth)]
    git(tmp_path, *args, origin["url"], str(target))
    return target


GITHUB = {"GITHUB_ACTIONS": "true", "CI": "true"}


def test_value_other_than_auto_is_returned_unchanged(tmp_path: Path) -> None:
    assert resolve_base(tmp_path, "origin/main", env={}) == "origin/main"


def test_ci_system_detection() -> None:
    assert ci_system(GITHUB) == "github"
    assert ci_system({"GITLAB_CI": "true"}) == "gitlab"
    assert ci_system({"JENKINS_URL": "https://ci.example.com/"}) == "jenkins"
    assert ci_system({"CIRCLECI": "true"}) == "circleci"
    assert ci_system({"CI": "true"}) is None


def test_github_pull_request_from_base_ref(tmp_path: Path, origin: dict[str, str]) -> None:
    work = clone(tmp_path, origin, "feature")
    env = {**GITHUB, "GITHUB_EVENT_NAME": "pull_request", "GITHUB_BASE_REF": "main"}
    resolved = explain_base(work, env=env)
    assert resolved.commit == origin["m5"]
    assert resolved.source == "GITHUB_BASE_REF"


def test_github_pull_request_from_event_payload(tmp_path: Path,
                                                origin: dict[str, str]) -> None:
    work = clone(tmp_path, origin, "feature")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"base": {"sha": origin["m4"],
                                                            "ref": "main"}}}))
    env = {**GITHUB, "GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(event)}
    assert resolve_base(work, "auto", env=env) == origin["m4"]


def test_github_push_uses_before(tmp_path: Path, origin: dict[str, str]) -> None:
    work = clone(tmp_path, origin, "main")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"before": origin["m3"], "after": origin["m5"]}))
    env = {**GITHUB, "GITHUB_EVENT_NAME": "push", "GITHUB_EVENT_PATH": str(event)}
    assert resolve_base(work, "auto", env=env) == origin["m3"]


def test_github_push_of_a_new_branch_falls_back_to_the_default_branch(
        tmp_path: Path, origin: dict[str, str]) -> None:
    work = clone(tmp_path, origin, "feature")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"before": "0" * 40}))
    env = {**GITHUB, "GITHUB_EVENT_NAME": "push", "GITHUB_EVENT_PATH": str(event)}
    assert resolve_base(work, "auto", env=env) == origin["m5"]


def test_gitlab_merge_request_diff_base(tmp_path: Path, origin: dict[str, str]) -> None:
    work = clone(tmp_path, origin, "feature")
    env = {"GITLAB_CI": "true", "CI_MERGE_REQUEST_DIFF_BASE_SHA": origin["m2"],
           "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main"}
    assert resolve_base(work, "auto", env=env) == origin["m2"]
    target_only = {"GITLAB_CI": "true", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main"}
    assert resolve_base(work, "auto", env=target_only) == origin["m5"]


def test_gitlab_push_uses_commit_before_sha(tmp_path: Path, origin: dict[str, str]) -> None:
    work = clone(tmp_path, origin, "main")
    env = {"GITLAB_CI": "true", "CI_COMMIT_BEFORE_SHA": origin["m4"],
           "CI_DEFAULT_BRANCH": "main"}
    assert resolve_base(work, "auto", env=env) == origin["m4"]


def test_jenkins_change_target(tmp_path: Path, origin: dict[str, str]) -> None:
    work = clone(tmp_path, origin, "feature")
    env = {"JENKINS_URL": "https://jenkins.example.com/", "CHANGE_TARGET": "main"}
    assert explain_base(work, env=env).source == "CHANGE_TARGET"
    assert resolve_base(work, "auto", env=env) == origin["m5"]


def test_circleci_branch_and_default_branch(tmp_path: Path, origin: dict[str, str]) -> None:
    work = clone(tmp_path, origin, "feature")
    env = {"CIRCLECI": "true", "CIRCLE_BRANCH": "feature"}
    assert resolve_base(work, "auto", env=env) == origin["m5"]
    on_main = clone(tmp_path, origin, "main", name="main-work")
    env = {"CIRCLECI": "true", "CIRCLE_BRANCH": "main", "SLUICE_BASE_REVISION": origin["m3"]}
    assert resolve_base(on_main, "auto", env=env) == origin["m3"]


def test_outside_ci_uses_default_branch_or_upstream(tmp_path: Path,
                                                   origin: dict[str, str]) -> None:
    work = clone(tmp_path, origin, "feature")
    assert explain_base(work, env={}).commit == origin["m5"]  # local main tracks origin
    on_main = clone(tmp_path, origin, "main", name="main-work")
    commit_ = commit  # a local commit not pushed yet: the upstream is the base
    git(on_main, "config", "user.email", "t@example.com")
    git(on_main, "config", "user.name", "T")
    git(on_main, "config", "commit.gpgsign", "false")
    commit_(on_main, "local")
    resolved = explain_base(on_main, env={})
    assert (resolved.commit, resolved.source) == (origin["m5"], "the upstream branch")


def test_on_the_default_branch_in_sync_the_base_is_the_previous_commit(
        tmp_path: Path, origin: dict[str, str]) -> None:
    # Everything pushed: the upstream is HEAD itself, which would select nothing.
    on_main = clone(tmp_path, origin, "main")
    resolved = explain_base(on_main, env={})
    assert resolved.commit == origin["m4"] and resolved.warning is None
    assert "previous commit" in resolved.source
    git(on_main, "branch", "--unset-upstream")  # no upstream at all
    assert resolve_base(on_main, "auto", env={}) == origin["m4"]


@pytest.mark.parametrize("env", [
    # A GitLab schedule: CI_COMMIT_BEFORE_SHA is all zeros, no merge request.
    {"GITLAB_CI": "true", "CI_PIPELINE_SOURCE": "schedule", "CI_COMMIT_BEFORE_SHA": "0" * 40,
     "CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main"},
    {**GITHUB, "GITHUB_EVENT_NAME": "schedule"},
    {"CIRCLECI": "true", "CIRCLE_BRANCH": "main", "SLUICE_BASE_REVISION": ""},
    {"JENKINS_URL": "https://jenkins.example.com/", "BRANCH_NAME": "main"},
], ids=["gitlab-schedule", "github-schedule", "circleci-scheduled", "jenkins-first-build"])
def test_ci_runs_on_the_default_branch_compare_with_the_previous_commit(
        tmp_path: Path, origin: dict[str, str], env: dict[str, str]) -> None:
    work = clone(tmp_path, origin, "main", depth=1)  # the parent must be fetched
    resolved = explain_base(work, env=env)
    assert resolved.commit == origin["m4"] and resolved.warning is None


def test_a_first_commit_has_no_base_and_says_so(tmp_path: Path) -> None:
    repo = tmp_path / "new"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for key, value in (("user.email", "t@example.com"), ("user.name", "T"),
                       ("commit.gpgsign", "false")):
        git(repo, "config", key, value)
    first = commit(repo, "first")
    resolved = explain_base(repo, env={})
    assert resolved.commit == first
    assert resolved.warning is not None and "no base revision" in resolved.warning
    assert "--base" in resolved.warning


def test_shallow_clone_is_deepened_to_the_merge_base(tmp_path: Path,
                                                     origin: dict[str, str]) -> None:
    work = clone(tmp_path, origin, "feature", depth=1)
    assert git(work, "rev-parse", "--is-shallow-repository") == "true"
    env = {**GITHUB, "GITHUB_EVENT_NAME": "pull_request", "GITHUB_BASE_REF": "main"}
    assert resolve_base(work, "auto", env=env) == origin["m5"]
    assert git(work, "merge-base", origin["m5"], "HEAD") == origin["m2"]


def test_shallow_clone_with_both_tips_is_deepened(tmp_path: Path,
                                                  origin: dict[str, str]) -> None:
    # Both branch tips are there at depth 1, but not their merge base: --deepen.
    work = clone(tmp_path, origin, "feature", 1, "work", "--no-single-branch")
    assert git(work, "merge-base", "origin/main", "HEAD", check=False) == ""
    env = {"JENKINS_URL": "https://jenkins.example.com/", "CHANGE_TARGET": "main"}
    assert resolve_base(work, "auto", env=env) == origin["m5"]
    assert git(work, "merge-base", "origin/main", "HEAD") == origin["m2"]


def test_shallow_clone_fetches_a_base_commit_it_lacks(tmp_path: Path,
                                                      origin: dict[str, str]) -> None:
    work = clone(tmp_path, origin, "feature", depth=1)
    env = {"GITLAB_CI": "true", "CI_MERGE_REQUEST_DIFF_BASE_SHA": origin["m2"]}
    assert resolve_base(work, "auto", env=env) == origin["m2"]


def test_unresolvable_base_says_how_to_fix_it(tmp_path: Path, origin: dict[str, str]) -> None:
    work = clone(tmp_path, origin, "feature")
    env = {**GITHUB, "GITHUB_EVENT_NAME": "pull_request", "GITHUB_BASE_REF": "no-such-branch"}
    with pytest.raises(UsageError) as caught:
        resolve_base(work, "auto", env={**env})
    text = caught.value.render()
    assert "GitHub Actions" in text and "no-such-branch" in text and "--base" in text
