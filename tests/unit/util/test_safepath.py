"""The one validator of paths and digests that come out of a store, a record or the database."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sluice.errors import ConfigError, CorruptObject, UsageError
from sluice.store.base import checkout_tree
from sluice.store.local import LocalStore
from sluice.util.fs import copy_hashing, write_verified
from sluice.util.hashing import (
    TreeEntry,
    hash_bytes,
    hash_manifest,
    manifest_bytes,
    manifest_from_bytes,
    walk_files,
)
from sluice.util.safepath import check_digest, path_problem, relative_path, target_inside

GOOD = ["a", "a/b.txt", "build/model.pkl", "x y/é", ".hidden/f", "a..b", "...", "C/x"]
BAD = ["", "/etc/passwd", "..", "../pwned.txt", "a/../../b", "a/..", "a\\..\\b", "a\x00b",
       "C:/x", "c:x", "a//b", "./a", "a/", "a/./b"]


@pytest.mark.parametrize("text", GOOD)
def test_clean_relative_paths_pass(text: str) -> None:
    assert path_problem(text) is None
    assert relative_path(text, "a record") == text


@pytest.mark.parametrize("text", [*BAD, None, 3, ["a"]])
def test_unsafe_paths_are_corruption(text: object) -> None:
    assert path_problem(text) is not None
    with pytest.raises(CorruptObject, match="nothing was written"):
        relative_path(text, "a record")


@given(st.text(alphabet=st.sampled_from(["a", "b", ".", "/", "\\", "\x00", ":", "C"]),
               max_size=12))
def test_whatever_passes_stays_below_its_folder(text: str) -> None:
    if path_problem(text) is not None:
        return
    root = "/dest"
    joined = posixpath.normpath(posixpath.join(root, text))
    assert joined.startswith(root + "/")
    assert joined == f"{root}/{text}"  # canonical already: nothing for normpath to fold


def test_digests() -> None:
    good = hash_bytes(b"x")
    assert check_digest(good) == good and check_digest(good + ".dir") == good + ".dir"
    for bad in ("../../etc/passwd", good.upper(), good[:-1], good + ".dir/..", "", None):
        with pytest.raises(CorruptObject, match="not a sluice content hash"):
            check_digest(bad)


def test_a_digest_never_names_a_path_in_the_store(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    with pytest.raises(CorruptObject):
        store.has("../../../etc/passwd")


def test_target_inside_refuses_links_on_the_way(tmp_path: Path) -> None:
    root, outside = tmp_path / "repo", tmp_path / "outside"
    (root / "real").mkdir(parents=True)
    outside.mkdir()
    (root / "linked").symlink_to(outside)
    assert target_inside(root, "real/new/x.txt", "a record") == root / "real/new/x.txt"
    with pytest.raises(ConfigError, match=r"symbolic link .*linked"):
        target_inside(root, "linked/x.txt", "a record")
    # A link in the last place is replaced by the atomic rename, never followed.
    (root / "real" / "last").symlink_to(outside / "f")
    assert target_inside(root, "real/last", "a record") == root / "real/last"
    with pytest.raises(CorruptObject, match=r"inside `\.git/`"):
        target_inside(root, ".git/hooks/post-checkout", "a record", reserved=(".git",))
    with pytest.raises(CorruptObject):
        target_inside(root, "../outside/x", "a record")


def _manifest(*rows: tuple[str, str]) -> bytes:
    return manifest_bytes([TreeEntry(path, digest, 1) for path, digest in rows])


@pytest.mark.parametrize("rows", [
    (("../../pwned.txt", hash_bytes(b"x")),),
    (("/abs", hash_bytes(b"x")),),
    (("a", hash_bytes(b"x")), ("a/b", hash_bytes(b"y"))),  # a file where a folder must be
    (("a/b", hash_bytes(b"x")), ("a", hash_bytes(b"y"))),
    (("ok", "../../objects/xx"),),
])
def test_bad_manifest_entries_are_corruption(rows: tuple[tuple[str, str], ...]) -> None:
    with pytest.raises(CorruptObject):
        manifest_from_bytes(_manifest(*rows), "ab" * 16 + ".dir")


def test_duplicate_and_malformed_manifests_are_corruption() -> None:
    row = b'{"hash":"%s","path":"a","size":1}' % hash_bytes(b"x").encode()
    with pytest.raises(CorruptObject, match="twice"):
        manifest_from_bytes(b"[" + row + b"," + row + b"]")
    for data in (b"not json", b'[{"path": "a"}]', b"[1]"):
        with pytest.raises(CorruptObject, match="not a valid folder manifest"):
            manifest_from_bytes(data)


def test_walk_refuses_links_when_asked(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("1\n")
    (data / "etc").symlink_to(outside)
    assert [rel for rel, _ in walk_files(data)] == ["a.csv", "etc/passwd"]  # hashing: followed
    with pytest.raises(UsageError, match=r"is a symbolic link .*does not store links"):
        walk_files(data, follow_links=False)


def _stored(tmp_path: Path, content: bytes) -> tuple[LocalStore, str]:
    store = LocalStore(tmp_path / "store")
    source = tmp_path / "src.bin"
    source.write_bytes(content)
    return store, store.add_file(source)


def _swap(store: LocalStore, digest: str, content: bytes) -> None:
    path = store.object_path(digest)
    os.chmod(path, 0o644)
    path.write_bytes(content)


def test_swapped_bytes_are_never_installed(tmp_path: Path) -> None:
    store, digest = _stored(tmp_path, b"the real model\n")
    dest = tmp_path / "ws" / "model.bin"
    store.checkout_file(digest, dest)
    assert dest.read_bytes() == b"the real model\n"
    _swap(store, digest, b"evil\n")
    with pytest.raises(CorruptObject, match="is corrupt"):
        store.checkout_file(digest, dest)
    assert dest.read_bytes() == b"the real model\n"  # untouched
    assert sorted(p.name for p in dest.parent.iterdir()) == ["model.bin"]  # no temp left


def test_write_verified_hashes_what_it_writes(tmp_path: Path) -> None:
    source = tmp_path / "s"
    source.write_bytes(b"abc" * 1000)
    dest = tmp_path / "d"
    write_verified(dest, hash_bytes(b"abc" * 1000), lambda fd: copy_hashing(source, fd),
                   source="here", hint="-")
    assert dest.read_bytes() == b"abc" * 1000
    with pytest.raises(CorruptObject):
        write_verified(tmp_path / "e", hash_bytes(b"other"), lambda fd: copy_hashing(source, fd),
                       source="here", hint="-")
    assert not (tmp_path / "e").exists()


def test_a_folder_with_one_bad_file_is_not_half_restored(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    entries = []
    for rel, content in (("a.txt", b"a\n"), ("sub/b.txt", b"b\n")):
        (folder / rel).write_bytes(content)
        entries.append(TreeEntry(rel, store.add_file(folder / rel), len(content)))
    digest = hash_manifest(entries)
    store.add_bytes(manifest_bytes(entries), digest)
    dest = tmp_path / "ws" / "out"
    checkout_tree(store, digest, dest)
    assert (dest / "sub/b.txt").read_bytes() == b"b\n"
    _swap(store, entries[1].hash, b"evil\n")
    (dest / "a.txt").write_bytes(b"edited\n")
    with pytest.raises(CorruptObject):
        checkout_tree(store, digest, dest)
    assert (dest / "a.txt").read_bytes() == b"edited\n"  # the old folder stays, whole
    assert sorted(p.name for p in dest.parent.iterdir()) == ["out"]  # no staging left


def test_a_manifest_escaping_its_folder_writes_nothing(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    evil = tmp_path / "evil.txt"
    evil.write_bytes(b"pwned\n")
    entries = [TreeEntry("../../pwned.txt", store.add_file(evil), 6)]
    data = manifest_bytes(entries)
    digest = hash_manifest(entries)  # correctly hashed: only its content is wrong
    store.add_bytes(data, digest)
    dest = tmp_path / "ws" / "a" / "out"
    with pytest.raises(CorruptObject, match="climbs out"):
        checkout_tree(store, digest, dest)
    assert not (tmp_path / "ws" / "pwned.txt").exists()
    assert not (tmp_path / "pwned.txt").exists()
    assert not dest.parent.exists() or not any(dest.parent.iterdir())
