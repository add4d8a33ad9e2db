"""Data pinned by DVC becomes ``sluice.lock`` pins (``sluice init --from-dvc``, ``data pull``).

For each output of a ``.dvc`` file the bytes are taken from the workspace when
they match DVC's md5, else from DVC's cache (``.dvc/cache/files/md5/xx/rest``
for DVC 3, ``.dvc/cache/xx/rest`` for DVC 2; a folder is a ``.dir`` JSON
listing of its files' md5s), every file's md5 checked as it is read. What was
found goes into sluice's store and is pinned like ``sluice data add`` pins it,
so ``data status/checkout/push/pull`` and the run's pin check treat it as
sluice's own. What was not found is pinned by DVC's md5 with the DVC remote
that holds it (``dvc_remote:``); ``sluice data pull`` fetches it from there (a
local folder or ``file://`` remote), checks the md5 and re-pins it in sluice's
hash. ``dvc.lock`` pins stage outputs: sluice rebuilds and caches those itself.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sluice.config.from_dvc import Note
from sluice.config.lockfile import (
    DVC_PREFIX,
    EXTERNAL,
    LOCK_FILE,
    DataPin,
    parse_dvc_file,
    render_lock,
)
from sluice.data.status import lock_pins, pin_status, pointer_files
from sluice.errors import DataInvalid, Location, StoreError, UsageError
from sluice.util.dvc_md5 import file_md5, manifest_md5
from sluice.util.fs import FileLock, atomic_write_bytes
from sluice.util.hashing import DIR_SUFFIX
from sluice.util.safepath import relative_path
from sluice.workspace.gitignore import ensure_ignored
from sluice.workspace.outputs import store_file, store_tree
from sluice.workspace.project import Project

DVC_CACHE = ".dvc/cache"


@dataclass
class DvcDataImport:
    """What became of DVC's pins."""

    imported: list[DataPin] = field(default_factory=list)  # now in sluice's store
    remote: list[DataPin] = field(default_factory=list)  # pinned by md5, fetched by `data pull`
    notes: list[Note] = field(default_factory=list)


def dvc_remote_url(root: Path) -> str | None:
    """The default remote's URL in ``.dvc/config`` (``config.local`` wins); a local path
    is made relative to the repository root, as DVC reads it relative to ``.dvc/``."""
    section, values = "", {}
    for name in ("config", "config.local"):
        try:
            text = (root / ".dvc" / name).read_text(encoding="utf-8")
        except OSError:
            continue
        for line in text.splitlines():
            line = line.strip()
            if head := re.fullmatch(r"\[\s*'?(.*?)'?\s*\]", line):
                section = re.sub(r"\s+", " ", head.group(1).replace('"', ""))
            elif "=" in line and not line.startswith(("#", ";")):
                key, _, value = line.partition("=")
                values[(section, key.strip())] = value.strip()
    default = values.get(("core", "remote"))
    url = values.get((f"remote {default}", "url")) if default else None
    if not url or ("://" in url and not url.startswith("file://")):
        return url
    path = url.removeprefix("file://")
    full = os.path.normpath(os.path.join(root, ".dvc", path))
    return Path(os.path.relpath(full, root)).as_posix()


def _object(bases: list[Path], md5: str) -> Path | None:
    for base in bases:
        for candidate in (base / "files" / "md5" / md5[:2] / md5[2:], base / md5[:2] / md5[2:]):
            if candidate.is_file():
                return candidate
    return None


def _copy_checked(src: Path, dest: Path, md5: str, algorithm: str, what: str) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    if file_md5(dest, algorithm) != md5:
        raise DataInvalid(f"DVC object {src} for {what} does not match its md5 {md5}",
                          hint=f"the cache or remote is corrupt: remove {src} and `dvc pull` "
                               "it again, or re-pin the data with `sluice data add`")


def materialise(pin: DataPin, bases: list[Path], dest: Path) -> bool:
    """Write the pinned bytes to ``dest`` from DVC's objects under ``bases``, md5-checked.

    False when an object is in none of them; DataInvalid when one is corrupt.
    """
    md5 = pin.hash.removeprefix(DVC_PREFIX)
    listing = _object(bases, md5)
    if listing is None:
        return False
    if not md5.endswith(DIR_SUFFIX):
        _copy_checked(listing, dest, md5, pin.algorithm, pin.path)
        return True
    try:
        rows = json.loads(listing.read_bytes())
        entries = [(relative_path(r["relpath"], f"DVC's listing of {pin.path}"), r["md5"])
                   for r in rows]
    except (ValueError, TypeError, KeyError):
        entries = None
    if entries is None or manifest_md5(entries) != md5:
        raise DataInvalid(f"DVC's listing {listing} of `{pin.path}` does not match {md5}",
                          hint="remove it and `dvc pull` again, or re-pin the data with "
                               "`sluice data add`")
    found = [(rel, digest, _object(bases, digest)) for rel, digest in entries]
    if any(obj is None for _, _, obj in found):
        return False
    dest.mkdir(parents=True, exist_ok=True)
    for rel, digest, obj in found:
        assert obj is not None
        _copy_checked(obj, dest / rel, digest, pin.algorithm, f"{pin.path}/{rel}")
    return True


