"""FsspecStore on a real S3 server (moto) and on a local folder; LayeredStore; copy_objects."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sluice.errors import CorruptObject, StoreError
from sluice.store import open_store
from sluice.store.fsspec import FsspecStore
from sluice.store.layered import LayeredStore, copy_objects
from sluice.store.local import LocalStore
from sluice.util.hashing import TreeEntry, hash_bytes, hash_manifest, manifest_bytes

if TYPE_CHECKING:
    from tests.s3 import S3Bucket

pytest_plugins = ["tests.s3"]

SMALL_CHUNK = 5 * 1024 * 1024  # S3's smallest multipart part


def _s3_store(s3: S3Bucket) -> FsspecStore:
    store = open_store(s3.url(), Path("."))
    assert isinstance(store, FsspecStore)
    return store


@pytest.fixture(params=["s3", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FsspecStore]:
    if request.param == "s3":
        yield _s3_store(request.getfixturevalue("s3"))
    else:
        from fsspec.implementations.local import LocalFileSystem

        yield FsspecStore(LocalFileSystem(), str(tmp_path / "shared"), "file:///shared")


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_objects_and_run_records_round_trip(store: FsspecStore, tmp_path: Path) -> None:
    data = b"hello shared store\n"
    digest = store.add_file(_file(tmp_path, "a.txt", data))
    assert digest == hash_bytes(data)
    assert store.has(digest) and not store.has(hash_bytes(b"other"))
    assert store.missing([digest, hash_bytes(b"other")]) == [hash_bytes(b"other")]
    assert store.read_bytes(digest) == data
    store.checkout_file(digest, tmp_path / "out" / "a.txt")
    assert (tmp_path / "out" / "a.txt").read_bytes() == data
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.txt"]  # no temp left

    entries = [TreeEntry("a.txt", digest, len(data))]
    manifest = hash_manifest(entries)
    store.add_bytes(manifest_bytes(entries), manifest)
    assert manifest.endswith(".dir") and store.read_bytes(manifest) == manifest_bytes(entries)
    with pytest.raises(StoreError, match="hash differently"):
        store.add_bytes(b"not the manifest", manifest)

    assert store.get_run("ab" * 16) is None
    record = {"stage": "train", "outs": {"m": {"path": "m.bin", "hash": digest}}}
    store.put_run("ab" * 16, record)
    assert store.get_run("ab" * 16) == record
    # A fresh instance (another runner) sees everything.
    again = FsspecStore(store.fs, store.prefix, store.url)
    assert again.has(digest) and again.get_run("ab" * 16) == record


def test_empty_and_multipart_objects(store: FsspecStore, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sluice.store.fsspec.CHUNK", SMALL_CHUNK)
    empty = store.add_file(_file(tmp_path, "empty", b""))
    store.checkout_file(empty, tmp_path / "out" / "empty")
    assert (tmp_path / "out" / "empty").read_bytes() == b""
    big = bytes(range(256)) * (SMALL_CHUNK * 2 // 256 + 1000)  # three parts
    digest = store.add_file(_file(tmp_path, "big", big), hash_bytes(big))
    assert digest == hash_bytes(big)
    fresh = FsspecStore(store.fs, store.prefix, store.url)
    fresh.checkout_file(digest, tmp_path / "out" / "big")
    assert (tmp_path / "out" / "big").read_bytes() == big


def test_stale_digest_uploads_the_bytes_that_are_there(store: FsspecStore,
                                                       tmp_path: Path) -> None:
    path = _file(tmp_path, "changed", b"new content")
    actual = store.add_file(path, hash_bytes(b"old content"))
    assert actual == hash_bytes(b"new content") and store.has(actual)
    assert not store.has(hash_bytes(b"old content"))


def test_corrupt_remote_object_is_detected_and_never_installed(s3: S3Bucket,
                                                               tmp_path: Path) -> None:
    store = _s3_store(s3)
    digest = store.add_file(_file(tmp_path, "a", b"the real content"))
    s3.write(f"sluice/objects/{digest[:2]}/{digest[2:]}", b"tampered")
    with pytest.raises(StoreError, match="corrupt"):
        store.read_bytes(digest)
    dest = tmp_path / "out" / "a"
    with pytest.raises(StoreError, match="corrupt") as caught:
        store.checkout_file(digest, dest)
    assert "delete" in (caught.value.hint or "")
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []
    local = LocalStore(tmp_path / "local")
    with pytest.raises(StoreError, match="corrupt"):
        copy_objects(store, local, [digest])
    assert not local.has(digest)
    assert list((tmp_path / "local" / "tmp").iterdir()) == []


def test_existence_checks_are_batched_and_cached(s3: S3Bucket, tmp_path: Path) -> None:
    writer = _s3_store(s3)
    digests = [writer.add_file(_file(tmp_path, f"f{i}", f"file {i}\n".encode()))
               for i in range(150)]
    absent = [hash_bytes(f"absent {i}".encode()) for i in range(50)]
    reader = FsspecStore(writer.fs, writer.prefix, writer.url)
    s3.counter.reset()
    assert reader.missing(digests + absent) == absent
    # One LIST of the busiest prefix, then one listing of everything: not 200 HEADs.
    assert s3.counter.total <= 3, s3.counter.counts
    s3.counter.reset()
    assert reader.missing(digests) == [] and all(reader.has(d) for d in digests[:20])
    assert s3.counter.total == 0


def test_few_lookups_in_a_large_store_use_head(s3: S3Bucket, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    writer = _s3_store(s3)
    digests = [writer.add_file(_file(tmp_path, f"f{i}", f"file {i}\n".encode()))
               for i in range(40)]
    # Pretend a listing page holds one key: prefixes now look expensive to list.
    monkeypatch.setattr("sluice.store.fsspec_lookup.LIST_PAGE", 1)
    reader = FsspecStore(writer.fs, writer.prefix, writer.url)
    reader._keys_per_prefix = 5
    s3.counter.reset()
    assert reader.missing(digests[:3]) == []
    assert s3.counter.counts == {"HEAD": 3}


def test_failed_large_upload_publishes_nothing_and_clean_tmp_aborts_leftovers(
        s3: S3Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sluice.store.fsspec.CHUNK", SMALL_CHUNK)
    store = _s3_store(s3)
    big = _file(tmp_path, "big", b"x" * (SMALL_CHUNK * 3))
    real_open = open
    reads = 0

    class Failing:
        def __init__(self, handle: object) -> None:
            self.handle = handle

        def __enter__(self) -> Failing:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def read(self, n: int) -> bytes:
            nonlocal reads
            reads += 1
            if reads == 3:
                raise OSError(5, "disk read error")
            return bytes(self.handle.read(n))  # type: ignore[attr-defined]

    def failing_open(path: object, *args: object, **kwargs: object) -> object:
        handle = real_open(path, *args, **kwargs)  # type: ignore[call-overload]
        return Failing(handle) if path == big else handle

    monkeypatch.setattr("builtins.open", failing_open)
    with pytest.raises(StoreError):
        store.add_file(big, hash_bytes(big.read_bytes()))
    monkeypatch.setattr("builtins.open", real_open)
    assert s3.keys("sluice/objects/") == {}
    assert s3.client.list_multipart_uploads(Bucket=s3.name).get("Uploads", []) == []
    # A writer killed mid-upload leaves parts behind; clean_tmp aborts old ones.
    upload = s3.client.create_multipart_upload(Bucket=s3.name, Key="sluice/objects/ab/cd")
    s3.client.upload_part(Bucket=s3.name, Key="sluice/objects/ab/cd", PartNumber=1,
                          UploadId=upload["UploadId"], Body=b"y" * SMALL_CHUNK)
    # (moto reports a fixed initiation date in 2010, so only "older than now" is testable.)
    assert store.clean_tmp(max_age_s=-60) == 1
    assert s3.client.list_multipart_uploads(Bucket=s3.name).get("Uploads", []) == []
    assert s3.keys("sluice/objects/") == {}


@pytest.mark.parametrize("kind", ["local", "fsspec"])
def test_every_store_verifies_restores_and_refuses_digests_that_are_paths(
        kind: str, tmp_path: Path) -> None:
    """LocalStore and FsspecStore share one verification path and one digest check."""
    import os

    from fsspec.implementations.local import LocalFileSystem

    root = tmp_path / "shared"
    store: LocalStore | FsspecStore = (
        LocalStore(root) if kind == "local"
        else FsspecStore(LocalFileSystem(), str(root), "file:///shared"))
    digest = store.add_file(_file(tmp_path, "a", b"the real content"))
    dest = tmp_path / "ws" / "a"
    store.checkout_file(digest, dest)
    assert dest.read_bytes() == b"the real content" and oct(dest.stat().st_mode)[-3:] == "644"
    stored = root / "objects" / digest[:2] / digest[2:]
    os.chmod(stored, 0o644)
    stored.write_bytes(b"swapped")
    with pytest.raises(CorruptObject, match="is corrupt"):
        store.checkout_file(digest, dest)
    assert dest.read_bytes() == b"the real content"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["a"]
    for bad in ("../../../etc/passwd", "zz" * 16):
        with pytest.raises(CorruptObject, match="not a sluice content hash"):
            store.missing([bad])
        with pytest.raises(CorruptObject):
            store.checkout_file(bad, dest)


def test_local_filesystem_publishes_by_rename(tmp_path: Path) -> None:
    from fsspec.implementations.local import LocalFileSystem

    root = tmp_path / "shared"
    store = FsspecStore(LocalFileSystem(), str(root), "file:///shared")
    digest = store.add_file(_file(tmp_path, "a", b"abc"))
    assert (root / "objects" / digest[:2] / digest[2:]).read_bytes() == b"abc"
    assert list((root / "tmp").iterdir()) == []
    # The same layout as LocalStore: a shared folder can be opened either way.
    assert LocalStore(root).read_bytes(digest) == b"abc"
    (root / "tmp" / "left.part").write_bytes(b"partial")
    assert store.clean_tmp(max_age_s=-60) == 1


def test_missing_s3fs_and_embedded_secrets_are_clear_errors(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import fsspec.registry  # noqa: F401  (the module; `fsspec.registry` is also a mapping)

    monkeypatch.delitem(sys.modules["fsspec.registry"]._registry, "s3", raising=False)
    monkeypatch.setitem(sys.modules, "s3fs", None)
    with pytest.raises(StoreError, match=r"`s3://` needs s3fs: pip install 'sluice-ml\[s3\]'"):
        open_store("s3://bucket/prefix", Path("."))
    with pytest.raises(StoreError, match="contains a credential") as caught:
        open_store("s3://bucket/p?secret_key=hunter2hunter2", Path("."))
    assert "hunter2" not in caught.value.render()
    with pytest.raises(StoreError, match="no store backend"):
        open_store("ftp://host/x", Path("."))


def test_missing_bucket_is_a_store_error_without_secrets(s3: S3Bucket, tmp_path: Path) -> None:
    store = open_store(f"s3://{s3.name}-nope/x", Path("."))
    with pytest.raises(StoreError) as caught:
        store.add_file(_file(tmp_path, "a", b"abc"))
    assert "bucket" in caught.value.render() and s3.secret not in caught.value.render()


def test_layered_store_reads_through_and_writes_objects_before_records(
        s3: S3Bucket, tmp_path: Path) -> None:
    shared = _s3_store(s3)
    writer = LayeredStore(LocalStore(tmp_path / "a"), shared)
    files = {f"f{i}": f"content {i}\n".encode() for i in range(30)}
    entries = [TreeEntry(name, writer.add_file(_file(tmp_path, name, data)), len(data))
               for name, data in files.items()]
    manifest = hash_manifest(entries)
    writer.add_bytes(manifest_bytes(entries), manifest)
    assert s3.keys("sluice/") == {}  # nothing leaves before the record
    record = {"outs": {"d": {"path": "d", "hash": manifest}}}
    writer.put_run("cd" * 16, record)
    assert len(s3.keys("sluice/objects/")) == 31 and s3.keys("sluice/runs/")

    reader = LayeredStore(LocalStore(tmp_path / "b"), FsspecStore(shared.fs, shared.prefix,
                                                                   shared.url))
    assert reader.get_run("cd" * 16) == record and reader.has(manifest)
    listing = reader.read_bytes(manifest)
    s3.counter.reset()
    # Reading the manifest checked its files in one batch: these lookups are free.
    assert all(reader.has(e.hash) for e in entries) and s3.counter.total == 0
    reader.checkout_file(entries[0].hash, tmp_path / "out" / "f0")
    # The first file of a folder fetched the whole folder, in parallel; later ones are local.
    fetched = s3.counter.total
    for entry in entries[1:]:
        reader.checkout_file(entry.hash, tmp_path / "out" / entry.path)
    assert s3.counter.total == fetched <= len(entries) + 2
    assert all((tmp_path / "out" / n).read_bytes() == d for n, d in files.items())
    assert listing == manifest_bytes(entries)
