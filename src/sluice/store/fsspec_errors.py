"""How a filesystem library's exception becomes a :class:`StoreError` that names no secret.

Shared by the store on fsspec (:mod:`sluice.store.fsspec`) and by ``sluice gc``'s
listing and deleting there (:mod:`sluice.store.sweep`): one wording, one masking.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from sluice.errors import StoreError
from sluice.util.credentials import mask

if TYPE_CHECKING:
    from sluice.store.fsspec_lookup import FsspecLookup

CREDENTIALS_HINT = ("check the URL and the credentials in the environment (AWS_ACCESS_KEY_ID/"
                    "AWS_SECRET_ACCESS_KEY or AWS_PROFILE, and AWS_ENDPOINT_URL for an "
                    "S3-compatible server; GOOGLE_APPLICATION_CREDENTIALS; AZURE_STORAGE_*)")


@contextlib.contextmanager
def store_errors(store: FsspecLookup, what: str) -> Iterator[None]:
    """Turn a filesystem library's exception into a StoreError that names no secret."""
    try:
        yield
    except StoreError:
        raise
    except FileNotFoundError as exc:
        raise StoreError(f"not found in the store {store.url} while {what}: {mask(str(exc))}",
                         hint="check that the bucket (or container) exists and the URL is "
                              "right; sluice creates nothing but objects under it") from None
    except PermissionError as exc:
        raise StoreError(f"access denied to {store.url} while {what}: {mask(str(exc))}",
                         hint=CREDENTIALS_HINT) from None
    except Exception as exc:
        reason = mask(str(exc).strip().splitlines()[0] if str(exc).strip() else
                      type(exc).__name__)
        raise StoreError(f"cannot use the store {store.url} while {what}: {reason}",
                         hint=CREDENTIALS_HINT) from None
