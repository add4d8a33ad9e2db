"""What `sluice gc` reads as references: only values shaped like sluice digests count."""

from __future__ import annotations

from datetime import UTC, datetime

from sluice.orchestrate.gc_roots import Roots, out_hashes
from sluice.store.sweep import _when

GOOD = "0123456789abcdef0123456789abcdef"


def test_only_digests_are_taken_from_records() -> None:
    outs = {"a": {"path": "x", "hash": GOOD}, "b": {"path": "y", "hash": GOOD + ".dir"},
            "c": {"path": "z", "hash": "../../etc/passwd"}, "d": "not a mapping",
            "e": {"path": "w", "hash": None}}
    assert out_hashes(outs) == [GOOD, GOOD + ".dir"]
    assert out_hashes(["not", "a", "mapping"]) == []
    roots = Roots()
    roots.keep_object("dvc-md5:" + GOOD, "a DVC pin")  # not a sluice object: names nothing
    roots.keep_fingerprint(42, "a damaged row")
    roots.keep_object(GOOD, "registry versions")
    assert roots.objects == {GOOD} and not roots.fingerprints
    assert dict(roots.why) == {"registry versions": 1}


def test_ages_are_read_whatever_the_backend_calls_them() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert _when({"LastModified": when}) == when.timestamp()  # S3
    assert _when({"mtime": 1234.5}) == 1234.5  # a local folder
    assert _when({"updated": "2026-01-02T03:04:05Z"}) == when.timestamp()  # GCS
    assert _when({}) > when.timestamp()  # unknown: counts as new, a grace spares it
