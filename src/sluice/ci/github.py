"""GitHub Actions: ``.github/workflows/sluice.yml``.

Security, as zizmor and actionlint check it: ``permissions: {}`` for the
workflow and the least each job needs; only the ``pull_request`` event for
pull requests (never ``pull_request_target``), so fork code runs with a
read-only token and no secrets; ``ci.secrets`` reach only jobs that never run
pull-request code, ``ci.read_secrets`` (read-only store credentials) only those
that do; third-party actions pinned by full commit SHA; checkout
without persisted credentials; no ``${{ }}`` inside ``run:``; superseded
pull-request runs cancelled by a concurrency group.

The pull-request comment is posted by a job of its own (``publish-TIER``), the
only one with ``pull-requests: write``: it runs no pull-request code. It checks
out the pull request's *base* commit (never its head), installs sluice there
(the pinned ``sluice-ml`` release, or ``ci.install`` for a vendored sluice),
downloads the report the tier's job uploaded, and publishes it. The tier's job,
which installs and runs the pull request's code, holds only ``contents: read``.
"""

from __future__ import annotations

from typing import Any

from sluice.ci.model import STATE_PATH, Job, Pipeline, dump_yaml, header

# Full commit SHAs of the releases named after them (update together with the tag).
ACTIONS = {
    "checkout": ("actions/checkout", "11bd71901bbe5b1630ceea73d27597364c9af683", "v4.2.2"),
    "setup-python": ("actions/setup-python", "a26af69be951a213d495a4c3e4e4022e16d87065",
                     "v5.6.0"),
    # Restore and save as two steps (the same release of actions/cache): a workflow
    # that also runs on release-like pushes must not let the combined action restore
    # and write back in one go (zizmor's cache-poisoning audit).
    "cache/restore": ("actions/cache/restore", "5a3ec84eff668545956fd18022155c47e93e2684",
                      "v4.2.3"),
    "cache/save": ("actions/cache/save", "5a3ec84eff668545956fd18022155c47e93e2684", "v4.2.3"),
    "upload-artifact": ("actions/upload-artifact", "ea165f8d65b6e75b540449e92b4886f43607fa02",
                        "v4.6.2"),
    "download-artifact": ("actions/download-artifact",
                          "d3f86a106a0bac45b974a628896c90dbdf5c8093", "v4.3.0"),
}
REPORTS = f"{STATE_PATH}/reports"  # what `sluice report --publish` reads
PUBLISH_MINUTES = 10
PERMISSION_REASONS = {"contents: read": "check out the repository",
                      "pull-requests: write": "comment the report on the pull request"}
_GLOB = set("*?[!+")


def _uses(name: str) -> str:
    repo, sha, _ = ACTIONS[name]
    return f"{repo}@{sha}"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _branch_test(variable: str, prefix: str, patterns: tuple[str, ...]) -> str:
    """An expression true when ``variable`` names one of the branch ``patterns``."""
    tests = []
    for pattern in patterns:
        cut = next((i for i, c in enumerate(pattern) if c in _GLOB), None)
        if cut is None:
            tests.append(f"{variable} == {_quote(prefix + pattern)}")
        else:  # a glob: the part before its first wildcard (GitHub filters the rest)
            tests.append(f"startsWith({variable}, {_quote(prefix + pattern[:cut])})")
    return tests[0] if len(tests) == 1 else "(" + " || ".join(tests) + ")"


def _event_tests(job: Job) -> list[str]:
    tests: list[str] = []
    if job.pull_request:
        test = "github.event_name == 'pull_request'"
        if job.pr_branches:
            test += " && " + _branch_test("github.base_ref", "", job.pr_branches)
        tests.append(test)
    if job.push_branches:
        tests.append("github.event_name == 'push' && "
                     + _branch_test("github.ref", "refs/heads/", job.push_branches))
    if job.schedule:
        tests.append(f"github.event_name == 'schedule' && "
                     f"github.event.schedule == {_quote(job.schedule)}")
    if job.manual:
        tests.append(f"github.event_name == 'workflow_dispatch' && "
                     f"inputs.tier == {_quote(job.tier)}")
    return tests


