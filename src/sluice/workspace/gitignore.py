"""Keeping what sluice caches out of git: pinned data and stage outputs.

A file sluice stores by hash (a `data add` pin, a stage's output) belongs in
sluice's store, not in git; committing it by accident doubles the repository and
makes `git status` noisy after every run. Each such path gets an anchored
``/path`` line in the project's ``.gitignore``, once, unless a pattern already
ignores it (``build/``). A path git already tracks is left alone: someone
committed it on purpose, and an ignore line would not untrack it anyway, only
confuse.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from sluice.util.fs import FileLock, atomic_write_bytes
from sluice.util.git import git

if TYPE_CHECKING:
    from sluice.workspace.project import Project

GITIGNORE = ".gitignore"


def _tracked(root: Path, paths: list[str]) -> set[str]:
    """Which of ``paths`` git tracks (none when ``root`` is not in a git repository)."""
    listed = git(root, "ls-files", "-z", "--", *paths, check=False)
    tracked = {p for p in listed.decode("utf-8", "replace").split("\0") if p}
    # A tracked folder shows as its files; the folder counts as tracked too.
    return {p for p in paths if p in tracked or any(t.startswith(p + "/") for t in tracked)}


def _already_ignored(root: Path, paths: list[str]) -> set[str]:
    """Which of ``paths`` an existing pattern (``build/``, a parent's .gitignore) ignores."""
    listed = git(root, "check-ignore", "-z", "--stdin", check=False,
                 input="\0".join(paths).encode() + b"\0")
    return {p for p in listed.decode("utf-8", "replace").split("\0") if p}


def ensure_ignored(root: Path, paths: Iterable[str], lock_dir: Path, *,
                   unless_tracked: bool = True) -> list[str]:
    """Add ``/path`` to ``root/.gitignore`` for each path not yet listed; the paths added.

    Parallel stages finish at the same time, so the read-modify-write happens under
    a lock, and the file is replaced atomically. ``unless_tracked=False`` ignores
    tracked paths too (`data add` of a committed file: its content moves to the store).
    """
    wanted = sorted(set(paths))
    if not wanted:
        return []
    gitignore = root / GITIGNORE
    lock = FileLock(lock_dir / "gitignore.lock")
    lock.acquire(blocking=True)
    try:
        existing = gitignore.read_text(encoding="utf-8") if gitignore.exists() else ""
        listed = set(existing.splitlines())
        missing = [p for p in wanted if f"/{p}" not in listed]
        if missing and unless_tracked:
            tracked = _tracked(root, missing)
            missing = [p for p in missing if p not in tracked]
        if missing:
            ignored = _already_ignored(root, missing)
            missing = [p for p in missing if p not in ignored]
        if not missing:
            return []
        if existing and not existing.endswith("\n"):
            existing += "\n"
        text = existing + "".join(f"/{p}\n" for p in missing)
        atomic_write_bytes(gitignore, text.encode())
        return missing
    finally:
        lock.release()


def ignore_outputs(project: Project, stages: Iterable[str]) -> list[str]:
    """Git-ignore the outputs of ``stages`` (see the module docstring), in one batch."""
    outs = [out for stage in stages for out in project.config.stages[stage].outs.values()]
    return ensure_ignored(project.root, outs, project.state_dir / "locks")
