"""GitLab CI: ``.gitlab-ci.yml``.

GitLab gives every CI/CD variable to every job, so secrets cannot be withheld
from merge-request jobs in this file: the header says to make ``ci.secrets``
*protected* variables, which GitLab exposes only to pipelines of protected
branches (never to a merge request's), and ``ci.read_secrets`` unprotected ones
(a merge-request job maps them to the variables the store's client reads).
Schedules live in GitLab's settings: one pipeline schedule per scheduled tier,
with ``SLUICE_CI_TIER`` naming it.
"""

from __future__ import annotations

from typing import Any

from sluice.ci.model import STATE_PATH, Job, Pipeline, dump_yaml, header

TIER_VARIABLE = "SLUICE_CI_TIER"
_MR = '$CI_PIPELINE_SOURCE == "merge_request_event"'
_GLOB = set("*?[!+")


def _branch_test(variable: str, patterns: tuple[str, ...]) -> str:
    tests = []
    for pattern in patterns:
        if any(c in _GLOB for c in pattern):
            regex = "".join(".*" if c == "*" else "." if c == "?" else
                            ("\\" + c if c in "./+()[]{}^$|" else c) for c in pattern)
            tests.append(f"{variable} =~ /^{regex}$/")
        else:
            tests.append(f'{variable} == "{pattern}"')
    return tests[0] if len(tests) == 1 else "(" + " || ".join(tests) + ")"


def _rules(job: Job) -> list[str]:
    tests: list[str] = []
    if job.pull_request:
        test = _MR
        if job.pr_branches:
            test += " && " + _branch_test("$CI_MERGE_REQUEST_TARGET_BRANCH_NAME",
                                          job.pr_branches)
        tests.append(test)
    if job.push_branches:
        tests.append('$CI_PIPELINE_SOURCE == "push" && '
                     + _branch_test("$CI_COMMIT_BRANCH", job.push_branches))
    if job.schedule:
        tests.append(f'$CI_PIPELINE_SOURCE == "schedule" && ${TIER_VARIABLE} == "{job.tier}"')
    if job.manual:
        tests.append(f'$CI_PIPELINE_SOURCE == "web" && ${TIER_VARIABLE} == "{job.tier}"')
    return tests


def _job(pipeline: Pipeline, job: Job) -> dict[str, Any]:
    tests = list(dict.fromkeys(t for j in job.triggers() for t in _rules(j)))
    body: dict[str, Any] = {"stage": "gate" if job.is_gate or job.needs is None else "tiers"}
    if job.needs:
        body["needs"] = [job.needs]
    body.update({
        "rules": [{"if": test} for test in tests],
        "timeout": f"{job.timeout_minutes}m",
        "cache": {"key": f"sluice-{job.tier}-$CI_COMMIT_REF_SLUG",
                  "fallback_keys": [f"sluice-{job.tier}-$CI_DEFAULT_BRANCH"],
                  "paths": [f"{STATE_PATH}/"], "when": "always"},
        "script": [pipeline.install, job.command],
    })
    renamed = {name: f"${secret}" for name, secret in job.read_secrets if name != secret}
    if renamed:
        # The read-only credentials under the names the store's client reads.
        body["variables"] = renamed
    if job.pull_request:
        # after_script runs even when the tier failed; GITLAB_TOKEN is a CI/CD variable.
        body["after_script"] = [
            'if [ "$CI_PIPELINE_SOURCE" = "merge_request_event" ]; then '
            'sluice report --publish; fi']
    body["artifacts"] = {"name": f"sluice-{job.tier}", "when": "always",
                         "expire_in": "30 days", "paths": list(pipeline.upload_paths)}
    return body


class GitLabCI:
    """``sluice ci generate gitlab``."""

    system = "gitlab"
    path = ".gitlab-ci.yml"
    comment = "#"

    def render(self, pipeline: Pipeline) -> str:
        workflow_rules: list[dict[str, Any]] = [
            {"if": _MR},
            # A branch with an open merge request runs as that merge request only.
            {"if": '$CI_COMMIT_BRANCH && $CI_OPEN_MERGE_REQUESTS', "when": "never"}]
        for job in pipeline.jobs:
            for test in _rules(job):
                if test.startswith(_MR):
                    continue
                workflow_rules.append({"if": test})
        document: dict[str, Any] = {
            "workflow": {"rules": workflow_rules},
            "stages": ["gate", "tiers"],
            "default": {"image": pipeline.image,
                        "interruptible": True},  # a newer pipeline cancels this one
            "variables": {"GIT_DEPTH": "0",  # full history, for --base auto
                          "PIP_CACHE_DIR": "$CI_PROJECT_DIR/.cache/pip"},
            **{job.tier: _job(pipeline, job) for job in pipeline.jobs},
        }
        notes = [f"Scheduled tiers: add a pipeline schedule with variable {TIER_VARIABLE}="
                 f"TIER: " + ", ".join(f"{j.tier} at `{j.schedule}`" for j in pipeline.jobs
                                       if j.schedule) + "."
                 if pipeline.schedules() else "",
                 f"Manual tiers: Run pipeline with {TIER_VARIABLE}=TIER ("
                 + ", ".join(pipeline.manual_tiers()) + ")." if pipeline.manual_tiers() else "",
                 "Variables: GITLAB_TOKEN (api scope) for the merge-request comment"
                 + ("; protected variables " + ", ".join(pipeline.secrets)
                    + " (protected: never exposed to merge-request pipelines)"
                    if pipeline.secrets else "")
                 + ("; read-only store credentials " + ", ".join(pipeline.read_secrets)
                    + " (not protected: merge-request jobs read the store with them, and "
                      "never write it)" if pipeline.read_secrets else "") + "."]
        return header(self, [n for n in notes if n]) + dump_yaml(document)