def _store(project: Project, pin: DataPin, path: Path) -> DataPin:
    if path.is_dir():
        digest, entries = store_tree(project.store, project.hasher, path, follow_links=False)
        return DataPin(pin.path, digest, sum(e.size for e in entries), len(entries))
    return DataPin(pin.path, store_file(project.store, project.hasher, path),
                   path.stat().st_size, 1)


def import_pin(project: Project, pin: DataPin, bases: list[Path]) -> DataPin | None:
    """``pin`` as a sluice pin with its bytes in the store; None when no copy was found."""
    if pin_status(project, pin).state == "unchanged":  # the workspace has it: md5 checked
        return _store(project, pin, project.root / pin.path)
    scratch = project.state_dir / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        dest = Path(folder) / "data"
        return _store(project, pin, dest) if materialise(pin, bases, dest) else None


def _write(project: Project, pins: list[DataPin]) -> None:
    lock = FileLock(project.state_dir / "locks" / "sluice.lock.lock")
    lock.acquire(blocking=True)
    try:
        current = lock_pins(project.root)
        for pin in pins:
            current = {p: v for p, v in current.items()
                       if not (p == pin.path or p.startswith(pin.path + "/"))}
            current[pin.path] = pin
        atomic_write_bytes(project.root / LOCK_FILE, render_lock(current).encode())
        ensure_ignored(project.root, [p.path for p in pins], project.state_dir / "locks",
                       unless_tracked=False)
    finally:
        lock.release()


def import_dvc_data(project: Project) -> DvcDataImport:
    """Pin the data of every ``.dvc`` file in ``sluice.lock``, importing what is at hand."""
    result = DvcDataImport()
    remote = dvc_remote_url(project.root)
    bases = [project.root / DVC_CACHE]
    for file in pointer_files(project.root, anywhere=True):
        if posixpath.basename(file) == "dvc.lock":
            result.notes.append(Note(Location(file, 1), "dvc.lock pins stage outputs; sluice "
                                     "rebuilds them on the first `sluice run` and caches them",
                                     "nothing to do (keep `dvc.lock` until you drop DVC)"))
            continue
        for pin in parse_dvc_file((project.root / file).read_text(encoding="utf-8"), file):
            if pin.algorithm == EXTERNAL:
                result.notes.append(Note(Location(file, 1), f"`{pin.path}` is data outside "
                                         "the repository; sluice pins data inside it",
                                         f"copy it in and `sluice data add` it, or keep "
                                         f"`dvc pull {file}` for it"))
                continue
            imported = import_pin(project, pin, bases)
            if imported is not None:
                result.imported.append(imported)
                continue
            result.remote.append(DataPin(pin.path, pin.hash, pin.size, pin.nfiles,
                                         algorithm=pin.algorithm, remote=remote))
            result.notes.append(Note(Location(file, 1), f"`{pin.path}` is neither in the "
                                     "workspace nor in .dvc/cache; pinned by its DVC md5",
                                     "`sluice data pull` fetches it from the DVC remote "
                                     f"({remote})" if remote else
                                     "no DVC remote is configured: `dvc pull` it, then "
                                     f"`sluice data add {pin.path}`"))
    project.stat_cache.flush()
    if result.imported or result.remote:
        _write(project, [*result.imported, *result.remote])
    return result


def pull_dvc_pins(project: Project, pins: list[DataPin]) -> list[DataPin]:
    """Fetch pins still in DVC's md5 from .dvc/cache or their DVC remote; re-pin them."""
    done = []
    for pin in pins:
        bases = [project.root / DVC_CACHE]
        if pin.remote and "://" in pin.remote and not pin.remote.startswith("file://"):
            raise UsageError(f"`{pin.path}` is on the DVC remote {pin.remote}; sluice reads "
                             "local-folder DVC remotes only",
                             hint=f"`dvc pull` it, then `sluice data add {pin.path}`")
        if pin.remote:
            bases.append(project.root / pin.remote.removeprefix("file://"))
        imported = import_pin(project, pin, bases)
        if imported is None:
            raise StoreError(f"`{pin.path}` ({pin.hash}) is in neither .dvc/cache nor the DVC "
                             f"remote {pin.remote or '(none configured)'}",
                             hint=f"`dvc push` it from a checkout that has it, or re-pin local "
                                  f"data with `sluice data add {pin.path}`")
        done.append(imported)
    project.stat_cache.flush()
    if done:
        _write(project, done)
    return done
