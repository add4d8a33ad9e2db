"""End-to-end: a fresh clone whose pinned data exists only in the shared store (moto S3).

The issue's report: such a clone failed its first stage because nothing fetched the
data. Now ``sluice run --tier pr --base main`` fetches what the selected stages read
(with no ``sluice data pull``), restores the cached upstream stage, runs the changed
one, and — run as the generated pull-request job runs it, read-only — writes nothing
to the store. Data never pushed is a clear error naming the pin, the store and the
push; ``sluice data pull`` checks out unless told ``--no-checkout``.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import git, sluice
from tests.e2e.pipelines import write_project

if TYPE_CHECKING:
    from tests.s3 import S3Bucket

pytest_plugins = ["tests.s3"]

READ_TOKEN = "SLUICE_TEST_STORE_READ"  # a read secret whose name does not say so
CONFIG = """\
storage:
  cache: {url}
stages:
  prepare:
    cmd: python3 src/prepare.py ${{outs.table}}
    deps: [src/prepare.py, data/raw]
    outs: {{table: build/table.txt}}
  train:
    kind: train
    cmd: python3 src/train.py ${{stages.prepare.outs.table}} ${{outs.model}}
    deps: [src/train.py]
    outs: {{model: build/model.txt}}
tiers:
  pr: {{trigger: pull_request}}
ci:
  read_secrets: [{token}]
"""
FILES = {
    "src/prepare.py": """\
        import sys
        from pathlib import Path
        rows = [line for f in sorted(Path("data/raw").iterdir()) for line in f.read_text().split()]
        Path(sys.argv[1]).write_text("\\n".join(sorted(rows)) + "\\n")
        """,
    "src/train.py": """\
        import os, sys
        from pathlib import Path
        print("read token:", os.environ.get("SLUICE_TEST_STORE_READ"))
        rows = Path(sys.argv[1]).read_text().split()
        Path(sys.argv[2]).write_text(f"model of {len(rows)} rows\\n")
        """,
}


def _origin(repo: Path, s3: S3Bucket, *, push: bool) -> Path:
    write_project(repo, CONFIG.format(url=s3.url(), token=READ_TOKEN), FILES, commit=False)
    raw = repo / "data/raw"
    raw.mkdir(parents=True)
    for i in range(12):
        (raw / f"loans-{i:02d}.csv").write_text(f"{i},{i * 7}\n" * (i + 1))
    sluice(repo, "data", "add", "data/raw")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "pipeline and pinned data")
    if push:
        sluice(repo, "data", "push")
        sluice(repo, "run", "--tier", "pr")  # shares its results: prepare's record and outputs
    return repo


def _feature_clone(origin: Path, tmp_path: Path) -> Path:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    for key, value in (("user.email", "test@example.com"), ("user.name", "Test"),
                       ("commit.gpgsign", "false")):
        git(clone, "config", key, value)
    git(clone, "checkout", "-q", "-b", "feature")
    train = clone / "src/train.py"
    train.write_text(train.read_text().replace("model of", "a model of"))
    git(clone, "commit", "-q", "-am", "change training")
    assert not (clone / "data/raw").exists() and not (clone / ".sluice").exists()
    return clone


def _pr_job_env() -> dict[str, str]:
    """The variables the generated pull-request job sets before `sluice run`."""
    from sluice.ci.model import build_pipeline
    from sluice.config.schema import ConfigSpec

    spec = ConfigSpec.model_validate({
        "storage": {"cache": "s3://b/p"}, "ci": {"read_secrets": [READ_TOKEN]},
        "stages": {"a": {"cmd": "true"}}, "tiers": {"pr": {"trigger": "pull_request"}}})
    [job] = build_pipeline(spec).jobs
    words = shlex.split(job.command)
    env = dict(w.split("=", 1) for w in words[:words.index("sluice")])
    assert env.get("SLUICE_CACHE_READ_ONLY") == "1" and "SLUICE_CACHE_URL" not in env
    return env


@pytest.mark.slow
def test_fresh_clone_fetches_pinned_data_and_the_pr_job_writes_nothing(
        repo: Path, tmp_path: Path, s3: S3Bucket) -> None:
    origin = _origin(repo, s3, push=True)
    clone = _feature_clone(origin, tmp_path)
    token = "read-only-" + s3.secret[-12:]
    s3.counter.reset()
    run = sluice(clone, "run", "--tier", "pr", "--base", "main", "--json",
                 env={**_pr_job_env(), READ_TOKEN: token})
    stages = {s["stage"]: (s["status"], s["restored"]) for s in json.loads(run.stdout)["stages"]}
    assert stages == {"prepare": ("cached", True), "train": ("ran", False)}, run.stderr
    assert f"fetching `data/raw` (12 file(s)) from {s3.url()}" in run.stderr
    assert "fetched 13/13 object(s)" in run.stderr  # 12 files and the folder's manifest
    for name in ("loans-00.csv", "loans-11.csv"):
        assert (clone / "data/raw" / name).read_bytes() == (origin / "data/raw" / name).read_bytes()
    assert (clone / "build/model.txt").read_text() == "a model of 78 rows\n"
    # Read-only: nothing was written to the shared store, not even train's new result.
    writes = {m: n for m, n in s3.counter.counts.items() if m in ("PUT", "POST", "DELETE")}
    assert writes == {}, [r for r in s3.counter.log if not r.startswith(("GET", "HEAD"))]
    assert json.loads(sluice(clone, "data", "status", "--json").stdout)[0]["state"] == \
        "unchanged"
    refused = sluice(clone, "data", "push", check=2, env=_pr_job_env())
    assert "never writes it" in refused.stderr
    assert s3.counter.counts.get("PUT", 0) == 0
    # The read secret is masked in the stage's log, though its name does not say secret.
    log = (clone / ".sluice/logs/train.log").read_text()
    assert "read token: ***" in log and token not in log + run.stdout + run.stderr


def test_data_never_pushed_is_named_with_the_store_and_the_push(
        repo: Path, tmp_path: Path, s3: S3Bucket) -> None:
    clone = _feature_clone(_origin(repo, s3, push=False), tmp_path)
    failed = sluice(clone, "run", "--tier", "pr", "--base", "main", check=2,
                    env=_pr_job_env())
    assert "pinned data is missing from the workspace and not in the shared store " \
           f"{s3.url()}" in failed.stderr
    assert "`data/raw` (" in failed.stderr and "read by `prepare`" in failed.stderr
    assert "`sluice data push data/raw`" in failed.stderr
    assert "running" not in failed.stderr and not (clone / "build").exists()


def test_data_pull_checks_out_unless_told_not_to(repo: Path, tmp_path: Path,
                                                 s3: S3Bucket) -> None:
    clone = _feature_clone(_origin(repo, s3, push=True), tmp_path)
    pulled = sluice(clone, "data", "pull", "--no-checkout")
    assert "13 object(s) copied" in pulled.stdout and "restored" not in pulled.stdout
    assert not (clone / "data/raw").exists()
    s3.counter.reset()
    checked = sluice(clone, "data", "pull")
    assert "0 object(s) copied" in checked.stdout and "restored data/raw" in checked.stdout
    assert s3.counter.counts.get("GET", 0) <= 1  # the manifest at most: files are local
    assert (clone / "data/raw/loans-03.csv").read_text() == "3,21\n" * 4
    assert "all pinned data already matches" in sluice(clone, "data", "pull").stdout
