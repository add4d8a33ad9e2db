"""sluice.util.identity reads git through sluice.util.git.git, the one git wrapper."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sluice.util import git as gitrepo
from sluice.util import identity
from tests.conftest import git


def test_commit_and_branch_of_a_repository(repo: Path) -> None:
    git(repo, "commit", "-q", "--allow-empty", "-m", "first")
    assert identity.commit(repo) == git(repo, "rev-parse", "HEAD").strip()
    assert identity.branch(repo) == "main"
    assert identity.commit(repo.parent) is None  # not a repository: no commit, no error


def test_a_branch_name_that_is_not_utf8_is_no_traceback(repo: Path) -> None:
    git(repo, "commit", "-q", "--allow-empty", "-m", "first")
    subprocess.run([b"git", b"checkout", b"-q", b"-b", b"feat-\xff"], cwd=repo, check=True)
    assert identity.branch(repo) == "feat-\ufffd"


def test_identity_uses_the_shared_wrapper(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, ...]] = []

    def fake(root: Path, *args: str, **options: object) -> bytes:
        calls.append(args)
        return b"abc123\n"

    monkeypatch.setattr(gitrepo, "git", fake)
    monkeypatch.setattr(identity, "git", fake, raising=False)
    assert identity.commit(repo) == "abc123"
    assert calls == [("rev-parse", "HEAD")]
