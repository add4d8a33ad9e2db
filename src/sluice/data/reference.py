"""A dataset as it was at another revision, on disk, for drift to read.

Drift compares the data with a reference: the same dataset at the base
revision of a change, or at the commit the model behind an alias was trained
from (its registry lineage). Data pinned in ``sluice.lock`` at that revision is
copied out of the content store by hash; data kept in git is read from git's
objects. Either way the reference lands in a temporary folder the caller
removes, and the workspace is never touched.
"""

from __future__ import annotations

import posixpath
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sluice.config.lockfile import LOCK_FILE, parse_lock
from sluice.errors import StoreError, UsageError
from sluice.store.base import checkout
from sluice.util.fs import atomic_write_bytes
from sluice.util.git import Repo
from sluice.workspace.project import Project


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _from_store(project: Project, digest: str, dest: Path, what: str) -> None:
    store = project.store
    if not store.has(digest):
        raise StoreError(f"{what} ({digest[:12]}) is not in the store {store.url}",
                         hint="fetch it with `sluice data pull` (or run with a shared "
                              "`storage: cache:` that has it)")
    checkout(store, digest, dest)  # manifest paths validated, bytes verified


def _from_git(repo: Repo, commit: str, path: str, dest: Path, what: str) -> None:
    files = {p: sha for p, sha in repo.tree(commit).items() if _inside(p, path)}
    if not files:
        raise UsageError(f"{what} did not exist at {commit[:12]}",
                         hint="compare with a revision that has it, or skip drift for "
                              "this change")
    for rel in files:
        data = repo.read(commit, rel)
        if data is None:
            continue
        target = dest if rel == path else dest / posixpath.relpath(rel, path)
        atomic_write_bytes(target, data)


@contextmanager
def dataset_at(project: Project, name: str, revision: str) -> Iterator[Path]:
    """The dataset ``name`` as of ``revision``, in a temporary file or folder."""
    path = posixpath.normpath(project.config.datasets[name].path.strip())
    what = f"dataset `{name}` ({path})"
    repo = Repo.open(project.root)
    folder = Path(tempfile.mkdtemp(prefix="sluice-reference-"))
    try:
        commit = repo.resolve(revision)
        dest = folder / posixpath.basename(path.rstrip("/"))
        lock = repo.read(commit, LOCK_FILE)
        pins = parse_lock(lock.decode() if lock is not None else None)
        if path in pins:
            _from_store(project, pins[path].hash, dest, f"{what} at {commit[:12]}")
        else:
            _from_git(repo, commit, path, dest, what)
        yield dest
    finally:
        repo.close()
        shutil.rmtree(folder, ignore_errors=True)
