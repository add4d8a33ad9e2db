"""Moving stage outputs between the workspace and the store.

After a stage runs its outputs are hashed and copied into the store; on a
cache hit they are restored from it. A restored file is a fresh copy (never a
hard link to the stored object), so editing it cannot corrupt the cache —
except in the opt-in link mode of pinned data (:class:`LinkMode`), where the
workspace file and its object are one read-only inode.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluice.config.base import Stage
from sluice.errors import ConfigError, CorruptObject, StageFailed, StoreError
from sluice.store.base import Store, checkout_tree
from sluice.store.local import LocalStore
from sluice.util.fs import remove_path
from sluice.util.hashing import (
    DIR_SUFFIX,
    Hasher,
    TreeEntry,
    hash_bytes,
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
# Files per task on the add pool: one future per 1 KiB file cost more than its copy.
_BATCH_FILES = 64
_BATCH_BYTES = 16 * 1024 * 1024


@dataclass
class LinkMode:
    """Hard-link files into read-only objects instead of copying them (``storage: link``).

    ``copied`` collects the paths that could not be linked (the store on another
    filesystem, or one without hard links) and were copied instead.
    """

    copied: list[Path] = field(default_factory=list)


def _linking_store(store: Store, link: LinkMode | None) -> LocalStore | None:
    """The local store to link into, when ``link`` asks for it and one is there."""
    from sluice.store.layered import local_layer  # thread pools: not on a no-op run

    local = local_layer(store) if link is not None else None
    return local if isinstance(local, LocalStore) else None


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


def store_file(store: Store, hasher: Hasher, path: Path,
               link: LinkMode | None = None) -> str:
    """Put the file ``path`` into ``store``; its digest.

    The file is read once, by the copy, which hashes it on the way; a file the stat
    cache knows and the store holds is not read at all. With ``link``, the file
    becomes a hard link to its read-only object instead (read once, to hash it).
    """
    st = path.stat()
    digest, st = _put(store, _linking_store(store, link), link, path, st,
                      hasher.cached(path, st))
    hasher.record(path, st, digest)
    return digest


def _put(store: Store, linker: LocalStore | None, link: LinkMode | None, path: Path,
         st: os.stat_result, known: str | None) -> tuple[str, os.stat_result]:
    """Store one file, by link where asked and possible; (digest, its stat after)."""
    if linker is not None:
        digest = linker.link_in(path, known)
        if digest is not None:
            return digest, os.stat(path)  # a new inode (or mode): the stat cache needs it
    if link is not None:
        link.copied.append(path)
    return store.add_file(path, known), st


def _batches(files: list[tuple[str, os.stat_result]], workers: int) -> Iterator[range]:
    """Index ranges of ``files`` with few bytes or few files each: small files go in
    groups (a task per file costs more than copying it), large ones one by one;
    a few files are still spread over every worker."""
    most = max(1, min(_BATCH_FILES, len(files) // (4 * workers)))
    start, size = 0, 0
    for i, (_, st) in enumerate(files):
        size += st.st_size
        if i + 1 - start >= most or size >= _BATCH_BYTES:
            yield range(start, i + 1)
            start, size = i + 1, 0
    if start < len(files):
        yield range(start, len(files))


def store_tree(store: Store, hasher: Hasher, path: Path, *, follow_links: bool = True,
               link: LinkMode | None = None) -> tuple[str, list[TreeEntry]]:
    """Put every file under the folder ``path`` and its manifest into ``store``.

    As :func:`store_file`, each file is read at most once; files go on a thread pool
    in batches, since hashing and file I/O release the GIL. ``follow_links=False``
    (data from outside the pipeline) refuses any link inside: it could bring host
    files along.
    """
    from sluice.store.layered import parallel

    files = walk_files(path, follow_links=follow_links)
    top = str(path) + os.sep  # strings, not a Path per file: 20,000 of them add up
    full = [top + rel for rel, _ in files]
    stats = [st for _, st in files]
    known = hasher.cache.get_many(full, stats)
    linker = _linking_store(store, link)

    def batch(indices: range) -> list[tuple[str, os.stat_result]]:
        return [_put(store, linker, link, Path(full[i]), stats[i], known[i]) for i in indices]

    if linker is None and isinstance(store, LocalStore):  # copies: on worker processes
        done = list(zip(store.add_files(full, [st.st_size for st in stats], known), stats,
                        strict=True))
    else:
        workers = add_workers()
        done = [r for chunk in parallel(batch, list(_batches(files, workers)), workers=workers)
                for r in chunk]
    now, record = time.time_ns(), hasher.cache.put
    entries = []
    for key, (rel, _), (digest, st) in zip(full, files, done, strict=True):
        record(key, st, digest, now_ns=now)
        entries.append(TreeEntry(rel, digest, st.st_size))
    manifest = manifest_bytes(entries)
    digest = hash_bytes(manifest) + DIR_SUFFIX
    store.add_bytes(manifest, digest)
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


def _restore_file(project: Project, digest: str, dest: Path,
                  link: LinkMode | None = None) -> None:
    linker = _linking_store(project.store, link)
    if linker is not None and linker.link_out(digest, dest):
        # No utime: it would change the object's times too (one inode).
        project.stat_cache.put(str(dest), os.stat(dest), digest)
        return
    if link is not None:
        link.copied.append(dest)
    project.store.checkout_file(digest, dest)
    past = time.time_ns() - _RESTORED_AGE_NS
    os.utime(dest, ns=(past, past))
    project.stat_cache.put(str(dest), os.stat(dest), digest)


class _LinkingStore(LocalStore):
    """A local store whose checkout links (for :func:`checkout_tree`), copying where it cannot."""

    def __init__(self, store: LocalStore, link: LinkMode) -> None:
        super().__init__(store.root)
        self.link = link

    def checkout_file(self, digest: str, dest: Path) -> None:
        if not self.link_out(digest, dest):
            self.link.copied.append(dest)
            super().checkout_file(digest, dest)


def _restore_tree(project: Project, digest: str, dest: Path,
                  link: LinkMode | None = None) -> None:
    linker = _linking_store(project.store, link)
    store = project.store if linker is None or link is None else _LinkingStore(linker, link)
    entries = checkout_tree(store, digest, dest)
    past = time.time_ns() - _RESTORED_AGE_NS
    for entry in entries:
        target = dest / entry.path
        st = os.stat(target)
        if linker is None or st.st_nlink == 1:  # a copy: age it (a link keeps the object's)
            os.utime(target, ns=(past, past))
            st = os.stat(target)
        project.stat_cache.put(str(target), st, entry.hash)


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


def restore_outputs(project: Project, record: OutputRecord,
                    link: LinkMode | None = None) -> None:
    """Bring the workspace to the recorded outputs, copying only what differs.

    Every path is validated first and every object verified as it lands, so a
    tampered record or object is :class:`CorruptObject` with nothing written.
    With ``link``, files become hard links to their read-only objects.
    """
    for dest, digest in _validated(project, record):
        # A link in the output's place is replaced, never followed or trusted.
        if not dest.is_symlink():
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                if project.hasher.path(dest) == digest:
                    continue
        if digest.endswith(DIR_SUFFIX):
            _restore_tree(project, digest, dest, link)
        else:
            if dest.is_dir() and not dest.is_symlink():
                remove_path(dest)
            _restore_file(project, digest, dest, link)


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
