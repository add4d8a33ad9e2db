"""Jenkins: a declarative ``Jenkinsfile`` for a multibranch pipeline.

Stages run in order, so the gate tier's stage comes first and a failure stops
the expensive ones. ``when`` picks each tier's stage from the build's cause:
``changeRequest()`` for pull requests, the branch for pushes, the timer for
schedules, the ``SLUICE_TIER`` parameter for manual runs. Secrets are Jenkins
credentials bound only inside stages that never run pull-request code;
``ci.read_secrets`` (read-only store credentials) only inside those that do.
"""

from __future__ import annotations

from sluice.ci.model import Job, Pipeline, header

VENV = ". .venv/bin/activate"
TOKEN_CREDENTIAL = "sluice-forge-token"
# The forge comes from CHANGE_URL (sluice.report.publish.jenkins); either variable may serve.
PUBLISH = (f'{VENV} && SLUICE_GITHUB_TOKEN="$SLUICE_FORGE_TOKEN" '
           'SLUICE_GITLAB_TOKEN="$SLUICE_FORGE_TOKEN" sluice report --publish')


def _groovy(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _conditions(job: Job) -> list[str]:
    tests: list[str] = []
    if job.pull_request:
        if job.pr_branches:
            targets = "; ".join(f"changeRequest target: {_groovy(b)}" for b in job.pr_branches)
            tests.append(f"anyOf {{ {targets} }}" if len(job.pr_branches) > 1 else targets)
        else:
            tests.append("changeRequest()")
    for branch in job.push_branches:
        tests.append(f"allOf {{ branch {_groovy(branch)}; not {{ changeRequest() }}; "
                     "not { triggeredBy 'TimerTrigger' }; "
                     "expression { !params.SLUICE_TIER } }")
    if job.schedule:
        tests.append("triggeredBy 'TimerTrigger'")
    if job.manual:
        tests.append(f"expression {{ params.SLUICE_TIER == {_groovy(job.tier)} }}")
    return tests


def _stage(pipeline: Pipeline, job: Job) -> list[str]:
    tests = list(dict.fromkeys(t for j in job.triggers() for t in _conditions(j)))
    lines = [f"        stage({_groovy(job.tier)}) {{",
             f"            // {job.description}",
             "            when {"]
    if len(tests) == 1:
        lines.append(f"                {tests[0]}")
    else:
        lines.append("                anyOf {")
        lines += [f"                    {t}" for t in tests]
        lines.append("                }")
    lines += ["            }",
              "            options {",
              f"                timeout(time: {job.timeout_minutes}, unit: 'MINUTES')",
              "            }"]
    if job.secret_env:
        lines.append("            environment {")
        lines += [f"                {name} = credentials({_groovy(secret)})"
                  for name, secret in job.secret_env]
        lines.append("            }")
    lines += ["            steps {",
              f"                sh {_groovy(f'{VENV} && {job.command}')}",
              "            }",
              "        }"]
    return lines


class Jenkins:
    """``sluice ci generate jenkins``."""

    system = "jenkins"
    path = "Jenkinsfile"
    comment = "//"

    def render(self, pipeline: Pipeline) -> str:
        crons = pipeline.schedules()
        manual = pipeline.manual_tiers()
        install = f"python -m venv .venv && {VENV} && {pipeline.install}"
        artifacts = ", ".join(f"{p.rstrip('/')}/**" if p.endswith("/") else p
                              for p in pipeline.upload_paths)
        lines = ["pipeline {",
                 f"    agent {{ docker {{ image {_groovy(pipeline.image)} }} }}",
                 "    options {",
                 "        disableConcurrentBuilds(abortPrevious: true)",
                 "        timestamps()",
                 "    }"]
        if crons:
            lines += ["    triggers {",
                      *(f"        cron({_groovy(c)})" for c in crons),
                      "    }"]
        lines += ["    parameters {",
                  "        choice(name: 'SLUICE_TIER', choices: "
                  f"[{', '.join(_groovy(t) for t in ('', *manual))}], "
                  "description: 'Run this tier now (empty: as the build cause decides)')",
                  "    }",
                  "    environment {",
                  "        HOME = \"${env.WORKSPACE}\"",
                  "        PIP_CACHE_DIR = \"${env.WORKSPACE}/.cache/pip\"",
                  "    }",
                  "    stages {",
                  "        stage('Install') {",
                  "            steps {",
                  f"                sh {_groovy(install)}",
                  "            }",
                  "        }"]
        for job in pipeline.jobs:
            lines += _stage(pipeline, job)
        lines += ["    }",
                  "    post {",
                  "        always {",
                  f"            archiveArtifacts artifacts: {_groovy(artifacts)}, "
                  "allowEmptyArchive: true",
                  "            script {",
                  "                if (env.CHANGE_ID) {",
                  # The token is bound for this step only (no stage running pull-request
                  # code sees it); a missing credential must not fail the build.
                  "                    catchError(buildResult: 'SUCCESS', stageResult: "
                  "'SUCCESS') {",
                  f"                        withCredentials([string(credentialsId: "
                  f"{_groovy(TOKEN_CREDENTIAL)}, variable: 'SLUICE_FORGE_TOKEN')]) {{",
                  f"                            sh {_groovy(PUBLISH)}",
                  "                        }",
                  "                    }",
                  "                }",
                  "            }",
                  "        }",
                  "    }",
                  "}"]
        notes = ["Multibranch pipeline; sluice's state stays in each branch's workspace."]
        if len(crons) > 1:
            notes.append("A timer build runs every scheduled tier: " + ", ".join(
                f"{j.tier} at `{j.schedule}`" for j in pipeline.jobs if j.schedule) + ".")
        notes.append(f"Credentials: secret text `{TOKEN_CREDENTIAL}` (a GitHub or GitLab token) "
                     "for the pull-request comment"
                     + ("; secret text " + ", ".join(pipeline.secrets)
                        + " (bound only in stages without pull-request code)"
                        if pipeline.secrets else "")
                     + ("; secret text " + ", ".join(pipeline.read_secrets)
                        + " (read-only store credentials, bound in pull-request stages)"
                        if pipeline.read_secrets else "") + ".")
        return header(self, notes) + "\n".join(lines) + "\n"
