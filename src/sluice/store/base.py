"""What every store is: the :class:`Store` protocol, and restoring objects from any store.

Objects are immutable, named by their xxh3-128 digest; directory manifests are
objects too (digest ending in ``.dir``). The run cache maps a stage fingerprint to
the outputs and costs of the run that produced it. Every restore is verified: bytes
are hashed while copied and renamed into place only on a match; a folder is built
beside its place and swapped in whole.
"""


from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from sluice.util.fs import (
    remove_path,
)
from sluice.util.hashing import DIR_SUFFIX, TreeEntry, manifest_from_bytes

_TMP_MAX_AGE_S = 24 * 3600


class Store(Protocol):
    """What sluice needs from a place that keeps objects and run records."""

    url: str

    def has(self, digest: str) -> bool: ...
    def missing(self, digests: Iterable[str]) -> list[str]: ...
    def add_file(self, src: Path, digest: str | None = None) -> str: ...
    def add_bytes(self, data: bytes, digest: str) -> None: ...
    def read_bytes(self, digest: str) -> bytes: ...
    def checkout_file(self, digest: str, dest: Path) -> None: ...
    def get_run(self, fingerprint: str) -> dict[str, Any] | None: ...
    def put_run(self, fingerprint: str, record: dict[str, Any]) -> None: ...
    def clean_tmp(self, max_age_s: float = ...) -> int: ...


def checkout_tree(store: Store, digest: str, dest: Path) -> list[TreeEntry]:
    """Restore the folder manifest ``digest`` at ``dest``; returns its entries.

    Every entry's path is validated before anything is written (see
    :func:`sluice.util.hashing.manifest_from_bytes`) and every file is verified as it
    lands (``checkout_file``). The folder is built beside its final place and
    swapped in with renames, so a bad object or a crash leaves the old folder (or
    none), never a half-restored one.
    """
    import shutil  # a folder restore only: not on every start
    import tempfile

    entries = manifest_from_bytes(store.read_bytes(digest), digest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        # `staging` is new and the entries are clean relative paths that do not
        # clash, so no write below can leave it or meet a link.
        for entry in entries:
            store.checkout_file(entry.hash, staging / entry.path)
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
    return entries


def checkout(store: Store, digest: str, dest: Path) -> None:
    """Write the object ``digest`` (a file, or a folder manifest) to ``dest``, verified."""
    if digest.endswith(DIR_SUFFIX):
        checkout_tree(store, digest, dest)
    else:
        store.checkout_file(digest, dest)
