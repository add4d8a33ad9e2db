"""End-to-end: `sluice gc` in real git repositories.

What is referenced survives (registry versions and the alias history, sluice.lock in the
workspace and at --rev, the last runs per tier); what is not goes; --dry-run deletes
nothing; a run in progress keeps gc away; a shared S3 store spares young objects; and a
gc killed with -9 leaves a store whose records and manifests name only what is there.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sluice.store.local import LocalStore
from sluice.util.hashing import TreeEntry, hash_bytes, manifest_bytes, manifest_from_bytes
from tests.conftest import git, sluice
from tests.e2e.pipelines import GATED_TO_STAGING, MODEL_PIPELINE, PREDICT, write_project
from tests.processes import wait_for

if TYPE_CHECKING:
    from tests.s3 import S3Bucket

pytest_plugins = ["tests.s3"]

CONFIG = MODEL_PIPELINE + GATED_TO_STAGING


def _gc(repo: Path, *args: str, check: int = 0, env: dict[str, str] | None = None
        ) -> dict[str, object]:
    result = sluice(repo, "gc", "--json", *args, check=check, env=env)
    return json.loads(result.stdout) if check == 0 else {"stderr": result.stderr}


def _objects(repo: Path) -> set[str]:
    folder = repo / ".sluice/cache/objects"
    return {p.parent.name + p.name for p in folder.glob("*/*")}


def _version(repo: Path, quality: float) -> None:
    (repo / "params.yaml").write_text(f"quality: {quality}\nrows: 300\n")
    sluice(repo, "run", "--tier", "merge")


def _registry(repo: Path) -> tuple[set[str], list[tuple[str, int, int]]]:
    with sqlite3.connect(repo / ".sluice/sluice.db") as db:
        hashes = {h for row in db.execute("SELECT artifact_hash, predictions_hash "
                                          "FROM model_versions") for h in row if h}
        moves = list(db.execute("SELECT alias, from_version, to_version FROM alias_events"))
    return hashes, moves


def test_gc_keeps_references_and_removes_the_rest(repo: Path) -> None:
    write_project(repo, CONFIG, files={"predict.py": PREDICT,
                                       "params.yaml": "quality: 0.3\nrows: 300\n"})
    (repo / "data").mkdir()
    (repo / "data/raw.txt").write_text("first pin\n")
    sluice(repo, "data", "add", "data/raw.txt")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "pin v1")
    old_rev = git(repo, "rev-parse", "HEAD").strip()
    old_pin = hash_bytes(b"first pin\n")

    for quality in (0.3, 0.35, 0.4):  # three versions; staging moves 1 → 2 → 3
        _version(repo, quality)
    hashes, moves = _registry(repo)
    assert [m[2] for m in moves] == [1, 2, 3] and len(hashes) == 6

    # Plain runs (no registration) beyond the last one of their tier: unreferenced.
    (repo / "params.yaml").write_text("quality: 0.45\nrows: 300\n")
    sluice(repo, "run", "train")
    dropped = hash_bytes(b"model 0.45\n")
    (repo / "params.yaml").write_text("quality: 0.5\nrows: 300\n")
    sluice(repo, "run", "train")
    current = hash_bytes(b"model 0.5\n")

    (repo / "data/raw.txt").write_text("second pin\n")
    sluice(repo, "data", "add", "data/raw.txt")
    git(repo, "commit", "-q", "-am", "pin v2")
    new_pin = hash_bytes(b"second pin\n")
    stray = hash_bytes(b"nobody names me\n")
    LocalStore(repo / ".sluice/cache").add_bytes(b"nobody names me\n", stray)
    before = _objects(repo)
    assert {old_pin, new_pin, stray, dropped, current} | hashes <= before

    dry = _gc(repo, "--dry-run", "--keep-runs", "1", "--rev", old_rev)
    assert _objects(repo) == before  # nothing deleted
    local = dry["stores"][0]  # type: ignore[index]
    assert local["removed_objects"] >= 2 and local["removed_bytes"] > 0
    assert dry["dry_run"] is True

    report = _gc(repo, "--keep-runs", "1", "--rev", old_rev)
    after = _objects(repo)
    assert stray not in after and dropped not in after
    assert {old_pin, new_pin, current} | hashes <= after  # alias history: versions 1-3
    assert report["kept"]["sluice.lock at revisions"] >= 1  # type: ignore[index]
    assert report["kept"]["alias history"] >= 1  # type: ignore[index]
    assert report["state"]["after_bytes"] <= report["state"]["before_bytes"]  # type: ignore[index]

    # A branch that still pins it keeps it with --all-branches.
    git(repo, "branch", "keep-v1", old_rev)
    _gc(repo, "--all-branches", "--keep-runs", "1")
    assert old_pin in _objects(repo)
    git(repo, "branch", "-D", "keep-v1")
    # Without --rev the old pin is referenced by nothing any more.
    _gc(repo, "--keep-runs", "1")
    assert old_pin not in _objects(repo) and new_pin in _objects(repo)
    # What was kept still works: version 1's artifact comes out, and a no-op run.
    sluice(repo, "models", "pull", "churn:1", "-o", "v1.txt")
    assert (repo / "v1.txt").read_text() == "model 0.3\n"
    statuses = json.loads(sluice(repo, "run", "--json", "train").stdout)["stages"]
    assert {s["status"] for s in statuses} == {"cached"}


WAIT = """\
import pathlib, sys, time
pathlib.Path("started").touch()
deadline = time.monotonic() + 120  # a hang guard, not a timing
while not pathlib.Path("release").exists() and time.monotonic() < deadline:
    time.sleep(0.05)
