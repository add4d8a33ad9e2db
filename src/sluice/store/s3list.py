"""Listing S3 keys with ListObjectsV2: whole folders, or key ranges listed side by side.

A listing of a whole store is cut into ranges of two-hex-digit prefixes (object
keys are ``objects/ab/cdef…``, and hashes fill the prefixes evenly), each about
one page, so that they can be listed in parallel: 20 requests at once instead of
20 pages one after the other, each waiting for the last one's continuation token.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

PREFIXES = 256  # two hex digits

Call = Callable[..., dict[str, Any]]  # s3fs's call_s3: (operation name, **arguments)


def key_ranges(expected: int, page: int) -> list[tuple[str, str | None]]:
    """The 256 two-hex prefixes cut into ranges ``(first, end)`` of about ``page`` keys.

    ``expected`` is the estimated number of keys in the store; ``end`` is the first
    prefix of the next range (None for the last), so the ranges tile every prefix.
    """
    count = max(1, min(PREFIXES, math.ceil(expected / page)))
    starts = [PREFIXES * i // count for i in range(count)]
    ends: list[str | None] = [f"{s:02x}" for s in starts[1:]]
    return [(f"{s:02x}", e) for s, e in zip(starts, [*ends, None], strict=True)]


def s3_keys(call: Call, folder: str, page: int, *, first: str | None = None,
            end: str | None = None) -> Iterator[str]:
    """``bucket/key`` of every key under ``folder``; with ``first``/``end``, only the
    keys ``folder/first…`` up to (not including) ``folder/end…``, page by page.

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
            yield f"{bucket}/{item['Key']}"
        if not listing.get("IsTruncated"):
            return
        arguments.pop("StartAfter", None)  # the token carries on from the last page
        arguments["ContinuationToken"] = listing["NextContinuationToken"]
