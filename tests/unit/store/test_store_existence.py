"""Existence checks on S3 (moto) cost in proportion to what is asked, and stay exact.

Counted at the server: a lone digest in a prefix is one HEAD (not a LIST, and
not s3fs's HEAD-then-LIST of a missing key); key ranges list exactly their keys,
and a store of many pages is listed as a few ranges side by side.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sluice.store import open_store
from sluice.store.fsspec import FsspecStore
from sluice.store.s3list import PREFIXES

if TYPE_CHECKING:
    from tests.s3 import S3Bucket

pytest_plugins = ["tests.s3"]


def _store(s3: S3Bucket) -> FsspecStore:
    store = open_store(s3.url(), Path("."))
    assert isinstance(store, FsspecStore)
    return store


def _digest(two: str = "") -> str:
    return two + secrets.token_hex(16)[len(two):]


def _put(s3: S3Bucket, digests: list[str]) -> None:
    for digest in digests:  # straight to the bucket: existence checks read only keys
        s3.write(f"sluice/objects/{digest[:2]}/{digest[2:]}", b"x")


def test_a_key_range_lists_exactly_its_prefixes(s3: S3Bucket,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from sluice.store.s3list import s3_keys

    present = [_digest(f"{i:02x}") for i in range(0, PREFIXES, 3)] + [_digest("ff")]
    _put(s3, present)
    s3.write("sluice/objects.txt", b"not an object")  # beside the folder: never listed
    store = _store(s3)
    folder = f"{store.prefix}/objects"

    def keys(first: str | None, end: str | None) -> set[str]:
        return {k.rsplit("/", 2)[-2] + k.rsplit("/", 1)[-1]
                for k in s3_keys(store.fs.call_s3, folder, 4, first=first, end=end)}
    assert keys(None, None) == set(present)  # pages of 4 keys: the token carries on
    assert keys("30", "60") == {d for d in present if "30" <= d[:2] < "60"}
    assert keys(None, "30") | keys("30", "c0") | keys("c0", None) == set(present)


def test_lone_digests_in_a_prefix_are_one_head_each_not_a_listing(s3: S3Bucket) -> None:
    present = [_digest(f"{i:02x}") for i in range(0, 256, 8)]
    _put(s3, present)
    reader = _store(s3)
    reader._keys_per_prefix = 1  # known: a small store, one page per prefix
    s3.counter.reset()
    wanted = [present[0], present[5], _digest("a1")]
    assert reader.missing(wanted) == [wanted[2]]
    assert s3.counter.counts == {"HEAD": 3}, s3.counter.log


def test_a_store_of_many_pages_is_listed_in_key_ranges_side_by_side(
        s3: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    import sluice.store.fsspec as fsspec_store

    # Pages of 4 keys, ranges of at least 2 pages: 34 keys make several ranges.
    monkeypatch.setattr(fsspec_store, "LIST_PAGE", 4)
    monkeypatch.setattr(fsspec_store, "PAGES_PER_RANGE", 2)
    present = [_digest(f"{i:02x}") for i in range(0, PREFIXES, 8)] + \
        [_digest("7f"), _digest("80")]  # either side of a range boundary
    _put(s3, present)
    reader = _store(s3)
    reader._keys_per_prefix = 1  # a store of 64 pages: 16 ranges (the workers)
    s3.counter.reset()
    reader._list_all()
    ranged = [r for r in s3.counter.log if "start-after=" in r]
    assert len(ranged) == reader.workers - 1, s3.counter.log  # every range but the first
    s3.counter.reset()
    absent = [_digest("7f"), _digest("00")]
    assert reader.missing([*present, *absent]) == absent  # exact, from the listing alone
    assert s3.counter.total == 0, s3.counter.log


def test_ranges_cover_every_prefix_once() -> None:
    from itertools import pairwise

    from sluice.store.fsspec import _ranges

    assert _ranges(10, 16) == [(None, None)]  # 2 pages: one listing
    assert _ranges(78, 16) == [(None, "80"), ("80", None)]  # 20,000 keys: two ranges
    ranges = _ranges(4000, 16)  # a million keys: as many ranges as workers
    assert len(ranges) == 16 and ranges[0][0] is None and ranges[-1][1] is None
    assert all(a[1] == b[0] for a, b in pairwise(ranges))