def _condition(job: Job) -> str:
    tests = list(dict.fromkeys(t for j in job.triggers() for t in _event_tests(j)))
    if len(tests) == 1:
        return tests[0]
    return " || ".join(f"({t})" for t in tests)


def _triggers(pipeline: Pipeline) -> dict[str, Any]:
    on: dict[str, Any] = {}
    if any(job.pull_request for job in pipeline.jobs):
        branches = pipeline.pr_branches()
        on["pull_request"] = {"branches": list(branches)} if branches else None
    if pipeline.push_branches():
        on["push"] = {"branches": list(pipeline.push_branches())}
    if pipeline.schedules():
        on["schedule"] = [{"cron": cron} for cron in pipeline.schedules()]
    manual = pipeline.manual_tiers()
    if manual:
        on["workflow_dispatch"] = {"inputs": {"tier": {
            "description": "The sluice tier to run", "type": "choice", "required": True,
            "default": manual[0], "options": list(manual)}}}
    return on


def publish_job_id(job: Job) -> str:
    return f"publish-{job.tier}"


def _job(pipeline: Pipeline, job: Job) -> dict[str, Any]:
    permissions = {"contents": "read"}
    cache_key = f"sluice-${{{{ runner.os }}}}-{job.tier}-${{{{ github.sha }}}}"
    steps: list[dict[str, Any]] = [
        {"name": "Check out (full history, for --base auto)", "uses": _uses("checkout"),
         "with": {"fetch-depth": 0, "persist-credentials": False}},
        {"name": "Set up Python", "uses": _uses("setup-python"),
         "with": {"python-version": pipeline.python}},
        {"name": "Install the project", "run": pipeline.install},
        {"name": "Restore sluice's local state", "uses": _uses("cache/restore"),
         "with": {"path": STATE_PATH, "key": cache_key,
                  "restore-keys": f"sluice-${{{{ runner.os }}}}-{job.tier}-\n"}},
    ]
    run: dict[str, Any] = {"name": f"Run tier {job.tier}", "run": job.command}
    if job.secret_env:
        run["env"] = {name: f"${{{{ secrets.{secret} }}}}" for name, secret in job.secret_env}
    steps.append(run)
    # Saved even when the tier failed: the stages that succeeded need not run again.
    steps.append({"name": "Save sluice's local state", "if": "always()",
                  "uses": _uses("cache/save"), "with": {"path": STATE_PATH, "key": cache_key}})
    if job.pull_request:
        # Published by the publish job, which runs none of this job's (the PR's) code.
        steps.append({"name": "Upload the report for the publish job",
                      "if": "always() && github.event_name == 'pull_request'",
                      "uses": _uses("upload-artifact"),
                      "with": {"name": f"sluice-report-{job.tier}", "path": f"{REPORTS}/",
                               "if-no-files-found": "ignore", "retention-days": 1}})
    steps.append({"name": "Upload the report and artifacts", "if": "always()",
                  "uses": _uses("upload-artifact"),
                  "with": {"name": f"sluice-{job.tier}",
                           "path": "\n".join(pipeline.upload_paths) + "\n",
                           "if-no-files-found": "ignore"}})
    body: dict[str, Any] = {"name": f"{job.tier}: {job.description}"}
    if job.needs:
        body["needs"] = job.needs
    body.update({"if": _condition(job), "runs-on": pipeline.runs_on,
                 "timeout-minutes": job.timeout_minutes, "permissions": permissions,
                 "steps": steps})
    return body


