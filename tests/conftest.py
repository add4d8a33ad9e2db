"""Shared fixtures: the write guard, temporary git repos, and running the real CLI."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

GUARD_DIR = Path(__file__).parent / "guard"
sys.path.insert(0, str(GUARD_DIR))
import writeguard  # noqa: E402

sys.dont_write_bytecode = True
writeguard.install(None)

# Hypothesis would keep its example database and caches in .hypothesis/ in the
# repository; give it a throw-away folder instead.
from hypothesis import settings  # noqa: E402
from hypothesis.configuration import set_hypothesis_home_dir  # noqa: E402

HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="sluice-tests-hypothesis-")
set_hypothesis_home_dir(HYPOTHESIS_HOME)
settings.register_profile("sluice", database=None)
settings.load_profile("sluice")

# Folders outside tmp_path that the tests may write to, by name: the short temp dir of
# the session's Ray cluster (Ray's socket paths must stay under 107 bytes).
EXTRA_WRITE_ROOTS: list[str] = []


@pytest.fixture(autouse=True)
def _no_writes_outside_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail any test that writes outside its temporary folder, in-process or in a child."""
    violations_log = tmp_path / ".write-violations"
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setenv("SLUICE_TEST_ALLOWED_ROOTS",
                       os.pathsep.join([str(tmp_path), *EXTRA_WRITE_ROOTS]))
    monkeypatch.setenv("SLUICE_TEST_VIOLATIONS", str(violations_log))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(GUARD_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]))
    # Tests that need a CI environment set it themselves; when the suite itself runs in
    # CI, its variables must not turn on group markers and annotations everywhere.
    for variable in ("CI", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITHUB_EVENT_PATH",
                     "GITHUB_BASE_REF", "GITLAB_CI", "JENKINS_URL", "JENKINS_HOME", "CIRCLECI"):
        monkeypatch.delenv(variable, raising=False)
    # Hypothesis writes its caches to its own (throw-away) home while tests run.
    writeguard.set_roots([str(tmp_path), HYPOTHESIS_HOME, *EXTRA_WRITE_ROOTS])
    try:
        yield
    finally:
        writeguard.set_roots(None)
    found = writeguard.take_violations()
    if violations_log.exists():
        found += violations_log.read_text().splitlines()
    if found:
        pytest.fail("test wrote outside its temporary folder:\n" + "\n".join(found[:20]))


@contextlib.contextmanager
def allowed_ray_cluster(workers: int = 1) -> Iterator[Any]:
    """A Ray cluster (tests/ray_cluster.py) whose temp dir the write guard allows, stopped
    on leaving; skips the test when Ray is not installed. For fixtures, which are set up
    before the write guard of the test that asks for them."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'sluice-ml[ray]')")
    from tests.ray_cluster import start_cluster

    cluster = start_cluster(workers=workers)
    EXTRA_WRITE_ROOTS.append(os.path.realpath(cluster.root))
    try:
        yield cluster
    finally:
        EXTRA_WRITE_ROOTS.remove(os.path.realpath(cluster.root))
        cluster.stop()


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """A real two-node Ray cluster for the whole session (tests/ray_cluster.py), started
    by the first test that asks for it; skipped only when Ray is not installed."""
    with allowed_ray_cluster() as cluster:
        yield cluster


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                            text=True)
    return result.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """An empty git repository with an identity, inside the test's temporary folder."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "test@example.com")
    git(path, "config", "user.name", "Test")
    git(path, "config", "commit.gpgsign", "false")
    return path


def sluice(repo: Path, *args: str, check: int | None = 0, timeout: float = 600,
           env: dict[str, str] | None = None,
           preexec_fn: Callable[[], object] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real ``sluice`` CLI in ``repo``; assert the exit code unless check is None."""
    # As a user with the venv activated: stages' `python` is the venv's.
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    result = subprocess.run([sys.executable, "-m", "sluice", *args], cwd=repo,
                            capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "PATH": path, **(env or {})},
                            preexec_fn=preexec_fn)  # e.g. a memory limit
    if check is not None and result.returncode != check:
        raise AssertionError(f"sluice {' '.join(args)} exited {result.returncode}, "
                             f"expected {check}\nstdout:\n{result.stdout}\n"
                             f"stderr:\n{result.stderr}")
    return result
