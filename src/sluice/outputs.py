"""Moving stage outputs between the workspace and the store.

After a stage runs its outputs are hashed and copied into the store; on a
cache hit they are restored from it. A restored file is a fresh copy (never a
hard link to the stored object), so editing it cannot corrupt the cache.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from sluice.config import Stage
from sluice.errors import StageFailed, StoreError
from sluice.fsutil import remove_path
from sluice.hashing import DIR_SUFFIX, TreeEntry, hash_manifest, manifest_bytes, manifest_from_bytes
from sluice.project import Project

OutputRecord = dict[str, dict[str, str]]  # out name -> {"path": ..., "hash": ...}
# Restored files get an mtime this far in the past so the stat cache can trust
# them at once (see sluice.state on "racy" entries).
_RESTORED_AGE_NS = 2_000_000_000


def remove_outputs(project: Project, stage: Stage) -> None:
    """Delete a stage's outputs before it runs, so it never appends to stale data."""
    for path in stage.outs.values():
        remove_path(project.root / path)


def prepare_output_parents(project: Project, stage: Stage) -> None:
    for path in stage.outs.values():
        (project.root / path).parent.mkdir(parents=True, exist_ok=True)


def save_outputs(project: Project, stage: Stage) -> OutputRecord:
    """Hash every output and put it into the store."""
    store, hasher = project.store, project.hasher
    record: OutputRecord = {}
    for name, rel in stage.outs.items():
        path = project.root / rel
        if path.is_dir():
            entries = []
            for entry in hasher.tree_entries(path):
                digest = store.add_file(path / entry.path, entry.hash)
                entries.append(TreeEntry(entry.path, digest, entry.size))
            digest = hash_manifest(entries)
            store.add_bytes(manifest_bytes(entries), digest)
        elif path.is_file():
            digest = store.add_file(path, hasher.file(path))
        else:
            raise StageFailed(f"stage `{stage.name}` finished but did not create output "
                              f"`{name}` at `{rel}`",
                              hint="make the command write that path, or fix `outs:`")
        record[name] = {"path": rel, "hash": digest}
    return record


def outputs_match(project: Project, record: OutputRecord) -> bool:
    """Whether the workspace holds exactly the recorded outputs (cheap via the stat cache)."""
    for item in record.values():
        path = project.root / item["path"]
        try:
            if project.hasher.path(path) != item["hash"]:
                return False
        except (FileNotFoundError, NotADirectoryError):
            return False
    return True


def _restore_file(project: Project, digest: str, dest: Path) -> None:
    project.store.checkout_file(digest, dest)
    past = time.time_ns() - _RESTORED_AGE_NS
    os.utime(dest, ns=(past, past))
    project.stat_cache.put(str(dest), os.stat(dest), digest)


def _restore_tree(project: Project, digest: str, dest: Path) -> None:
    entries = manifest_from_bytes(project.store.read_bytes(digest))
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Build the folder beside its final place, then swap it in with renames, so
    # a crash leaves either the old folder or the new one.
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        for entry in entries:
            target = staging / entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            project.store.checkout_file(entry.hash, target)
        trash = None
        if dest.exists() or dest.is_symlink():
            trash = dest.parent / f".{dest.name}.old-{os.getpid()}"
            os.replace(dest, trash)
        os.replace(staging, dest)
        if trash is not None:
            remove_path(trash)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    past = time.time_ns() - _RESTORED_AGE_NS
    for entry in entries:
        target = dest / entry.path
        os.utime(target, ns=(past, past))
        project.stat_cache.put(str(target), os.stat(target), entry.hash)


def restore_outputs(project: Project, record: OutputRecord) -> None:
    """Bring the workspace to the recorded outputs, copying only what differs."""
    for item in record.values():
        dest = project.root / item["path"]
        digest = item["hash"]
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            if project.hasher.path(dest) == digest:
                continue
        if digest.endswith(DIR_SUFFIX):
            _restore_tree(project, digest, dest)
        else:
            if dest.is_dir():
                remove_path(dest)
            _restore_file(project, digest, dest)


def record_is_restorable(project: Project, record: Any) -> bool:
    """A run-cache record is usable when every object it names is in the store."""
    try:
        for item in record["outs"].values():
            digest = item["hash"]
            if not project.store.has(digest):
                return False
            if digest.endswith(DIR_SUFFIX):
                entries = manifest_from_bytes(project.store.read_bytes(digest))
                if not all(project.store.has(e.hash) for e in entries):
                    return False
    except (KeyError, TypeError, AttributeError, StoreError, ValueError):
        return False
    return True
