"""``--base auto``: the revision a change is compared with, from the CI environment.

GitHub Actions: a pull request's base (event payload ``pull_request.base.sha``,
else ``GITHUB_BASE_REF``), a push's ``before``. GitLab: a merge request's
``CI_MERGE_REQUEST_DIFF_BASE_SHA`` (else its target branch), a push's
``CI_COMMIT_BEFORE_SHA``. Jenkins: ``CHANGE_TARGET``, else
``GIT_PREVIOUS_SUCCESSFUL_COMMIT``. CircleCI: the default branch for other
branches, the previous pipeline's commit (``SLUICE_BASE_REVISION``, which the
generated config sets from ``pipeline.git.base_revision``) on the default
branch. Outside CI: the default branch from a feature branch, the upstream
from the default branch. A shallow clone is deepened (or the base fetched)
until the base and its merge base with HEAD are there.

On the default branch itself, where nothing better is known (outside CI once
everything is pushed; a GitLab schedule, whose ``CI_COMMIT_BEFORE_SHA`` is all
zeros; a GitHub schedule or manual run), the fallback would be HEAD itself and
the tier would select nothing: the previous commit (HEAD~1) is the base
instead. Only a first commit has none; then HEAD stays the base and
``ResolvedBase.warning`` says that nothing could be selected.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluice.ci.base import ci_system
from sluice.errors import UsageError
from sluice.util.git import git

AUTO = "auto"
ZERO_SHA = "0" * 40
DEEPEN_STEPS = (50, 200, 1000)  # commits fetched per try before giving up on --deepen


@dataclass(frozen=True)
class Candidate:
    """A base the environment points at: a commit id or a branch name, and why."""

    value: str
    is_branch: bool
    source: str
    # A fallback: when it is HEAD itself, compare with HEAD's parent instead.
    previous_if_head: bool = False


def github_event(env: Mapping[str, str]) -> dict[str, Any]:
    """The webhook payload of the GitHub event that started the workflow ({} when none)."""
    path = env.get("GITHUB_EVENT_PATH")
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _sha(value: object) -> str | None:
    return value if isinstance(value, str) and value and value != ZERO_SHA else None


def candidates(env: Mapping[str, str], default_branch: str) -> list[Candidate]:
    """What the environment says to compare with, best first."""
    system = ci_system(env)
    found: list[Candidate] = []

    def commit(value: object, source: str) -> None:
        if (sha := _sha(value)) is not None:
            found.append(Candidate(sha, False, source))

    def branch(value: object, source: str) -> None:
        if isinstance(value, str) and value:
            found.append(Candidate(value, True, source))

    if system == "github":
        event = github_event(env)
        pull = event.get("pull_request")
        if isinstance(pull, dict) and isinstance(pull.get("base"), dict):
            commit(pull["base"].get("sha"), "the pull request's base (event payload)")
        branch(env.get("GITHUB_BASE_REF"), "GITHUB_BASE_REF")
        if env.get("GITHUB_EVENT_NAME") == "push":
            commit(event.get("before"), "the push's `before` commit (event payload)")
    elif system == "gitlab":
        commit(env.get("CI_MERGE_REQUEST_DIFF_BASE_SHA"), "CI_MERGE_REQUEST_DIFF_BASE_SHA")
        branch(env.get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME"),
               "CI_MERGE_REQUEST_TARGET_BRANCH_NAME")
        commit(env.get("CI_COMMIT_BEFORE_SHA"), "CI_COMMIT_BEFORE_SHA")
        default_branch = env.get("CI_DEFAULT_BRANCH") or default_branch
    elif system == "jenkins":
        branch(env.get("CHANGE_TARGET"), "CHANGE_TARGET")
        commit(env.get("GIT_PREVIOUS_SUCCESSFUL_COMMIT"), "GIT_PREVIOUS_SUCCESSFUL_COMMIT")
    elif system == "circleci":
        current = env.get("CIRCLE_BRANCH")
        if current and current != default_branch:
            branch(default_branch, f"the default branch (CIRCLE_BRANCH={current})")
        commit(env.get("SLUICE_BASE_REVISION"), "pipeline.git.base_revision")
    return found


def _remote(root: Path) -> str | None:
    remotes = git(root, "remote", check=False).decode().split()
    return "origin" if "origin" in remotes else (remotes[0] if remotes else None)


def _commit_of(root: Path, rev: str) -> str | None:
    out = git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    return out.decode().strip() or None


def _is_shallow(root: Path) -> bool:
    return git(root, "rev-parse", "--is-shallow-repository", check=False).strip() == b"true"


def _locate(root: Path, candidate: Candidate, remote: str | None) -> str | None:
    """The commit of ``candidate``, fetching it from the remote when it is missing."""
    names = [f"{remote}/{candidate.value}", candidate.value] if candidate.is_branch and remote \
        else [candidate.value]
    for name in names:
        if (found := _commit_of(root, name)) is not None:
            return found
    if remote is None:
        return None
    if candidate.is_branch:
        ref = f"refs/heads/{candidate.value}:refs/remotes/{remote}/{candidate.value}"
        args = ["fetch", "--no-tags", "--quiet"]
        if _is_shallow(root):
            args.append(f"--depth={DEEPEN_STEPS[0]}")
        git(root, *args, remote, ref, check=False)
        return _commit_of(root, f"{remote}/{candidate.value}")
    git(root, "fetch", "--no-tags", "--quiet", remote, candidate.value, check=False)
    return _commit_of(root, candidate.value)


def _deepen_until_merge_base(root: Path, base: str, remote: str | None) -> bool:
    """Whether HEAD and ``base`` share history, deepening a shallow clone as needed."""
    def has_merge_base() -> bool:
        return bool(git(root, "merge-base", base, "HEAD", check=False).strip())

    if has_merge_base():
        return True
    if remote is None or not _is_shallow(root):
        return False
    for step in DEEPEN_STEPS:
        git(root, "fetch", "--no-tags", "--quiet", f"--deepen={step}", remote, check=False)
        if has_merge_base():
            return True
        if not _is_shallow(root):
            return False
    git(root, "fetch", "--no-tags", "--quiet", "--unshallow", remote, check=False)
    return has_merge_base()


def _local_candidates(root: Path, default_branch: str) -> list[Candidate]:
    current = git(root, "rev-parse", "--abbrev-ref", "HEAD", check=False).decode().strip()
    found: list[Candidate] = []
    if current != default_branch:
        found.append(Candidate(default_branch, True, "the default branch"))
    upstream = git(root, "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}",
                   check=False).decode().strip()
    if upstream:
        found.append(Candidate(upstream, False, "the upstream branch",
                               previous_if_head=current == default_branch))
    found.append(Candidate("HEAD", False, "the last commit (no upstream)",
                           previous_if_head=True))
    return found


def _parent(root: Path, remote: str | None) -> str | None:
    """HEAD's (first) parent, deepening a depth-1 clone to reach it; None for a root commit."""
    parent = _commit_of(root, "HEAD~1")
    if parent is None and remote is not None and _is_shallow(root):
        git(root, "fetch", "--no-tags", "--quiet", f"--deepen={DEEPEN_STEPS[0]}", remote,
            check=False)
        parent = _commit_of(root, "HEAD~1")
    return parent


