"""Level 1: the content-addressed object store and run cache: local, on fsspec (S3, GCS, Azure),
and layered (local in front of shared).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sluice.errors import StoreError
from sluice.store.base import Store
from sluice.store.local import LocalStore


def _open_local(url: str, root: Path) -> Store:
    path = Path(url.removeprefix("file://"))
    return LocalStore(path if path.is_absolute() else root / path)


def _open_fsspec(url: str, root: Path) -> Store:
    from sluice.store.fsspec import open_fsspec_store  # fsspec loads only when used

    return open_fsspec_store(url, root)


# A shared folder (a network mount) is a plain LocalStore: rename is atomic there.
STORES: dict[str, Callable[[str, Path], Store]] = {
    "file": _open_local,
    "": _open_local,
    "s3": _open_fsspec,
    "gs": _open_fsspec,
    "gcs": _open_fsspec,
    "az": _open_fsspec,
    "abfs": _open_fsspec,
    "abfss": _open_fsspec,
    "memory": _open_fsspec,
}


def open_store(url: str, root: Path) -> Store:
    """The store for ``url`` (a path, or ``scheme://…``), relative paths from ``root``.

    A URL carrying a credential is refused: credentials come from the environment.
    """
    from sluice.util.credentials import mask, reject_embedded_secrets

    reject_embedded_secrets(url)
    scheme = url.split("://", 1)[0] if "://" in url else ""
    opener = STORES.get(scheme)
    if opener is None:
        raise StoreError(f"no store backend for `{scheme}://` URLs ({mask(url)})",
                         hint="supported: " + ", ".join(f"{s}://" for s in STORES if s)
                              + " or a local path")
    return opener(url, root)
