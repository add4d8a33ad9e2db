"""Copying a registered artifact out of the store, with an integrity check."""

from __future__ import annotations

from pathlib import Path

from sluice.store.base import Store, checkout
from sluice.util.safepath import check_digest


def pull_artifact(store: Store, digest: str, dest: Path) -> None:
    """Write the artifact to ``dest``; a content that does not match its hash is refused.

    The digest comes from the database and a folder's paths from its manifest:
    both are validated, every file is verified as it lands, and a folder is
    swapped in whole (see :func:`sluice.store.base.checkout_tree`), so a corrupt or
    tampered artifact leaves nothing at ``dest``.
    """
    checkout(store, check_digest(digest, "the registered artifact"), dest)
