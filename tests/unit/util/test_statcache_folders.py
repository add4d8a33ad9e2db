"""The status walk (sluice.util.treewalk): Hasher's digests, folder records, the racy rules."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sluice.util import hashing, statcache
from sluice.util.hashing import Hasher, hash_bytes
from sluice.util.statcache import StatCache
from sluice.util.treewalk import digests

OLD = time.time_ns() - 60 * 1_000_000_000


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = hashing.hash_file_uncached

    def counting(path: Path | str) -> str:
        seen.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(hashing, "hash_file_uncached", counting)
    return seen


def _file(path: Path, data: str = "content", mtime_ns: int = OLD) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def _tree(root: Path, interleaved: bool = True) -> Path:
    """Files under links and in sub-folders; ``interleaved``: a/x sorts between a.csv and a0."""
    for rel in ["a.csv", "a-b", "a/x", "a/y/z", "a0", "b/c"] if interleaved else \
            ["0.csv", "a/x", "a/y/z", "b/c"]:
        _file(root / rel, f"data {rel}")
    (root / "empty").mkdir()
    (root / "link").symlink_to(root / "a", target_is_directory=True)
    (root / "a" / "loop").symlink_to(root, target_is_directory=True)
    (root / "b" / "broken").symlink_to(root / "nowhere")
    return root


def _status(index: Path, *paths: Path) -> list[str]:
    cache = StatCache(index)
    found = digests(cache, list(paths))
    cache.flush()
    return found


def _hasher(*paths: Path) -> list[str]:
    return Hasher(StatCache(paths[0].parent / "other-index")).paths(list(paths))


@pytest.mark.parametrize("interleaved", [False, True])
def test_the_same_digests_as_hasher(tmp_path: Path, reads: list[str], interleaved: bool) -> None:
    root, one = _tree(tmp_path / "t", interleaved), _file(tmp_path / "one.csv")
    expected = _hasher(root, one)
    reads.clear()
    index = tmp_path / "stat-index"
    assert _status(index, root, one) == expected
    count = len(reads)  # each file once (a/ also through link/), one.csv
    assert count == (9 if interleaved else 7)
    assert _status(index, root, one) == expected and len(reads) == count
    cache = StatCache(index)  # the folder's record, not the tree's, gives it
    cache._load().trees.clear()
    assert digests(cache, [root, one]) == expected and len(reads) == count


def test_a_warm_status_neither_decodes_file_entries_nor_writes(
        tmp_path: Path, reads: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    root, index = _tree(tmp_path / "t"), tmp_path / "stat-index"
    first = _status(index, root)
    written = os.stat(index).st_mtime_ns

    def no(self: object) -> None:
        raise AssertionError("decoded the file entries")

    monkeypatch.setattr(statcache._Snapshot, "rows", property(no))
    assert _status(index, root) == first and os.stat(index).st_mtime_ns == written


def test_an_edited_file_is_read_alone_and_file_entries_stay_undecoded(
        tmp_path: Path, reads: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    root, index = _tree(tmp_path / "t"), tmp_path / "stat-index"
    _status(index, root)

    def no(self: object) -> None:
        raise AssertionError("decoded the file entries")

    for data, mtime in [("DATA a/y/z", time.time_ns()),  # same size, just now: racy
                        ("data a/y/z", OLD + 5)]:  # as pinned, settled
        _file(root / "a" / "y" / "z", data, mtime)
        expected = _hasher(root)
        reads.clear()
        with monkeypatch.context() as patch:
            patch.setattr(statcache._Snapshot, "rows", property(no))
            # a/y/z, and link/y/z (link -> a): nothing else
            assert _status(index, root) == expected and reads == ["z", "z"]


@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("change", ["content-and-mtime", "same-size-new-inode", "added",
                                    "removed", "renamed", "emptied", "racy-same-tick"])
def test_a_changed_folder_gets_the_right_digest(tmp_path: Path, reads: list[str],
                                                change: str, interleaved: bool) -> None:
    root, index = _tree(tmp_path / "t", interleaved), tmp_path / "stat-index"
    now = time.time_ns()
    if change == "racy-same-tick":
        _file(root / "b" / "c", "data b/c", now)  # just written: its folder is not recorded
    _status(index, root)
    _status(index, root)
    if change == "content-and-mtime":
        _file(root / "a" / "x", "DATA a/x", OLD + 1)
    elif change == "same-size-new-inode":  # same size and mtime: only the inode tells
        _file(tmp_path / "new", "DATA a/x", OLD)
        os.replace(tmp_path / "new", root / "a" / "x")
    elif change == "added":
        _file(root / "a" / "y" / "extra", "x")
    elif change == "removed":
        (root / "a" / "x").unlink()
    elif change == "renamed":
        os.rename(root / "a" / "x", root / "a" / "w")  # same inode, size, mtime; another name
    elif change == "emptied":
        (root / "b" / "c").unlink()
    else:  # rewritten within the same timestamp tick: same size, mtime and inode
        with open(root / "b" / "c", "r+") as handle:
            handle.write("DATA")
        os.utime(root / "b" / "c", ns=(now, now))
    assert _status(index, root) == _hasher(root)
    assert _status(index, root) == _hasher(root)


def test_a_file_under_two_pins_is_read_once(tmp_path: Path, reads: list[str]) -> None:
    root = _tree(tmp_path / "t")
    expected = _hasher(root / "b", root / "b" / "c")
    reads.clear()
    assert _status(tmp_path / "stat-index", root / "b", root / "b" / "c") == expected
    assert reads == ["c"]


def test_entries_other_commands_recorded_are_used(tmp_path: Path, reads: list[str]) -> None:
    root, index = _tree(tmp_path / "t"), tmp_path / "stat-index"
    cache = StatCache(index)
    Hasher(cache).tree(root)  # as `sluice data add` leaves it
    cache.flush()
    expected = _hasher(root)
    reads.clear()
    assert _status(index, root) == expected and reads == []


def test_a_vanished_pin_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        digests(StatCache(tmp_path / "stat-index"), [tmp_path / "nothing"])


def test_the_digest_of_one_file(tmp_path: Path) -> None:
    one = _file(tmp_path / "one.csv")
    assert _status(tmp_path / "stat-index", one) == [hash_bytes(b"content")]


def test_a_file_that_vanishes_during_the_walk_is_left_out(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from sluice.util import treewalk

    root = _tree(tmp_path / "t", interleaved=False)
    real = os.scandir

    def listing_then_unlink(path: str) -> object:
        entries = list(real(path))
        if path.endswith(os.sep + "b"):
            (root / "b" / "c").unlink()  # listed, gone before its stat

        class Listed:
            def __enter__(self) -> list[os.DirEntry[str]]:
                return entries

            def __exit__(self, *exc: object) -> None:
                return None

        return Listed()

    monkeypatch.setattr(treewalk.os, "scandir", listing_then_unlink)
    found = digests(StatCache(tmp_path / "stat-index"), [root])
    monkeypatch.undo()
    assert found == _hasher(root)


def test_a_warm_status_reads_the_trees_part_alone(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    root, index = _tree(tmp_path / "t"), tmp_path / "stat-index"
    first = _status(index, root)

    def no(self: object, part: int) -> None:
        raise AssertionError(f"read part {part} of the index")

    monkeypatch.setattr(statcache._Snapshot, "_read", no)
    assert _status(index, root) == first


def test_a_part_read_after_the_index_was_replaced_is_a_miss(tmp_path: Path) -> None:
    root, index = _tree(tmp_path / "t"), tmp_path / "stat-index"
    _status(index, root)
    stale = statcache._Snapshot(index)
    other = StatCache(index)
    other.put(str(tmp_path / "x"), os.stat(_file(tmp_path / "x")), "digest-x")
    other.flush()  # replaced: the stale snapshot's offsets no longer hold
    assert stale.folders == {} and stale.rows == {}
    assert statcache._Snapshot(index).folders != {}


@pytest.mark.parametrize("part", [1, 2])
def test_a_damaged_part_is_ignored_and_the_answer_stays_right(tmp_path: Path, part: int,
                                                              reads: list[str]) -> None:
    root, index = _tree(tmp_path / "t", interleaved=False), tmp_path / "stat-index"
    _status(index, root)
    offset, length, _ = statcache._Snapshot(index)._extents[part]  # type: ignore[index]
    data = bytearray(index.read_bytes())
    data[offset + length // 2] ^= 0xFF
    index.write_bytes(bytes(data))
    _file(root / "a" / "x", "DATA a/x", OLD + 7)  # the tree's signature no longer matches
    expected = _hasher(root)
    reads.clear()
    assert _status(index, root) == expected
    # Folders' records lost: the file entries vouch for the rest; file entries lost:
    # the records do. Either way only the edited file is read (a/x, and link/x).
    assert sorted(reads) == ["x", "x"]
