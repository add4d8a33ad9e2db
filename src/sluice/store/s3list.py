"""Listing S3 keys with ListObjectsV2: a whole folder, or a range of its two-hex prefixes.

A range (``first``/``end``) lets a caller list parts of a store side by side;
the store lists serially today (see :meth:`sluice.store.fsspec_lookup.FsspecLookup._list_all`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

PREFIXES = 256  # two hex digits

Call = Callable[..., dict[str, Any]]  # s3fs's call_s3: (operation name, **arguments)


def s3_keys(call: Call, folder: str, page: int, *, first: str | None = None,
            end: str | None = None) -> Iterator[str]:
    """``bucket/key`` of every key under ``folder``; with ``first``/``end``, only the
    keys ``folder/first…`` up to (not including) ``folder/end…``, page by page."""
    bucket = folder.partition("/")[0]
    for item in s3_entries(call, folder, page, first=first, end=end):
        yield f"{bucket}/{item['Key']}"


def s3_entries(call: Call, folder: str, page: int, *, first: str | None = None,
               end: str | None = None) -> Iterator[dict[str, Any]]:
    """ListObjectsV2's entry (``Key``, ``Size``, ``LastModified``) of every key under
    ``folder`` (see :func:`s3_keys`); ``Key`` is without the bucket.

    ListObjectsV2 directly: s3fs's find() adds existence checks around it. A range
    starts just before ``first`` (StartAfter ``folder/first`` sorts before every
    ``folder/first/…``) and stops at the first key at or past ``folder/end``.
    """
    bucket, _, key_prefix = f"{folder}/".partition("/")
    stop = None if end is None else f"{key_prefix}{end}"
    arguments: dict[str, Any] = {"Bucket": bucket, "Prefix": key_prefix, "MaxKeys": page}
    if first is not None:
        arguments["StartAfter"] = f"{key_prefix}{first}"
    while True:
        listing = call("list_objects_v2", **arguments)
        for item in listing.get("Contents", []):
            if stop is not None and item["Key"] >= stop:
                return
            yield item
        if not listing.get("IsTruncated"):
            return
        arguments.pop("StartAfter", None)  # the token carries on from the last page
        arguments["ContinuationToken"] = listing["NextContinuationToken"]
