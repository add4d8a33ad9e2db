"""The job model derived from tiers, and the security properties of each generated file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from sluice.ci.generate import GENERATORS
from sluice.ci.model import GENERATED_MARK, Pipeline, build_pipeline
from sluice.errors import UsageError
from tests.unit._util import load

CONFIG = """\
version: 1
stages:
  unit: {cmd: "true", kind: check}
  train: {cmd: "true", kind: train}
tiers:
  nightly:
    trigger: {schedule: "0 3 * * *", manual: true}
    select: all
    seeds: 3
    budget: {wall: 3h}
  merge:
    trigger: {push: {branches: [main, "release/*"]}}
    budget: {wall: 1h}
  pr:
    trigger: {pull_request: {branches: [main]}}
    fraction: 0.02
    budget: {wall: 10m}
  adhoc:
    trigger: manual
ci:
  secrets: [AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY]
  artifacts: [reports/]
storage: {cache: "s3://bucket/sluice"}
"""


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    return build_pipeline(load(tmp_path, CONFIG).spec)


def render(pipeline: Pipeline, system: str) -> str:
    return GENERATORS[system].render(pipeline)


def test_cheapest_pull_request_tier_gates_every_other_tier(pipeline: Pipeline) -> None:
    jobs = {job.tier: job for job in pipeline.jobs}
    assert next(job.tier for job in pipeline.jobs) == "pr"
    assert jobs["pr"].needs is None and jobs["pr"].is_gate
    assert {jobs[t].needs for t in ("merge", "nightly", "adhoc")} == {"pr"}
    assert {j.tier for j in jobs["pr"].gated} == {"merge", "nightly", "adhoc"}


def test_secrets_never_reach_pull_request_jobs(pipeline: Pipeline) -> None:
    jobs = {job.tier: job for job in pipeline.jobs}
    assert jobs["pr"].secrets == ()
    assert jobs["merge"].secrets == ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    assert pipeline.shared_storage


def test_timeouts_come_from_the_wall_budget(pipeline: Pipeline) -> None:
    jobs = {job.tier: job for job in pipeline.jobs}
    assert (jobs["pr"].timeout_minutes, jobs["merge"].timeout_minutes,
            jobs["nightly"].timeout_minutes, jobs["adhoc"].timeout_minutes) == (20, 70, 190, 360)


def test_no_tiers_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no tiers"):
        build_pipeline(load(tmp_path, "version: 1\nstages: {a: {cmd: 'true'}}\n").spec)


@pytest.mark.parametrize("system", sorted(GENERATORS))
def test_every_file_says_it_is_generated_and_is_deterministic(pipeline: Pipeline,
                                                              system: str) -> None:
    text = render(pipeline, system)
    assert GENERATED_MARK in text.splitlines()[0]
    assert f"sluice ci generate {system} --write" in text
    assert text == render(pipeline, system)
    assert "sluice run --tier pr --base auto" in text


def test_github_workflow_security(pipeline: Pipeline) -> None:
    text = render(pipeline, "github")
    workflow: dict[Any, Any] = yaml.load(text, Loader=yaml.BaseLoader)
    assert "pull_request_target" not in text
    assert set(workflow["on"]) == {"pull_request", "push", "schedule", "workflow_dispatch"}
    assert workflow["permissions"] == {}
    assert workflow["concurrency"]["cancel-in-progress"] == \
        "${{ github.event_name == 'pull_request' }}"
    for name, job in workflow["jobs"].items():
        assert job["permissions"]["contents"] == "read"
        # Only the publish job may write to pull requests: it runs no pull-request code.
        assert ("pull-requests" in job["permissions"]) == (name == "publish-pr")
        assert ("github.token" in str(job)) == (name == "publish-pr")
        assert int(job["timeout-minutes"]) > 0
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"actions/[a-z-]+(/[a-z-]+)?@[0-9a-f]{40}", step["uses"]), step
            if "run" in step:
                assert "${{" not in step["run"], step
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] == "false"
        secrets = [v for s in job["steps"] for v in s.get("env", {}).values()
                   if "secrets." in v]
        assert bool(secrets) == (name not in ("pr", "publish-pr")), name
    assert workflow["jobs"]["merge"]["needs"] == "pr"
    assert "startsWith(github.ref, 'refs/heads/release/')" in workflow["jobs"]["merge"]["if"]
    assert "github.base_ref == 'main'" in workflow["jobs"]["pr"]["if"]


def test_github_publishes_from_a_job_that_runs_no_pull_request_code(
        pipeline: Pipeline) -> None:
    jobs = yaml.load(render(pipeline, "github"), Loader=yaml.BaseLoader)["jobs"]
    pr, publish = jobs["pr"], jobs["publish-pr"]
    assert not any("report --publish" in s.get("run", "") for s in pr["steps"])
    uploaded = [s for s in pr["steps"] if s.get("with", {}).get("name") == "sluice-report-pr"]
    assert uploaded and uploaded[0]["uses"].startswith("actions/upload-artifact@")
    assert publish["needs"] == "pr" and "needs.pr.result != 'skipped'" in publish["if"]
    steps = publish["steps"]
    checkout = steps[0]
    assert checkout["uses"].startswith("actions/checkout@")
    assert checkout["with"] == {"ref": "${{ github.event.pull_request.base.sha }}",
                                "persist-credentials": "false"}
    runs = [s["run"] for s in steps if "run" in s]
    # A vendored sluice (`pip install -e .`) is installed from the base commit's checkout.
    assert runs == ["pip install -e .", "sluice report --publish"]
    download = next(s for s in steps if "download-artifact" in s.get("uses", ""))
    assert re.fullmatch(r"actions/download-artifact@[0-9a-f]{40}", download["uses"])
    assert download["with"] == {"name": "sluice-report-pr", "path": ".sluice/reports"}
    assert [s["name"] for s in steps].index("Download the report") > 1  # after the install
    assert steps[-1]["env"] == {"GITHUB_TOKEN": "${{ github.token }}"}


def test_installs_from_the_index_pin_the_generating_sluice_ml(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sluice.ci.install.installed_version", lambda: "1.2.3")
    pipeline = build_pipeline(load(tmp_path, CONFIG.replace(
        "ci:\n", "ci:\n  install: pip install sluice -r requirements.txt\n")).spec)
    assert pipeline.install == "pip install sluice-ml==1.2.3 -r requirements.txt"
    assert pipeline.sluice_version == "1.2.3"
    for system in GENERATORS:
        text = render(pipeline, system)
        assert "pip install sluice -r" not in text and "sluice-ml==1.2.3 -r" in text
    publish = yaml.safe_load(render(pipeline, "github"))["jobs"]["publish-pr"]
    assert [s["run"] for s in publish["steps"] if "run" in s] == [
        "pip install sluice-ml==1.2.3", "sluice report --publish"]
    # An explicit pin is kept, with its extras.
    pinned = build_pipeline(load(tmp_path / "b", CONFIG.replace(
        "ci:\n", "ci:\n  install: pip install 'sluice-ml[s3]==1.0.0'\n")).spec)
    assert (pinned.install, pinned.sluice_version) == ("pip install 'sluice-ml[s3]==1.0.0'",
                                                       "1.0.0")


def test_a_tier_named_like_a_publish_job_is_refused(tmp_path: Path) -> None:
    pipeline = build_pipeline(load(tmp_path, CONFIG.replace("  adhoc:", "  publish-pr:")).spec)
    with pytest.raises(UsageError, match="publish-pr"):
        render(pipeline, "github")


def test_gitlab_orders_and_gates_jobs(pipeline: Pipeline) -> None:
    document = yaml.safe_load(render(pipeline, "gitlab"))
    assert document["stages"] == ["gate", "tiers"]
    assert document["pr"]["stage"] == "gate" and document["merge"]["needs"] == ["pr"]
    assert document["merge"]["timeout"] == "70m"
    assert any("$CI_COMMIT_BRANCH =~ /^release\\/.*$/" in r["if"]
               for r in document["merge"]["rules"])
    assert "sluice report --publish" in document["pr"]["after_script"][0]
    assert "AWS_SECRET_ACCESS_KEY" not in yaml.safe_dump(document["pr"])


def test_circleci_uses_the_secret_context_only_outside_pull_requests(
        pipeline: Pipeline) -> None:
    document = yaml.safe_load(render(pipeline, "circleci"))
    workflows = document["workflows"]
    assert workflows["pull-request"]["jobs"] == ["pr"]
    merge = workflows["merge-push"]["jobs"]
    assert merge[0] == "pr" and merge[1] == {"merge": {"requires": ["pr"],
                                                       "context": ["sluice"]}}
    assert "nightly-run" in workflows and "adhoc-run" in workflows


def test_jenkins_binds_credentials_only_outside_pull_request_stages(
        pipeline: Pipeline) -> None:
    text = render(pipeline, "jenkins")
    pr_stage = text[text.index("stage('pr')"):text.index("stage('merge')")]
    assert "credentials(" not in pr_stage and "changeRequest target: 'main'" in pr_stage
    assert "AWS_SECRET_ACCESS_KEY = credentials('AWS_SECRET_ACCESS_KEY')" in text
    assert text.index("stage('pr')") < text.index("stage('merge')")
    assert "cron('0 3 * * *')" in text and "timeout(time: 70, unit: 'MINUTES')" in text


def test_without_a_pull_request_tier_nothing_is_gated(tmp_path: Path) -> None:
    spec = load(tmp_path, "version: 1\nstages: {a: {cmd: 'true'}}\ntiers:\n"
                          "  nightly: {trigger: {schedule: '0 1 * * *'}}\n").spec
    pipeline = build_pipeline(spec)
    assert [(j.tier, j.needs, j.is_gate) for j in pipeline.jobs] == [("nightly", None, False)]
    assert "pull_request" not in yaml.load(render(pipeline, "github"), Loader=yaml.BaseLoader)["on"]


def test_pull_request_jobs_run_without_the_shared_store(pipeline: Pipeline,
                                                       tmp_path: Path) -> None:
    # They have no credentials for it: local state and a local ledger only.
    commands = {job.tier: job.command for job in pipeline.jobs}
    assert commands["pr"] == ("SLUICE_CACHE_URL=none SLUICE_DATABASE_URL=sqlite:///.sluice/"
                              "sluice.db sluice run --tier pr --base auto")
    assert commands["merge"] == "sluice run --tier merge --base auto"
    for system in GENERATORS:
        assert commands["pr"] in render(pipeline, system)
    without = build_pipeline(load(tmp_path / "b", CONFIG.replace(
        'storage: {cache: "s3://bucket/sluice"}\n', "")).spec)
    assert {job.tier: job.command for job in without.jobs}["pr"] == \
        "sluice run --tier pr --base auto"


def test_sluice_cache_url_none_turns_the_shared_store_off(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sluice.store.local import LocalStore
    from sluice.workspace.graph import build_graph
    from sluice.workspace.project import Project

    config = load(tmp_path, CONFIG)
    project = Project(tmp_path, config, build_graph(config))
    assert project.shared_cache_url == "s3://bucket/sluice"
    monkeypatch.setenv("SLUICE_CACHE_URL", "none")
    project = Project(tmp_path, config, build_graph(config))
    assert project.shared_cache_url is None
    assert isinstance(project.store, LocalStore)
