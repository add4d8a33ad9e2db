"""Moving stage outputs between the workspace and the store.

After a stage runs its outputs are hashed and copied into the store; on a
cache hit they are restored from it. A restored file is a fresh copy (never a
hard link to the stored object), so editing it cannot corrupt the cache.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

from sluice.config.base import Stage
from sluice.errors import ConfigError, CorruptObject, StageFailed, StoreError
from sluice.store.base import Store, checkout_tree
from sluice.util.fs import remove_path
from sluice.util.hashing import (
    DIR_SUFFIX,
    Hasher,
    TreeEntry,
    hash_manifest,
    manifest_bytes,
    manifest_from_bytes,
    walk_files,
)
from sluice.util.safepath import check_digest, first_link, link_text, target_inside
from sluice.workspace.project import Project

OutputRecord = dict[str, dict[str, str]]  # out name -> {"path": ..., "hash": ...}
# Restored files get an mtime this far in the past so the stat cache can trust
# them at once (see sluice.util.statcache on "racy" entries).
_RESTORED_AGE_NS = 2_000_000_000
# Top folders no record may name: git's and sluice's own (config rejects them as outs too).
_RESERVED = (".git", ".sluice")


def check_output_links(project: Project, stage: Stage) -> None:
    """Refuse an output that lies under a symbolic link (before the stage runs).

    A committed link to a folder outside the repository would have the stage
    write there, and a restore write there too.
    """
    for name, rel in stage.outs.items():
        link = first_link(project.root, rel, include_last=False)
        if link is not None:
            raise ConfigError(f"output `{name}` of stage `{stage.name}` (`{rel}`) lies under "
                              f"the symbolic link {link_text(link)}",
                              hint="sluice writes outputs only inside the repository and never "
                                   "through links: replace the link with a real folder, or "
                                   "move the output",
                              location=project.config.locate("stages", stage.name, "outs", name))


def remove_outputs(project: Project, stage: Stage) -> None:
    """Delete a stage's outputs before it runs, so it never appends to stale data."""
    for path in stage.outs.values():
        remove_path(project.root / path)


def prepare_output_parents(project: Project, stage: Stage) -> None:
    for path in stage.outs.values():
        (project.root / path).parent.mkdir(parents=True, exist_ok=True)


def save_outputs(project: Project, stage: Stage) -> OutputRecord:
    """Hash every output and put it into the store."""
    return store_outputs(project.store, project.hasher, project.root, stage.name, stage.outs)


def add_workers() -> int:
    """Threads copying files into the store: a few per core, no more than transfers use.

    The work is small files' syscalls and hashing that releases the GIL, so more
    threads than cores keep the disk busy; many more only contend for the GIL.
    """
    from sluice.store.layered import transfer_workers  # thread pools: not on a no-op run

    return min(transfer_workers(), 2 * (os.cpu_count() or 1))


def store_file(store: Store, hasher: Hasher, path: Path) -> str:
    """Put the file ``path`` into ``store``; its digest.

    The file is read once, by the copy, which hashes it on the way; a file the stat
    cache knows and the store holds is not read at all.
    """
    st = path.stat()
    digest = store.add_file(path, hasher.cached(path, st))
    hasher.record(path, st, digest)
    return digest


def store_tree(store: Store, hasher: Hasher, path: Path, *,
               follow_links: bool = True) -> tuple[str, list[TreeEntry]]:
    """Put every file under the folder ``path`` and its manifest into ``store``.

    As :func:`store_file`, each file is read at most once; files go on a thread pool,
    since hashing and file I/O release the GIL. ``follow_links=False`` (data from
    outside the pipeline) refuses any link inside: it could bring host files along.
    """
    from sluice.store.layered import parallel

    files = walk_files(path, follow_links=follow_links)
    full = [path / rel for rel, _ in files]
    known = [hasher.cached(full[i], st) for i, (_, st) in enumerate(files)]
    digests = parallel(lambda i: store.add_file(full[i], known[i]), range(len(files)),
                       workers=add_workers())
    entries = []
    for i, (rel, st) in enumerate(files):
        hasher.record(full[i], st, digests[i])
        entries.append(TreeEntry(rel, digests[i], st.st_size))
    digest = hash_manifest(entries)
    store.add_bytes(manifest_bytes(entries), digest)
    return digest, entries


def store_outputs(store: Store, hasher: Hasher, root: Path, stage: str,
                  outs: dict[str, str]) -> OutputRecord:
    """Put the outputs ``outs`` (name -> path under ``root``) into ``store``; their record.

    Also what a stage capsule uses, whose outputs lie in a scratch folder.
    """
    record: OutputRecord = {}
    for name, rel in outs.items():
        path = root / rel
        if path.is_dir():
            digest, _ = store_tree(store, hasher, path)
        elif path.is_file():
            digest = store_file(store, hasher, path)
        else:
            raise StageFailed(f"stage `{stage}` finished but did not create output "
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
    entries = checkout_tree(project.store, digest, dest)
    past = time.time_ns() - _RESTORED_AGE_NS
    for entry in entries:
        target = dest / entry.path
        os.utime(target, ns=(past, past))
        project.stat_cache.put(str(target), os.stat(target), entry.hash)


def _validated(project: Project, record: OutputRecord) -> list[tuple[Path, str]]:
    """(destination, digest) of every recorded output, all checked before any is written.

    A record comes out of a store, trusted for availability, never for paths.
    """
    if not isinstance(record, dict):
        raise CorruptObject("a run record's outputs are not a mapping; nothing was written",
                            hint="delete the record from the store and rerun with --force")
    found = []
    for name, item in record.items():
        what = f"the run record of output `{name}`"
        if not isinstance(item, dict):
            raise CorruptObject(f"{what} is not a mapping; nothing was written",
                                hint="delete the record from the store and rerun with --force")
        dest = target_inside(project.root, item.get("path"), what, reserved=_RESERVED)
        found.append((dest, check_digest(item.get("hash"), what)))
    return found


def restore_outputs(project: Project, record: OutputRecord) -> None:
    """Bring the workspace to the recorded outputs, copying only what differs.

    Every path is validated first and every object verified as it lands, so a
    tampered record or object is :class:`CorruptObject` with nothing written.
    """
    for dest, digest in _validated(project, record):
        # A link in the output's place is replaced, never followed or trusted.
        if not dest.is_symlink():
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                if project.hasher.path(dest) == digest:
                    continue
        if digest.endswith(DIR_SUFFIX):
            _restore_tree(project, digest, dest)
        else:
            if dest.is_dir() and not dest.is_symlink():
                remove_path(dest)
            _restore_file(project, digest, dest)


def record_is_restorable(project: Project, record: Any) -> bool:
    """A run-cache record is usable when every object it names is in the store.

    A tampered record or manifest (a bad digest, path or bytes) is not "missing":
    its :class:`CorruptObject` propagates, so the stage reports it instead of quietly
    running again over it.
    """
    try:
        for item in record["outs"].values():
            digest = item["hash"]
            if not project.store.has(digest):
                return False
            if digest.endswith(DIR_SUFFIX):
                entries = manifest_from_bytes(project.store.read_bytes(digest), digest)
                if not all(project.store.has(e.hash) for e in entries):
                    return False
    except CorruptObject:
        raise
    except (KeyError, TypeError, AttributeError, StoreError, ValueError):
        return False
    return True
