"""Who is acting and on what commit: from the CI system's variables, else git and the OS."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

from sluice.errors import UsageError
from sluice.util.git import git

# CI systems and the variable naming the person who triggered the job.
ACTOR_VARIABLES = (
    "GITHUB_ACTOR",        # GitHub Actions
    "GITLAB_USER_LOGIN",   # GitLab CI
    "BUILD_USER_ID",       # Jenkins (build-user-vars plugin)
    "CHANGE_AUTHOR",       # Jenkins multibranch pull requests
    "CIRCLE_USERNAME",     # CircleCI
)
BRANCH_VARIABLES = ("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME",
                    "BRANCH_NAME", "CIRCLE_BRANCH")


def actor(explicit: str | None = None) -> str:
    """The acting identity: CI variables first, then ``--actor``, then the OS user."""
    for name in ACTOR_VARIABLES:
        value = os.environ.get(name)
        if value:
            return value
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _git(root: Path, *args: str) -> str | None:
    """git's answer through the one git wrapper; None outside a repository or without git."""
    try:
        out = git(root, *args)
    except UsageError:
        return None  # identity is best effort: a record without a commit is still a record
    return out.decode("utf-8", "replace").strip() or None


def commit(root: Path) -> str | None:
    return _git(root, "rev-parse", "HEAD")


def branch(root: Path) -> str | None:
    for name in BRANCH_VARIABLES:
        value = os.environ.get(name)
        if value:
            return value
    current = _git(root, "rev-parse", "--abbrev-ref", "HEAD")
    return None if current == "HEAD" else current