@dataclass(frozen=True)
class ResolvedBase:
    """The commit ``--base auto`` chose, and the variable or rule it came from."""

    commit: str
    source: str
    warning: str | None = None  # set when no base was found: HEAD is compared with itself


def explain_base(repo_root: Path, *, default_branch: str = "main",
                 env: Mapping[str, str] | None = None) -> ResolvedBase:
    """Resolve ``--base auto`` (see the module docstring), fetching history if needed."""
    env = os.environ if env is None else env
    system = ci_system(env)
    found = candidates(env, default_branch)
    if system is None or not found:
        found += _local_candidates(repo_root, default_branch) if system is None else \
            [Candidate(default_branch, True, "the default branch", previous_if_head=True)]
    remote = _remote(repo_root)
    head = _commit_of(repo_root, "HEAD")
    tried: list[str] = []
    for candidate in found:
        commit = _locate(repo_root, candidate, remote)
        if commit is None:
            tried.append(f"{candidate.value} ({candidate.source}): not found")
            continue
        if candidate.previous_if_head and commit == head:
            # Compared with itself, HEAD changes nothing: take the commit before it.
            parent = _parent(repo_root, remote)
            if parent is not None:
                return ResolvedBase(parent, f"the previous commit ({candidate.source} "
                                            "is HEAD itself)")
            return ResolvedBase(commit, candidate.source, warning=(
                f"--base auto found no base revision ({candidate.source} is HEAD, the first "
                "commit), so no change was detected and nothing was selected by change; "
                "pass --base REV, or run a tier with `select: all`"))
        if _deepen_until_merge_base(repo_root, commit, remote):
            return ResolvedBase(commit, candidate.source)
        tried.append(f"{candidate.value} ({candidate.source}): no common history with HEAD")
    where = {"github": "GitHub Actions", "gitlab": "GitLab CI", "jenkins": "Jenkins",
             "circleci": "CircleCI"}.get(system or "", "this checkout")
    raise UsageError(
        f"--base auto could not find a base revision in {where}: "
        + ("; ".join(tried) or "nothing to try"),
        hint="pass it explicitly (`--base origin/main`), or fetch the history first "
             "(`git fetch --unshallow origin`, GitHub: `fetch-depth: 0` in actions/checkout)")


def resolve_base(repo_root: Path, value: str, *, default_branch: str = "main",
                 env: Mapping[str, str] | None = None) -> str:
    """``value`` itself, or for ``auto`` the commit the CI environment compares with."""
    if value != AUTO:
        return value
    return explain_base(repo_root, default_branch=default_branch, env=env).commit
