"""Listing and deleting for `sluice gc`, and the lease between runs and a gc."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sluice.errors import CorruptObject, StoreError
from sluice.store.fsspec import FsspecStore
from sluice.store.local import LocalStore
from sluice.store.sweep import (
    delete_object,
    delete_record,
    gc_lease,
    list_objects,
    list_records,
    run_lease,
)
from sluice.util.hashing import hash_bytes


def _filled(store: LocalStore | FsspecStore) -> tuple[str, str]:
    digest = hash_bytes(b"object\n")
    store.add_bytes(b"object\n", digest)
    fingerprint = hash_bytes(b"fingerprint")
    store.put_run(fingerprint, {"stage": "s", "outs": {}})
    return digest, fingerprint


def test_only_what_has_a_digest_s_shape_is_listed_or_deleted(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "cache")
    digest, fingerprint = _filled(store)
    # Things a store may hold that sluice did not write: never listed, never removed.
    (store.objects / "zz").mkdir()
    (store.objects / "zz" / "note.txt").write_text("keep me")
    (store.objects / digest[:2] / "README").write_text("keep me")
    os.symlink(tmp_path / "elsewhere", store.objects / digest[:2] / ("0" * 30))
    assert [(e.key, e.size) for e in list_objects(store)] == [(digest, 7)]
    assert [e.key for e in list_records(store)] == [fingerprint]
    with pytest.raises(CorruptObject):
        delete_object(store, "../../../etc/passwd")
    delete_record(store, fingerprint)
    delete_object(store, digest)
    delete_object(store, digest)  # gone already: fine
    assert not list_objects(store) and not list_records(store)
    assert (store.objects / "zz" / "note.txt").exists()
    assert (store.objects / digest[:2] / "README").exists()


def test_an_fsspec_store_is_listed_with_ages_and_swept(tmp_path: Path) -> None:
    from fsspec.implementations.local import LocalFileSystem

    store = FsspecStore(LocalFileSystem(), str(tmp_path / "shared"), "file:///shared")
    digest, fingerprint = _filled(store)
    [entry] = list_objects(store)
    assert entry.key == digest and entry.size == 7 and entry.mtime > 0
    assert [e.key for e in list_records(store)] == [fingerprint]
    delete_record(store, fingerprint)
    delete_object(store, digest)
    assert not list_objects(store) and not list_records(store)


def test_a_gc_is_refused_while_a_run_holds_the_store(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "cache")
    refused = pytest.raises(StoreError, match="a sluice run is using the store")
    with run_lease(store), run_lease(store), refused, gc_lease(store):  # runs share it
        pass
    with gc_lease(store):  # free again
        pass


@pytest.mark.parametrize(("raised", "said"), [
    (FileNotFoundError("no such bucket"), "not found in the store s3://bucket/p while deleting"),
    (PermissionError("AccessDenied"), "access denied to s3://bucket/p while deleting"),
    (RuntimeError("signature mismatch\nmore"), "cannot use the store s3://bucket/p while deleting"),
])
def test_a_gc_s_failures_on_a_shared_store_are_store_errors_without_secrets(
        raised: Exception, said: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """gc's deletes on a shared store word their failures as the store's own calls do
    (one public :func:`store_errors`, no private import from the store on fsspec)."""
    from sluice.store.fsspec_errors import CREDENTIALS_HINT, store_errors

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "a-very-secret-value")

    class Refusing:
        protocol = ("s3",)

        def call_s3(self, method: str, **kwargs: object) -> dict[str, object]:
            raise type(raised)(f"{raised} for key a-very-secret-value")

    store = FsspecStore(Refusing(), "bucket/p", "s3://bucket/p")
    with pytest.raises(StoreError) as caught:
        delete_object(store, hash_bytes(b"object\n"))
    rendered = caught.value.render()
    assert said in rendered and "a-very-secret-value" not in rendered
    with pytest.raises(StoreError) as direct, store_errors(store, "deleting"):
        raise type(raised)(f"{raised} for key a-very-secret-value")
    assert direct.value.render() == rendered
    if not isinstance(raised, FileNotFoundError):
        assert caught.value.hint == CREDENTIALS_HINT