pathlib.Path(sys.argv[1]).parent.mkdir(exist_ok=True)
pathlib.Path(sys.argv[1]).write_text("made while gc was refused\\n")
"""


def test_a_run_in_progress_keeps_gc_away(repo: Path) -> None:
    write_project(repo, "stages:\n  slow:\n    cmd: python3 wait.py ${outs.out}\n"
                        "    deps: [wait.py]\n    outs: {out: build/out.txt}\n",
                  files={"wait.py": WAIT})
    env = {**os.environ, "PATH": os.pathsep.join([os.path.dirname(sys.executable),
                                                  os.environ.get("PATH", "")])}
    run = subprocess.Popen([sys.executable, "-m", "sluice", "run"], cwd=repo, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: (repo / "started").exists(), 120, "for the stage to start")
        refused = sluice(repo, "gc", check=1)
        assert "a sluice run is using the store" in refused.stderr + refused.stdout
        assert "Traceback" not in refused.stderr
    finally:
        (repo / "release").touch()
        out, _ = run.communicate(timeout=300)
    assert run.returncode == 0, out
    _gc(repo, "--keep-runs", "0")  # now it runs; the workspace's outputs are kept
    (repo / "build/out.txt").unlink()
    statuses = json.loads(sluice(repo, "run", "--json").stdout)["stages"]
    assert statuses[0]["status"] == "cached"
    assert (repo / "build/out.txt").read_text() == "made while gc was refused\n"


SHARED = """\
storage:
  cache: {url}
stages:
  make:
    cmd: echo made > ${{outs.out}}
    outs: {{out: build/out.txt}}
