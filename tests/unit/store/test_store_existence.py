"""Existence checks on S3 (moto) cost in proportion to what is asked, and stay exact.

Counted at the server: a few digests are a HEAD each, a listing of the whole
store is cut into key ranges (about one page each, listed in parallel), and the
ranges tile the store exactly — a key on a range's edge is found once, never lost.
"""

from __future__ import annotations

import itertools
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sluice.store import open_store
from sluice.store.fsspec import LIST_PAGE, FsspecStore
from sluice.store.s3list import PREFIXES, key_ranges

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


@pytest.mark.parametrize("expected", [0, 1, LIST_PAGE, 20 * LIST_PAGE + 1, 10**9])
def test_key_ranges_tile_every_prefix_once(expected: int) -> None:
    ranges = key_ranges(expected, LIST_PAGE)
    assert len(ranges) == max(1, min(PREFIXES, -(-expected // LIST_PAGE)))
    assert ranges[0][0] == "00" and ranges[-1][1] is None
    for (_, end), (first, _) in itertools.pairwise(ranges):
        assert end == first  # contiguous: no prefix skipped, none listed twice
    assert len({first for first, _ in ranges}) == len(ranges)


def test_a_whole_store_is_listed_in_ranges_and_every_key_is_found(
        s3: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sluice.store.fsspec.LIST_PAGE", 10)
    ranges = key_ranges(PREFIXES, 10)  # the store below is estimated at one key per prefix
    # A key in every prefix, and more on the edges of the ranges (each range's first
    # prefix and the one before it, the very first and last).
    edges = [first for first, _ in ranges]
    edges += [f"{int(e, 16) - 1:02x}" for e in edges[1:]] + ["00", "ff"]
    present = [_digest(f"{i:02x}") for i in range(PREFIXES)] + [_digest(t) for t in edges]
    absent = [_digest(two) for two in ("00", "7f", "ff", *edges[:3])]
    _put(s3, present)
    s3.write("sluice/objects.txt", b"not an object")  # beside the folder: never listed
    reader = _store(s3)
    reader._keys_per_prefix = 1
    s3.counter.reset()
    assert sorted(reader.missing(present + absent)) == sorted(absent)
    lists = [r for r in s3.counter.log if "list-type=2" in r]
    # Every range after the first starts once (StartAfter), each a page or two here:
    # not one serial listing of everything, and no HEAD per object.
    assert sum("start-after" in r for r in lists) == len(ranges) - 1, lists
    assert len(lists) == s3.counter.total <= 2 * len(ranges), s3.counter.log
    s3.counter.reset()
    assert reader.missing(present) == [] and s3.counter.total == 0  # cached


def test_lone_digests_in_a_prefix_are_one_head_each_not_a_listing(s3: S3Bucket) -> None:
    present = [_digest(f"{i:02x}") for i in range(0, 256, 8)]
    _put(s3, present)
    reader = _store(s3)
    reader._keys_per_prefix = 1  # known: a small store, one page per prefix
    s3.counter.reset()
    wanted = [present[0], present[5], _digest("a1")]
    assert reader.missing(wanted) == [wanted[2]]
    assert s3.counter.counts == {"HEAD": 3}, s3.counter.log
