"""``ci.read_secrets``: read-only store credentials reach pull-request jobs only, in all four
systems, and those jobs run with the shared store read-only (they never push)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sluice.ci.generate import GENERATORS
from sluice.ci.model import Pipeline, build_pipeline
from sluice.errors import ConfigError
from tests.unit._util import load
from tests.unit.ci.test_generate import CONFIG

READ = {"AWS_ACCESS_KEY_ID": "AWS_READONLY_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY": "AWS_READONLY_SECRET_ACCESS_KEY"}
WITH_READ = CONFIG.replace(
    "  artifacts: [reports/]\n",
    "  artifacts: [reports/]\n  read_secrets:\n"
    + "".join(f"    {name}: {secret}\n" for name, secret in READ.items()))
assert "read_secrets" in WITH_READ
PR_COMMAND = ("SLUICE_CACHE_READ_ONLY=1 SLUICE_DATABASE_URL=sqlite:///.sluice/sluice.db "
              "sluice run --tier pr --base auto")


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    return build_pipeline(load(tmp_path, WITH_READ).spec)


def render(pipeline: Pipeline, system: str) -> str:
    return GENERATORS[system].render(pipeline)


def _without_header(text: str, comment: str = "#") -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith(comment))


def test_read_secrets_go_to_pull_request_jobs_which_never_write(pipeline: Pipeline) -> None:
    jobs = {job.tier: job for job in pipeline.jobs}
    assert jobs["pr"].read_secrets == tuple(READ.items()) and jobs["pr"].secrets == ()
    assert jobs["pr"].command == PR_COMMAND
    for tier in ("merge", "nightly", "adhoc"):
        assert jobs[tier].read_secrets == ()
        assert jobs[tier].secrets == ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        assert jobs[tier].command == f"sluice run --tier {tier} --base auto"
    assert pipeline.read_secrets == tuple(READ.values())


def _github_run_step(workflow: dict[str, Any], job: str) -> dict[str, Any]:
    return next(s for s in workflow["jobs"][job]["steps"] if s["name"].startswith("Run tier"))


def test_github(pipeline: Pipeline) -> None:
    workflow = yaml.load(render(pipeline, "github"), Loader=yaml.BaseLoader)
    pr = _github_run_step(workflow, "pr")
    assert pr["run"] == PR_COMMAND
    assert pr["env"] == {name: f"${{{{ secrets.{secret} }}}}" for name, secret in READ.items()}
    merge = _github_run_step(workflow, "merge")
    assert merge["env"] == {n: f"${{{{ secrets.{n} }}}}" for n in READ}
    for job, body in workflow["jobs"].items():
        if job != "pr":  # the publish job and every non-PR job: no read-only secret
            assert "READONLY" not in yaml.safe_dump(body), job


def test_gitlab(pipeline: Pipeline) -> None:
    document = yaml.safe_load(render(pipeline, "gitlab"))
    assert document["pr"]["variables"] == {n: f"${s}" for n, s in READ.items()}
    assert PR_COMMAND in document["pr"]["script"]
    for tier in ("merge", "nightly", "adhoc"):
        assert "READONLY" not in yaml.safe_dump(document[tier]) and \
            "READ_ONLY" not in yaml.safe_dump(document[tier])
    assert "read-only store credentials AWS_READONLY_ACCESS_KEY_ID" in render(pipeline, "gitlab")


def test_jenkins(pipeline: Pipeline) -> None:
    text = _without_header(render(pipeline, "jenkins"), "//")
    pr_stage = text[text.index("stage('pr')"):text.index("stage('merge')")]
    for name, secret in READ.items():
        assert f"{name} = credentials('{secret}')" in pr_stage
    assert PR_COMMAND in pr_stage
    rest = text[text.index("stage('merge')"):]
    assert "READONLY" not in rest and "SLUICE_CACHE_READ_ONLY" not in rest


def test_circleci(pipeline: Pipeline) -> None:
    document = yaml.safe_load(render(pipeline, "circleci"))
    workflows = document["workflows"]
    assert workflows["pull-request"]["jobs"] == [{"pr": {"context": ["sluice-read"]}}]
    merge = workflows["merge-push"]["jobs"]
    assert merge == [{"pr": {"context": ["sluice-read"]}},
                     {"merge": {"requires": ["pr"], "context": ["sluice"]}}]
    command = next(s["run"]["command"] for s in document["jobs"]["pr"]["steps"]
                   if isinstance(s, dict) and "run" in s and "Run tier" in s["run"]["name"])
    assert 'export AWS_ACCESS_KEY_ID="$AWS_READONLY_ACCESS_KEY_ID"\n' in command
    assert PR_COMMAND in command
    assert "READONLY" not in yaml.safe_dump(document["jobs"]["merge"])


def test_a_list_names_variables_read_from_secrets_of_the_same_name(tmp_path: Path) -> None:
    spec = load(tmp_path, WITH_READ.replace(
        "  read_secrets:\n" + "".join(f"    {n}: {s}\n" for n, s in READ.items()),
        "  read_secrets: [SLUICE_STORE_READ_TOKEN]\n")).spec
    assert spec.ci.read_secrets == {"SLUICE_STORE_READ_TOKEN": "SLUICE_STORE_READ_TOKEN"}
    assert "SLUICE_STORE_READ_TOKEN" in spec.ci.read_secrets
    pipeline = build_pipeline(spec)
    workflow = yaml.load(render(pipeline, "github"), Loader=yaml.BaseLoader)
    assert _github_run_step(workflow, "pr")["env"] == {
        "SLUICE_STORE_READ_TOKEN": "${{ secrets.SLUICE_STORE_READ_TOKEN }}"}
    assert "variables" not in yaml.safe_load(render(pipeline, "gitlab"))["pr"]  # same name


def test_every_credential_name_is_masked(pipeline: Pipeline, tmp_path: Path) -> None:
    names = load(tmp_path, WITH_READ).secret_names
    assert set(names) == {*READ, *READ.values()}


def test_a_write_secret_as_read_secret_is_refused(tmp_path: Path) -> None:
    spec = load(tmp_path, WITH_READ.replace("AWS_READONLY_SECRET_ACCESS_KEY",
                                            "AWS_SECRET_ACCESS_KEY")).spec
    with pytest.raises(ConfigError, match="write credentials"):
        build_pipeline(spec)


def test_without_read_secrets_pull_request_jobs_stay_off_the_store(tmp_path: Path) -> None:
    pr = next(j for j in build_pipeline(load(tmp_path, CONFIG).spec).jobs if j.tier == "pr")
    assert pr.command.startswith("SLUICE_CACHE_URL=none ") and pr.read_secrets == ()
