"""Existence checks on S3 (moto) cost in proportion to what is asked, and stay exact.

Counted at the server: a lone digest in a prefix is one HEAD (not a LIST, and
not s3fs's HEAD-then-LIST of a missing key); key ranges list exactly their keys.
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