def _publish_job(pipeline: Pipeline, job: Job) -> dict[str, Any]:
    """The job that comments ``job``'s report: the only holder of ``pull-requests: write``."""
    base_install = pipeline.sluice_version is None
    return {
        "name": f"{job.tier}: publish the report on the pull request",
        "needs": job.tier,
        # After a failed tier too (its report says why), not when it was skipped.
        "if": f"github.event_name == 'pull_request' && !cancelled() && "
              f"needs.{job.tier}.result != 'skipped'",
        "runs-on": pipeline.runs_on, "timeout-minutes": PUBLISH_MINUTES,
        "permissions": {"contents": "read", "pull-requests": "write"},
        "steps": [
            # The base commit, never the head: nothing the pull request changed runs here.
            {"name": "Check out the pull request's base commit (never its head)",
             "uses": _uses("checkout"),
             "with": {"ref": "${{ github.event.pull_request.base.sha }}",
                      "persist-credentials": False}},
            {"name": "Set up Python", "uses": _uses("setup-python"),
             "with": {"python-version": pipeline.python}},
            {"name": "Install sluice from the base commit" if base_install
             else f"Install sluice-ml {pipeline.sluice_version}",
             "run": pipeline.publish_install},
            {"name": "Download the report", "uses": _uses("download-artifact"),
             "with": {"name": f"sluice-report-{job.tier}", "path": REPORTS}},
            {"name": "Publish the report on the pull request",
             "run": "sluice report --publish",
             "env": {"GITHUB_TOKEN": "${{ github.token }}"}},
        ],
    }


def _jobs(pipeline: Pipeline) -> dict[str, Any]:
    tiers = {job.tier for job in pipeline.jobs}
    for job in pipeline.jobs:
        if job.pull_request and publish_job_id(job) in tiers:
            from sluice.errors import UsageError

            raise UsageError(f"tier `{publish_job_id(job)}` has the name of the job that "
                             f"publishes tier `{job.tier}`'s report",
                             hint=f"rename tier `{publish_job_id(job)}` in sluice.yaml")
    jobs: dict[str, Any] = {}
    for job in pipeline.jobs:
        jobs[job.tier] = _job(pipeline, job)
        if job.pull_request:
            jobs[publish_job_id(job)] = _publish_job(pipeline, job)
    return jobs


class GitHubActions:
    """``sluice ci generate github``."""

    system = "github"
    path = ".github/workflows/sluice.yml"
    comment = "#"

    def render(self, pipeline: Pipeline) -> str:
        workflow: dict[str, Any] = {
            "name": "sluice",
            "on": _triggers(pipeline),
            "permissions": {},
            # A new push to a pull request cancels its previous run; other runs never
            # share a group, so a merge's registration is never cut short.
            "concurrency": {
                "group": "sluice-${{ github.event.pull_request.number || github.run_id }}",
                "cancel-in-progress": "${{ github.event_name == 'pull_request' }}"},
            "jobs": _jobs(pipeline),
        }
        text = dump_yaml(workflow).replace("'on':", "on:", 1)
        # zizmor (pedantic) asks for a reason beside every permission a job holds.
        for permission, reason in PERMISSION_REASONS.items():
            text = text.replace(f"      {permission}\n", f"      {permission} # {reason}\n")
        for repo, sha, tag in ACTIONS.values():
            text = text.replace(f"uses: {repo}@{sha}\n", f"uses: {repo}@{sha} # {tag}\n")
        notes = ["Jobs: " + ", ".join(
            f"{j.tier} ({'needs ' + j.needs if j.needs else 'runs first'})"
            + (f", {publish_job_id(j)} (comments its report)" if j.pull_request else "")
            for j in pipeline.jobs) + "."]
        if pipeline.secrets:
            notes.append("Repository secrets to set: " + ", ".join(pipeline.secrets)
                         + " (never given to pull-request jobs).")
        if pipeline.read_secrets:
            notes.append("Read-only store credentials for pull-request jobs (they never "
                         "write the store): " + ", ".join(pipeline.read_secrets) + ".")
        return header(self, notes) + text
