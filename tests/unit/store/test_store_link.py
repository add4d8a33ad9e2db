"""LocalStore's link mode: a workspace file and its object as one read-only inode."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from sluice.errors import CorruptObject
from sluice.store.local import LocalStore
from sluice.util.hashing import hash_bytes


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_link_in_makes_the_file_its_read_only_object(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "cache")
    src = tmp_path / "data.bin"
    src.write_bytes(b"some data")
    digest = store.link_in(src)
    assert digest == hash_bytes(b"some data")
    obj = store.object_path(digest)
    assert os.path.samefile(src, obj)  # no copy: one inode
    assert _mode(obj) == _mode(src) == 0o444  # objects stay read-only
    assert not list(store.tmp.iterdir())  # no temp file left
    assert store.link_in(src, digest) == digest  # a re-add changes nothing


def test_link_in_of_stored_content_links_to_the_existing_object(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "cache")
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_bytes(b"same")
    second.write_bytes(b"same")
    digest = store.link_in(first)
    assert store.link_in(second) == digest
    assert os.path.samefile(second, store.object_path(digest))
    assert store.object_path(digest).stat().st_nlink == 3


def test_link_in_racing_a_duplicate_keeps_both_files_linked_to_one_object(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two threads linking the same bytes: the second finds no object when it looks,
    # and the first publishes before the second does. The object must stay the
    # first file's inode, and the second file become a link to it.
    store = LocalStore(tmp_path / "cache")
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_bytes(b"same")
    second.write_bytes(b"same")
    digest = store.link_in(first)
    target = str(store.object_path(digest))
    real_isfile, real_is_file = os.path.isfile, Path.is_file
    monkeypatch.setattr(os.path, "isfile", lambda p: False if str(p) == target else
                        real_isfile(p))
    monkeypatch.setattr(Path, "is_file", lambda p: False if str(p) == target else
                        real_is_file(p))
    assert store.link_in(second) == digest
    assert os.path.samefile(first, target) and os.path.samefile(second, target)
    assert store.object_path(digest).stat().st_nlink == 3


def test_link_in_where_links_cannot_reach_changes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(tmp_path / "cache")
    src = tmp_path / "data.bin"
    src.write_bytes(b"on another filesystem")
    before = src.stat()

    def cross_device(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    assert store.link_in(src) is None  # the caller copies
    assert src.stat().st_ino == before.st_ino and _mode(src) == stat.S_IMODE(before.st_mode)
    assert not list(store.tmp.iterdir())


def test_link_out_links_a_verified_object_and_refuses_a_corrupt_one(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "cache")
    src = tmp_path / "data.bin"
    src.write_bytes(b"payload")
    digest = store.link_in(src)
    assert digest is not None
    dest = tmp_path / "restored" / "data.bin"
    assert store.link_out(digest, dest)
    assert os.path.samefile(dest, store.object_path(digest))

    obj = store.object_path(digest)
    os.chmod(obj, 0o644)
    obj.write_bytes(b"tampered")  # someone who can write the store swapped the bytes
    other = tmp_path / "other.bin"
    with pytest.raises(CorruptObject, match="corrupt"):
        store.link_out(digest, other)
    assert not other.exists()


def test_link_out_where_links_cannot_reach_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(tmp_path / "cache")
    digest = hash_bytes(b"x")
    store.add_bytes(b"x", digest)

    def cross_device(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    dest = tmp_path / "dest"
    assert store.link_out(digest, dest) is False
    assert not dest.exists()
