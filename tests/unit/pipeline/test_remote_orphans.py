"""Deciding from a database row whether a remote job's run still lives (sluice.pipeline.remote)."""

from __future__ import annotations

import os
from pathlib import Path

from sluice.pipeline.remote import run_is_alive
from sluice.util.fs import FileLock


def _lock(tmp_path: Path, name: str = "run-20261205T000000-abc123.lock") -> Path:
    path = tmp_path / "checkout" / ".sluice" / "locks" / name
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    return path


def test_a_held_run_lock_means_the_run_lives_and_a_free_one_that_it_died(tmp_path: Path) -> None:
    path = _lock(tmp_path)
    held = FileLock(path)
    assert held.acquire()
    assert run_is_alive(str(path))
    held.release()
    assert not run_is_alive(str(path))


def test_a_path_from_the_database_is_never_created_nor_followed(tmp_path: Path) -> None:
    missing = tmp_path / "checkout" / ".sluice" / "locks" / "run-x.lock"
    assert not run_is_alive(str(missing))
    assert not missing.exists() and not missing.parent.exists()
    # Not shaped like a run lock: never opened, whatever it is.
    elsewhere = tmp_path / "important.txt"
    elsewhere.write_text("keep")
    held = FileLock(elsewhere)
    assert held.acquire()
    assert not run_is_alive(str(elsewhere))
    assert not run_is_alive("relative/.sluice/locks/run-x.lock")
    assert not run_is_alive(None)
    held.release()
    # A link in a run lock's place is not followed.
    target = _lock(tmp_path / "other")
    link = tmp_path / "checkout" / ".sluice" / "locks" / "run-link.lock"
    link.parent.mkdir(parents=True)
    os.symlink(target, link)
    holder = FileLock(target)
    assert holder.acquire()
    assert not run_is_alive(str(link))
    holder.release()
    assert elsewhere.read_text() == "keep"
