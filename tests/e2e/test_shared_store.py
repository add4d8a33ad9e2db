"""End-to-end: a shared S3 store (moto) as run cache and data remote, across clones.

The DONE-WHEN of the shared store: a second clone configured with the same S3
store restores every stage from it and reruns nothing. Also: push/pull move
only what is missing (counted at the server), concurrent writers stay
consistent, an upload killed mid-way leaves no partial object, and the secret
never shows up in output or in ``.sluice``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sluice.util.hashing import hash_bytes
from tests.conftest import git, sluice
from tests.e2e.pipelines import write_project
from tests.processes import wait_for

if TYPE_CHECKING:
    from tests.s3 import S3Bucket

pytest_plugins = ["tests.s3"]

PIPELINE = """\
storage:
  cache: {url}
stages:
  prepare:
    cmd: python3 src/prepare.py ${{outs.table}}
    deps: [src/prepare.py, data/input.txt]
    outs: {{table: build/table.txt}}
  train:
    cmd: python3 src/train.py ${{stages.prepare.outs.table}} ${{outs.model}}
    deps: [src/train.py]
    outs: {{model: build/model}}
  report:
    cmd: ls ${{stages.train.outs.model}} > ${{outs.listing}}
    outs: {{listing: build/listing.txt}}
"""

FILES = {
    "data/input.txt": "3\n1\n2\n",
    "src/prepare.py": """\
        import sys
        from pathlib import Path
        numbers = sorted(int(x) for x in Path("data/input.txt").read_text().split())
        Path(sys.argv[1]).write_text("\\n".join(map(str, numbers)) + "\\n")
        """,
    "src/train.py": """\
        import sys
        from pathlib import Path
        table, out = Path(sys.argv[1]), Path(sys.argv[2])
        out.mkdir(parents=True, exist_ok=True)
        for n in table.read_text().split():
            (out / f"weights-{n}.txt").write_text(n * int(n) + "\\n")
        (out / "empty.txt").write_text("")
        """,
}


def _outputs(repo: Path) -> dict[str, bytes]:
    return {p.relative_to(repo).as_posix(): p.read_bytes()
            for p in sorted((repo / "build").rglob("*")) if p.is_file()}


def _statuses(result: subprocess.CompletedProcess[str]) -> dict[str, tuple[str, bool]]:
    return {s["stage"]: (s["status"], s["restored"]) for s in json.loads(result.stdout)["stages"]}


def _assert_no_secret(secret: str, *places: Path | str) -> None:
    for place in places:
        if isinstance(place, str):
            assert secret not in place
            continue
        for path in place.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path


def _verify_bucket(s3: S3Bucket) -> dict[str, int]:
    """Every object under sluice/objects/ hashes to its name; returns the listing."""
    keys = s3.keys("sluice/objects/")
    for key in keys:
        two, rest = key.split("/")[-2:]
        assert hash_bytes(s3.read(key)) == (two + rest).removesuffix(".dir"), key
    return keys


@pytest.mark.slow
def test_second_clone_restores_every_stage_from_the_shared_store(
        repo: Path, tmp_path: Path, s3: S3Bucket) -> None:
    write_project(repo, PIPELINE.format(url=s3.url()), FILES)
    first = sluice(repo, "run", "--json")
    assert {s: st for s, (st, _) in _statuses(first).items()} == dict.fromkeys(
        ["prepare", "train", "report"], "ran")
    assert s3.keys("sluice/runs/") and _verify_bucket(s3)

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    assert not (clone / ".sluice").exists()
    second = sluice(clone, "run", "--json")
    assert _statuses(second) == dict.fromkeys(["prepare", "train", "report"], ("cached", True))
    assert _outputs(clone) == _outputs(repo)
    assert sluice(clone, "status", "--json").returncode == 0

    # Nothing left to do in the clone either: a rerun touches nothing.
    s3.counter.reset()
    third = sluice(clone, "run", "--json")
    assert {st for st, _ in _statuses(third).values()} == {"cached"}
    assert s3.counter.counts.get("PUT", 0) == 0
    _assert_no_secret(s3.secret, repo / ".sluice", clone / ".sluice", first.stdout,
                      first.stderr, second.stdout, second.stderr)


@pytest.fixture
def data_repo(repo: Path, s3: S3Bucket) -> Path:
    (repo / "sluice.yaml").write_text(f"storage:\n  cache: {s3.url()}\n")
    events = repo / "data/events"
    events.mkdir(parents=True)
    for i in range(40):
        (events / f"part-{i:02d}.csv").write_text(f"{i},{i * i}\n" * (i + 1))
    sluice(repo, "data", "add", "data/events")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "data")
    return repo


@pytest.mark.slow
def test_push_and_pull_transfer_only_missing_objects(data_repo: Path, tmp_path: Path,
                                                     s3: S3Bucket) -> None:
    s3.counter.reset()
    pushed = sluice(data_repo, "data", "push")  # the remote defaults to storage.cache
    assert "41 object(s) copied" in pushed.stdout
    assert s3.counter.counts["PUT"] == 41  # 40 files and the folder's manifest
    assert s3.counter.total <= 41 + 3, "\n".join(r for r in s3.counter.log if "PUT" not in r)

    s3.counter.reset()
    assert "0 object(s) copied" in sluice(data_repo, "data", "push").stdout
    assert s3.counter.counts.get("PUT", 0) == 0 and s3.counter.total <= 3

    (data_repo / "data/events/part-07.csv").write_text("edited\n")
    sluice(data_repo, "data", "add", "data/events")
    s3.counter.reset()
    assert "2 object(s) copied" in sluice(data_repo, "data", "push").stdout
    assert s3.counter.counts["PUT"] == 2
    git(data_repo, "commit", "-qam", "edit")

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(data_repo), str(clone))
    s3.counter.reset()
    assert "41 object(s) copied" in sluice(clone, "data", "pull").stdout
    assert s3.counter.counts["GET"] <= 41 + 2 and "PUT" not in s3.counter.counts
    sluice(clone, "data", "checkout")
    assert (clone / "data/events/part-07.csv").read_text() == "edited\n"
    assert (clone / "data/events/part-39.csv").read_bytes() == \
        (data_repo / "data/events/part-39.csv").read_bytes()
    s3.counter.reset()
    assert "0 object(s) copied" in sluice(clone, "data", "pull").stdout
    assert s3.counter.counts.get("GET", 0) <= 1  # the folder's manifest, nothing else
    _verify_bucket(s3)


@pytest.mark.slow
def test_push_checks_every_file_even_where_the_folder_manifest_is_there(
        data_repo: Path, s3: S3Bucket) -> None:
    sluice(data_repo, "data", "push")
    complete = _verify_bucket(s3)
    # A share of the files goes missing remotely; the folder's manifest stays. It
    # proves nothing about its files: the push must find and send exactly these.
    gone = sorted(k for k in complete if not k.endswith(".dir"))[::10]
    for key in gone:
        s3.client.delete_object(Bucket=s3.name, Key=key)
    s3.counter.reset()
    assert f"{len(gone)} object(s) copied" in sluice(data_repo, "data", "push").stdout
    assert s3.counter.counts["PUT"] == len(gone), s3.counter.log
    assert _verify_bucket(s3) == complete
    s3.counter.reset()
    assert "0 object(s) copied" in sluice(data_repo, "data", "push").stdout
    assert set(s3.counter.counts) <= {"GET", "HEAD"}, s3.counter.log  # nothing written
    assert _verify_bucket(s3) == complete


def _popen(repo: Path, *args: str, jobs: int = 4) -> subprocess.Popen[str]:
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    return subprocess.Popen([sys.executable, "-m", "sluice", *args], cwd=repo, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PATH": path, "SLUICE_TRANSFER_JOBS": str(jobs)})


@pytest.mark.slow
def test_concurrent_writers_stay_consistent(tmp_path: Path, s3: S3Bucket) -> None:
    repos = []
    for name in ("a", "b"):
        repo = tmp_path / name
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        write_project(repo, PIPELINE.format(url=s3.url()), FILES, commit=False)
        data = repo / "data/shared"
        data.mkdir()
        for i in range(30):  # the same in both
            (data / f"common-{i}.bin").write_bytes(bytes([i]) * 5000)
        for i in range(20):  # different in each
            (data / f"own-{i}.bin").write_bytes(f"{name}{i}".encode() * 700)
        sluice(repo, "data", "add", "data/shared")
        repos.append(repo)
    # Both at once: the same objects, overlapping objects, the same run records.
    pushes = [_popen(r, "data", "push") for r in repos]
    runs = [_popen(r, "run", "--json") for r in repos]
    for proc in pushes + runs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, out + err
        _assert_no_secret(s3.secret, out, err)
    keys = _verify_bucket(s3)
    data_objects = 30 + 2 * 20 + 2  # common files, each repo's own, two manifests
    assert len(keys) >= data_objects
    assert len(s3.keys("sluice/runs/")) == 3  # same pipeline, same fingerprints
    clone = tmp_path / "c"
    subprocess.run(["cp", "-r", str(repos[0]), str(clone)], check=True)
    for leftover in ("build", ".sluice"):
        subprocess.run(["rm", "-rf", str(clone / leftover)], check=True)
    restored = sluice(clone, "run", "--json")
    assert {st for st, _ in _statuses(restored).values()} == {"cached"}


@pytest.mark.slow
def test_interrupted_upload_leaves_no_partial_object_and_a_retry_completes(
        repo: Path, s3: S3Bucket) -> None:
    (repo / "sluice.yaml").write_text(f"storage:\n  cache: {s3.url()}\n")
    data = repo / "data/big"
    data.mkdir(parents=True)
    for i in range(60):
        (data / f"chunk-{i:02d}.bin").write_bytes(os.urandom(256 * 1024))
    (data / "huge.bin").write_bytes(os.urandom(20 * 1024 * 1024))  # a multipart upload
    sluice(repo, "data", "add", "data/big")
    proc = _popen(repo, "data", "push", jobs=2)
    wait_for(lambda: len(s3.keys("sluice/objects/")) >= 3 or proc.poll() is not None,
             timeout=120, what="for the push to start uploading")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    partial = _verify_bucket(s3)
    assert len(partial) < 62  # killed mid-way, and whatever is visible is whole
    assert not any(k.endswith(".dir") for k in partial)  # the manifest goes last
    retry = sluice(repo, "data", "push")
    assert f"{62 - len(partial)} object(s) copied" in retry.stdout
    assert len(_verify_bucket(s3)) == 62
    _assert_no_secret(s3.secret, retry.stdout, retry.stderr, repo / ".sluice")


def test_store_problems_are_clear_and_never_show_the_secret(repo: Path, s3: S3Bucket) -> None:
    (repo / "sluice.yaml").write_text(f"storage:\n  cache: s3://{s3.name}-missing/x\n")
    (repo / "data").mkdir()
    (repo / "data/a.txt").write_text("a\n")
    sluice(repo, "data", "add", "data/a.txt")
    failed = sluice(repo, "data", "push", check=1)
    assert "bucket" in failed.stderr + failed.stdout
    _assert_no_secret(s3.secret, failed.stdout, failed.stderr)
    (repo / "sluice.yaml").write_text(f"storage:\n  cache: s3://{s3.name}/x?secret_key={s3.secret}\n")
    refused = sluice(repo, "data", "push", check=None)
    assert refused.returncode != 0 and "contains a credential" in refused.stderr
    _assert_no_secret(s3.secret, refused.stdout, refused.stderr)
