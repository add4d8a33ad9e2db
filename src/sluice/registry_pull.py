"""Copying a registered artifact out of the store, with an integrity check."""

from __future__ import annotations

from pathlib import Path

from sluice.errors import StoreError
from sluice.hashing import DIR_SUFFIX, hash_file_uncached, manifest_from_bytes
from sluice.store import Store


def pull_artifact(store: Store, digest: str, dest: Path) -> None:
    """Write the artifact to ``dest``; a content that does not match its hash is refused."""
    if digest.endswith(DIR_SUFFIX):
        entries = manifest_from_bytes(store.read_bytes(digest))
        for entry in entries:
            _pull_file(store, entry.hash, dest / entry.path)
        return
    _pull_file(store, digest, dest)


def _pull_file(store: Store, digest: str, dest: Path) -> None:
    store.checkout_file(digest, dest)
    actual = hash_file_uncached(dest)
    if actual != digest:
        dest.unlink()
        raise StoreError(f"the stored artifact {digest[:16]} is corrupt (its content hashes to "
                         f"{actual[:16]})", hint="rebuild it: rerun the train stage with "
                                                 "--force and register a new version")