"""


def test_a_shared_store_spares_young_objects(repo: Path, s3: S3Bucket) -> None:
    write_project(repo, SHARED.format(url=s3.url()), files={})
    sluice(repo, "run")
    made = hash_bytes(b"made\n")
    stray = hash_bytes(b"uploaded by a run elsewhere\n")
    s3.write(f"sluice/objects/{stray[:2]}/{stray[2:]}", b"uploaded by a run elsewhere\n")

    report = _gc(repo, "--shared")
    shared = report["stores"][1]  # type: ignore[index]
    assert shared["role"] == "shared" and shared["spared_young"] == 1
    assert shared["removed_objects"] == 0
    keys = s3.keys("sluice/objects/")
    assert f"sluice/objects/{stray[:2]}/{stray[2:]}" in keys

    # This checkout's own store on S3 ($SLUICE_CACHE) has no lease either: grace too.
    own = _gc(repo, env={"SLUICE_CACHE": s3.url()})["stores"][0]  # type: ignore[index]
    assert own["role"] == "shared" and own["spared_young"] == 1
    assert f"sluice/objects/{stray[:2]}/{stray[2:]}" in s3.keys("sluice/objects/")

    _gc(repo, "--shared", "--grace", "0")
    keys = s3.keys("sluice/objects/")
    assert f"sluice/objects/{stray[:2]}/{stray[2:]}" not in keys
    assert f"sluice/objects/{made[:2]}/{made[2:]}" in keys
    assert s3.secret not in json.dumps(report)
    bad = sluice(repo, "gc", "--grace", "soon", check=2)
    assert "--grace 'soon'" in bad.stderr


KILLER = """\
import os, sys, time
real = os.unlink
def slow(path, *args, **kwargs):  # a gc slowed down, so that a kill lands mid-way
    time.sleep(0.1)
    return real(path, *args, **kwargs)
os.unlink = slow
from sluice.cli.main import main
sys.argv = ["sluice", "gc", "--keep-runs", "0"]
main()
"""


def _consistent(store: LocalStore) -> None:
    """Every record names objects that are there; every manifest, files that are there."""
    for path in store.runs.glob("*/*.json"):
        record = json.loads(path.read_text())
        for out in record["outs"].values():
            assert store.has(out["hash"]), f"{path} names a missing object"
    for path in store.objects.glob("*/*.dir"):
        for entry in manifest_from_bytes(path.read_bytes()):
            assert store.has(entry.hash), f"{path} names a missing file"


def test_gc_killed_midway_leaves_the_store_consistent(repo: Path) -> None:
    write_project(repo, "stages:\n  s:\n    cmd: echo x > ${outs.o}\n"
                        "    outs: {o: build/o.txt}\n", files={})
    store = LocalStore(repo / ".sluice/cache")
    for i in range(20):  # old results nothing references: folders of three files
        entries = []
        for j in range(3):
            data = f"old {i} {j}\n".encode()
            store.add_bytes(data, hash_bytes(data))
            entries.append(TreeEntry(f"f{j}.txt", hash_bytes(data), len(data)))
        manifest = manifest_bytes(entries)
        digest = hash_bytes(manifest) + ".dir"
        store.add_bytes(manifest, digest)
        store.put_run(hash_bytes(f"fp {i}".encode()), {
            "stage": "s", "run_id": "gone", "outs": {"d": {"path": "build/d", "hash": digest}}})
    count = len(_objects(repo))
    env = {**os.environ, "SLUICE_TRANSFER_JOBS": "1"}
    gc = subprocess.Popen([sys.executable, "-c", KILLER], cwd=repo, env=env)
    try:
        wait_for(lambda: len(_objects(repo)) < count, 120, "for gc to delete an object")
    finally:
        gc.send_signal(signal.SIGKILL)
        gc.wait(30)
    _consistent(store)
    assert _objects(repo)  # killed before the end
    _gc(repo, "--keep-runs", "0")  # a second gc finishes the job
    _consistent(store)
    assert not list(store.runs.glob("*/*.json")) and not _objects(repo)


def test_bad_usage_is_told_what_to_do(repo: Path) -> None:
    write_project(repo, "stages:\n  s:\n    cmd: echo x > ${outs.o}\n"
                        "    outs: {o: build/o.txt}\n", files={})
    no_shared = sluice(repo, "gc", "--shared", check=2)
    assert "no shared store is configured" in no_shared.stderr
    assert "storage: cache:" in no_shared.stderr
    negative = sluice(repo, "gc", "--keep-runs", "-1", check=2)
    assert "--keep-runs must be 0 or more" in negative.stderr
    not_a_rev = sluice(repo, "gc", "--rev", "no-such-branch", check=2)
    assert "no-such-branch" in not_a_rev.stderr and "Traceback" not in not_a_rev.stderr
