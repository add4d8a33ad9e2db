"""CircleCI: ``.circleci/config.yml``.

CircleCI builds pushed branches, so pull-request tiers run on every branch but
the default one. One workflow per event: the gate tier's job first, the
expensive tier's job ``requires`` it. Secrets live in a context named
``sluice`` that only jobs which never run pull-request code use (and
"Pass secrets to builds from forked pull requests" stays off); read-only store
credentials (``ci.read_secrets``) in a context ``sluice-read`` that only
pull-request jobs use. Scheduled tiers
are scheduled pipelines named after the tier; manual tiers start by the
``sluice-tier`` pipeline parameter.
"""

from __future__ import annotations

from typing import Any

from sluice.ci.model import STATE_PATH, Job, Pipeline, dump_yaml, header

CONTEXT = "sluice"
READ_CONTEXT = "sluice-read"  # read-only store credentials, for pull-request jobs
TIER_PARAMETER = "sluice-tier"
EXIT_FILE = ".sluice-exit-code"  # in the checkout, outside the cached .sluice/
_BRANCH = "<< pipeline.git.branch >>"
_SOURCE = "<< pipeline.trigger_source >>"
_TIER = f"<< pipeline.parameters.{TIER_PARAMETER} >>"


def _job(pipeline: Pipeline, job: Job) -> dict[str, Any]:
    cache = f"sluice-v1-{job.tier}-{{{{ .Branch }}}}"
    # The read-only credentials under the names the store's client reads.
    renamed = "".join(f'export {name}="${secret}"\n' for name, secret in job.read_secrets
                      if name != secret)
    return {
        "docker": [{"image": pipeline.image}],
        # --base auto compares a default-branch build with the previous pipeline's commit.
        "environment": {"SLUICE_BASE_REVISION": "<< pipeline.git.base_revision >>"},
        "steps": [
            "checkout",
            {"restore_cache": {"keys": [f"{cache}-{{{{ .Revision }}}}", f"{cache}-",
                                        f"sluice-v1-{job.tier}-"]}},
            {"run": {"name": "Install the project", "command": pipeline.install}},
            # The exit code waits in a file so that the report is stored even on failure.
            {"run": {"name": f"Run tier {job.tier}",
                     "command": f"set +e\n{renamed}{job.command}\necho $? > {EXIT_FILE}\n",
                     "no_output_timeout": f"{job.timeout_minutes}m"}},
            *([{"run": {"name": "Publish the report on the pull request", "when": "always",
                        "command": 'if [ -n "${CIRCLE_PULL_REQUEST:-}" ]; then '
                                   "sluice report --publish; fi"}}]
              if job.pull_request else []),
            {"save_cache": {"key": f"{cache}-{{{{ .Revision }}}}", "paths": [STATE_PATH],
                            "when": "always"}},
            *({"store_artifacts": {"path": path.rstrip("/")}}
              for path in pipeline.upload_paths),
            {"run": {"name": f"Result of tier {job.tier}",
                     "command": f'exit "$(cat {EXIT_FILE} 2>/dev/null || echo 1)"'}},
        ],
    }


def _workflow(pipeline: Pipeline, jobs: list[Job], when: Any) -> dict[str, Any]:
    entries: list[Any] = []
    for job in jobs:
        options: dict[str, Any] = {}
        if job.needs and any(j.tier == job.needs for j in jobs):
            options["requires"] = [job.needs]
        if job.secrets:
            options["context"] = [CONTEXT]
        elif job.read_secrets:
            options["context"] = [READ_CONTEXT]
        entries.append({job.tier: options} if options else job.tier)
    return {"when": when, "jobs": entries}


def _with_gate(pipeline: Pipeline, job: Job) -> list[Job]:
    gate = [j for j in pipeline.jobs if j.tier == job.needs]
    return [*gate, job]


class CircleCI:
    """``sluice ci generate circleci``."""

    system = "circleci"
    path = ".circleci/config.yml"
    comment = "#"

    def render(self, pipeline: Pipeline) -> str:
        default = pipeline.default_branch
        not_scheduled: dict[str, Any] = {"not": {"equal": ["scheduled_pipeline", _SOURCE]}}
        not_manual: dict[str, Any] = {"equal": ["", _TIER]}
        workflows: dict[str, Any] = {}
        pr_jobs = [j for j in pipeline.jobs if j.pull_request]
        if pr_jobs:
            workflows["pull-request"] = _workflow(pipeline, pr_jobs, {"and": [
                {"not": {"equal": [default, _BRANCH]}}, not_scheduled, not_manual]})
        for job in pipeline.jobs:
            if job.push_branches:
                branches = [{"equal": [b, _BRANCH]} for b in job.push_branches]
                workflows[f"{job.tier}-push"] = _workflow(pipeline, _with_gate(pipeline, job), {
                    "and": [branches[0] if len(branches) == 1 else {"or": branches},
                            not_scheduled, not_manual]})
            starts: list[dict[str, Any]] = []
            if job.schedule:
                starts.append({"and": [{"equal": ["scheduled_pipeline", _SOURCE]},
                                       {"equal": [job.tier, "<< pipeline.schedule.name >>"]}]})
            if job.manual:
                starts.append({"equal": [job.tier, _TIER]})
            if starts:
                workflows[f"{job.tier}-run"] = _workflow(
                    pipeline, _with_gate(pipeline, job),
                    starts[0] if len(starts) == 1 else {"or": starts})
        document: dict[str, Any] = {
            "version": 2.1,
            "parameters": {TIER_PARAMETER: {
                "type": "string", "default": "",
                "description": "Run this tier now (a manual tier of sluice.yaml)"}},
            "jobs": {job.tier: _job(pipeline, job) for job in pipeline.jobs},
            "workflows": workflows,
        }
        notes = []
        if pipeline.schedules():
            notes.append("Scheduled pipelines to create (name = tier): " + ", ".join(
                f"{j.tier} at `{j.schedule}`" for j in pipeline.jobs if j.schedule) + ".")
        notes.append("Project variable: GITHUB_TOKEN or GITLAB_TOKEN for the pull-request "
                     "comment" + (f"; context `{CONTEXT}`: " + ", ".join(pipeline.secrets)
                                  if pipeline.secrets else "")
                     + (f"; context `{READ_CONTEXT}` (read-only store credentials, for "
                        "pull-request jobs): " + ", ".join(pipeline.read_secrets)
                        if pipeline.read_secrets else "") + ".")
        return header(self, notes) + dump_yaml(document)
