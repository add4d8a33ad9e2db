"""Which CI system this process runs in: one detection for the whole of sluice.

Kept apart from :mod:`sluice.ci.revision` (git, dataclasses, event payloads): every
`sluice run` asks it, to fold its stage lines into a CI log group, and a no-op run
needs nothing else from ``ci``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def ci_system(env: Mapping[str, str] | None = None) -> str | None:
    """``github``, ``gitlab``, ``jenkins``, ``circleci`` or None (not in a known CI)."""
    env = os.environ if env is None else env
    if env.get("GITHUB_ACTIONS") == "true":
        return "github"
    if env.get("GITLAB_CI") == "true":
        return "gitlab"
    if env.get("JENKINS_URL") or env.get("JENKINS_HOME"):
        return "jenkins"
    if env.get("CIRCLECI") == "true":
        return "circleci"
    return None
