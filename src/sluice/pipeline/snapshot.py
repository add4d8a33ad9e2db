"""The code snapshot of a stage capsule: the project's files as content-addressed objects.

A worker that runs a capsule has no git checkout and no git credentials. What it
needs of the code is a folder manifest (:mod:`sluice.util.hashing`) in the store:

- every file git tracks under the project root (``git ls-files``), with its
  *working-tree* content, so a local run ships uncommitted edits; a tracked file
  deleted in the working tree is left out;
- plus the untracked files the stage's fingerprint covers (discovered imports, the
  params file, setup files), given by the caller.

Files are hashed through the project's stat cache and only objects the store lacks
are copied (one batched existence check), so an unchanged tree costs a manifest.
A tracked symbolic link is followed only when it points at a file inside the
project: following one out of it could copy host files into a shared store.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from sluice.errors import StoreError, UsageError
from sluice.store.base import Store, checkout_tree
from sluice.util.git import git
from sluice.util.hashing import (
    DIR_SUFFIX,
    TreeEntry,
    hash_manifest,
    manifest_bytes,
    manifest_from_bytes,
)
from sluice.util.safepath import path_problem
from sluice.workspace.project import STATE_DIR, Project

_NEVER = (".git", STATE_DIR)  # git's and sluice's own folders never travel


def tracked_files(root: Path) -> list[str]:
    """Paths (relative to ``root``) of the files git tracks under ``root``."""
    try:
        out = git(root, "ls-files", "-z", "--cached", "--", ".")
    except UsageError as exc:
        raise UsageError(f"cannot list the files of {root} for a code snapshot: {exc.message}",
                         hint="a stage runs remotely from a git repository: run `git init` "
                              "and commit the project") from None
    return sorted({os.fsdecode(p) for p in out.split(b"\0") if p})


def _inside_file(root: Path, rel: str) -> os.stat_result | None:
    """The stat of ``root/rel`` when it is a regular file inside ``root`` (links resolved)."""
    full = root / rel
    try:
        st = os.stat(full)
    except OSError:
        return None  # deleted in the working tree, or a broken link
    if not os.path.isfile(full):
        return None  # a submodule or a link to a folder: not a file of this project
    if os.path.islink(full):
        real_root = os.path.realpath(root)
        if os.path.commonpath([real_root, os.path.realpath(full)]) != real_root:
            return None
    return st


def snapshot_entries(project: Project, extra: Iterable[str] = ()) -> list[TreeEntry]:
    """The snapshot's entries: tracked files as they are on disk, plus ``extra`` files.

    ``extra`` (untracked files the fingerprint covers) must exist: a missing one is a
    :class:`UsageError`, since the stage could not run without it.
    """
    root = project.root
    wanted = dict.fromkeys(tracked_files(root))
    for rel in extra:
        if not (root / rel).is_file():
            raise UsageError(f"`{rel}` is needed by the stage's code snapshot but is not a file",
                             hint="create it, or remove it from the stage's deps")
        wanted[rel] = None
    entries: list[TreeEntry] = []
    for rel in wanted:
        if path_problem(rel) is not None or rel.split("/", 1)[0] in _NEVER:
            continue
        st = _inside_file(root, rel)
        if st is not None:
            entries.append(TreeEntry(rel, project.hasher.file(root / rel, st), st.st_size))
    return sorted(entries, key=lambda e: e.path)


def snapshot_digest(entries: list[TreeEntry]) -> str:
    return hash_manifest(entries)


def put_snapshot(project: Project, store: Store, entries: list[TreeEntry]) -> str:
    """Store the files of ``entries`` that ``store`` lacks, then the manifest; its digest.

    A file that changed since it was hashed is an error (the snapshot would not be
    what the fingerprint saw): rerun.
    """
    digest = snapshot_digest(entries)
    missing = set(store.missing([digest, *(e.hash for e in entries)]))
    if digest not in missing:
        return digest  # a stored manifest promises its files (they go in first)
    sent: set[str] = set()
    for entry in entries:
        if entry.hash in missing and entry.hash not in sent:
            actual = store.add_file(project.root / entry.path, entry.hash)
            if actual != entry.hash:
                raise StoreError(f"`{entry.path}` changed while its snapshot was being stored",
                                 hint="run again once nothing is writing to the project")
            sent.add(entry.hash)
    store.add_bytes(manifest_bytes(entries), digest)
    return digest


def restore_snapshot(store: Store, digest: str, dest: Path) -> list[TreeEntry]:
    """Materialise the snapshot ``digest`` at ``dest`` (every path validated, every file
    verified as it lands: :func:`sluice.store.base.checkout_tree`)."""
    if not digest.endswith(DIR_SUFFIX):
        raise StoreError(f"the code snapshot {digest} is not a folder manifest",
                         hint="rebuild the spec (`sluice run` writes a new one)")
    return checkout_tree(store, digest, dest)


def read_snapshot(store: Store, digest: str) -> list[TreeEntry]:
    """The entries of a stored snapshot, validated."""
    return manifest_from_bytes(store.read_bytes(digest), digest)
