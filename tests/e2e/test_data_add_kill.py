"""End-to-end: `sluice data add` killed with -9 half-way leaves a consistent store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sluice.util.hashing import hash_file_uncached
from tests.conftest import sluice
from tests.e2e.test_failures import _assert_store_consistent
from tests.processes import wait_for


def _objects(repo: Path) -> list[Path]:
    return [p for p in (repo / ".sluice/cache/objects").rglob("*") if p.is_file()]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["--copy", "--link"])
def test_kill_9_during_data_add_leaves_no_partial_object_and_a_rerun_completes(
        repo: Path, mode: str) -> None:
    (repo / "sluice.yaml").write_text("datasets:\n  events: data\n")
    for i in range(6000):  # enough files that the kill lands while they are copied
        path = repo / f"data/part{i % 30}/f{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(200 + i % 1800))
    (repo / "data/big.bin").write_bytes(os.urandom(16 * 1024 * 1024 + 5))
    content = {p: hash_file_uncached(p) for p in (repo / "data").rglob("*.bin")}
    proc = subprocess.Popen([sys.executable, "-m", "sluice", "data", "add", mode, "data"],
                            cwd=repo,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_for(lambda: proc.poll() is not None or bool(_objects(repo)), timeout=120,
                 what="the add to store objects")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    if proc.returncode == 0:
        pytest.skip("the add finished before the kill landed; nothing was interrupted")
    assert proc.returncode == -signal.SIGKILL
    lock = repo / "sluice.lock"
    assert not lock.exists() or "data:" not in lock.read_text()  # pinned only when complete
    _assert_store_consistent(repo)  # every object, complete or absent: no partial one
    # Linked or not, every workspace file still holds its bytes.
    assert {p: hash_file_uncached(p) for p in content} == content

    out = sluice(repo, "data", "add", mode, "data").stdout
    assert "pinned data: 6001 file(s)" in out
    assert "unchanged" in sluice(repo, "data", "status").stdout
    _assert_store_consistent(repo)
    stored = {p.read_bytes() for p in _objects(repo) if not p.name.endswith(".dir")}
    assert all(p.read_bytes() in stored for p in (repo / "data").rglob("*.bin"))
    if mode == "--link":  # the rerun linked what the killed add had not
        objects = repo / ".sluice/cache/objects"
        assert all(os.path.samefile(p, objects / d[:2] / d[2:]) for p, d in content.items())
