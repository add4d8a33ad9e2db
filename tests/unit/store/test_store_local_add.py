"""LocalStore.add_file and the copy under it: one read per byte, every path of the copy.

Small files are one exact-size read (no large buffer), large ones a reflink where the
filesystem shares blocks, else ``copy_file_range``, else read/write; every path must
store the same bytes under the same digest as the plain hasher gives.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sluice.store.local import LocalStore
from sluice.util import fs
from sluice.util.hashing import hash_file_uncached

SIZES = [0, 1, 1000, fs._SMALL - 1, fs._SMALL, fs._SMALL + 1, 2 * fs._CHUNK + 7]


def _file(tmp_path: Path, name: str, size: int) -> Path:
    path = tmp_path / name
    path.write_bytes(os.urandom(size))
    return path


def _stored_as_given(store: LocalStore, src: Path, digest: str) -> None:
    """The object is ``src``'s bytes, named by the plain hasher's digest, read-only;
    nothing is left in the store's temp folder."""
    assert digest == hash_file_uncached(src)
    target = store.object_path(digest)
    assert target.read_bytes() == src.read_bytes()
    assert target.stat().st_mode & 0o777 == 0o444
    assert not store.tmp.is_dir() or not list(store.tmp.iterdir())


@pytest.mark.parametrize("size", SIZES)
def test_add_file_stores_the_bytes_under_the_plain_hash(tmp_path: Path, size: int) -> None:
    store = LocalStore(tmp_path / "store")
    src = _file(tmp_path, "f", size)
    _stored_as_given(store, src, store.add_file(src))
    assert store.add_file(src) == store.add_file(src, hash_file_uncached(src))


@pytest.mark.parametrize("size", SIZES)
def test_without_copy_file_range_read_write_gives_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    def unsupported(*args: Any) -> int:
        raise OSError(errno.EXDEV, "cross-device")

    monkeypatch.setattr(os, "copy_file_range", unsupported)
    store = LocalStore(tmp_path / "store")
    src = _file(tmp_path, "f", size)
    _stored_as_given(store, src, store.add_file(src))
    monkeypatch.delattr(os, "copy_file_range")  # as on macOS: no such call at all
    store = LocalStore(tmp_path / "store2")
    _stored_as_given(store, src, store.add_file(src))


def test_copy_file_range_failing_midway_finishes_with_read_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.copy_file_range
    calls = []

    def once_then_unsupported(src: int, dst: int, count: int, *args: Any) -> int:
        calls.append(count)
        if len(calls) > 1:
            raise OSError(errno.EINVAL, "not here")
        return real(src, dst, count, *args)

    monkeypatch.setattr(os, "copy_file_range", once_then_unsupported)
    store = LocalStore(tmp_path / "store")
    src = _file(tmp_path, "f", 3 * fs._CHUNK + 5)
    _stored_as_given(store, src, store.add_file(src))
    assert len(calls) == 2


def test_other_copy_file_range_errors_are_a_store_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sluice.errors import StoreError

    def full(*args: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "copy_file_range", full)
    store = LocalStore(tmp_path / "store")
    with pytest.raises(StoreError, match="No space left"):
        store.add_file(_file(tmp_path, "f", fs._SMALL + 1))
    assert not list(store.tmp.iterdir())


def test_small_files_allocate_no_large_buffer(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def no_buffers(*args: Any) -> bytearray:
        raise AssertionError("a buffer was allocated for a small file")

    monkeypatch.setattr(fs, "bytearray", no_buffers, raising=False)
    store = LocalStore(tmp_path / "store")
    for size in (0, 1, 8192, fs._SMALL - 1):
        src = _file(tmp_path, f"f{size}", size)
        _stored_as_given(store, src, store.add_file(src))


def test_a_file_that_grew_after_its_stat_is_copied_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.fstat

    def stale(fd: int) -> Any:
        st = real(fd)
        return os.stat_result((*st[:6], 10, *st[7:]))  # st_size as it was, earlier

    monkeypatch.setattr(os, "fstat", stale)
    store = LocalStore(tmp_path / "store")
    src = _file(tmp_path, "f", 5000)
    _stored_as_given(store, src, store.add_file(src))


def _fake_reflink(calls: list[int]) -> Callable[[int, int], bool]:
    def reflink(src_fd: int, dst_fd: int) -> bool:
        calls.append(src_fd)
        os.sendfile(dst_fd, src_fd, 0, os.fstat(src_fd).st_size)
        return True
    return reflink


def test_a_reflinked_copy_is_hashed_from_what_landed(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(fs, "_try_reflink", _fake_reflink(calls))
    store = LocalStore(tmp_path / "store")
    big = _file(tmp_path, "big", fs._CHUNK + 3)
    _stored_as_given(store, big, store.add_file(big))
    small = _file(tmp_path, "small", 100)
    _stored_as_given(store, small, store.add_file(small))
    assert len(calls) == 1  # small files are one read and write, never a clone


def _reflink_works(folder: Path) -> bool:
    a, b = folder / ".probe-a", folder / ".probe-b"
    a.write_bytes(b"x" * 4096)
    try:
        with open(a, "rb") as src, open(b, "wb") as dst:
            fcntl.ioctl(dst.fileno(), fs._FICLONE, src.fileno())
        return True
    except OSError:
        return False
    finally:
        a.unlink()
        b.unlink(missing_ok=True)


def test_reflink_on_a_filesystem_that_has_it(tmp_path: Path) -> None:
    if not _reflink_works(tmp_path):
        pytest.skip("the test folder's filesystem cannot reflink (FICLONE; e.g. ext4, tmpfs) "
                    "and a test cannot mount btrfs or xfs without root")
    store = LocalStore(tmp_path / "store")
    big = _file(tmp_path, "big", fs._SMALL + 1)
    _stored_as_given(store, big, store.add_file(big))


def test_without_reflink_the_copy_falls_back_silently(tmp_path: Path) -> None:
    if _reflink_works(tmp_path):
        pytest.skip("this filesystem can reflink: the fallback is tested where it cannot")
    store = LocalStore(tmp_path / "store")
    big = _file(tmp_path, "big", fs._SMALL + 1)
    with open(big, "rb") as src, open(tmp_path / "dst", "wb") as dst:
        assert not fs._try_reflink(src.fileno(), dst.fileno())
    _stored_as_given(store, big, store.add_file(big))


def test_a_temp_name_left_by_a_killed_process_with_our_pid_is_reused(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    src = _file(tmp_path, "f", 10)
    store.add_file(_file(tmp_path, "first", 3))  # makes tmp/
    stale = store.tmp / f"{os.getpid()}-{threading.get_ident()}-1.part"
    stale.write_bytes(b"half")
    stale.chmod(0o444)
    _stored_as_given(store, src, store.add_file(src))


def test_many_threads_adding_the_same_and_different_files(tmp_path: Path) -> None:
    from sluice.store.layered import parallel

    store = LocalStore(tmp_path / "store")
    sources = [_file(tmp_path, f"f{i}", 100 + i % 7) for i in range(60)]
    sources += sources[:20]  # the same file twice at once: both writers succeed
    digests = parallel(store.add_file, sources, workers=8)
    for src, digest in zip(sources, digests, strict=True):
        _stored_as_given(store, src, digest)


def test_an_object_folder_removed_meanwhile_is_made_again(tmp_path: Path) -> None:
    import shutil

    store = LocalStore(tmp_path / "store")
    src = _file(tmp_path, "f", 10)
    store.add_file(src)
    shutil.rmtree(store.objects)  # a gc between two adds of one process
    _stored_as_given(store, src, store.add_file(src))


def _many(tmp_path: Path, count: int) -> list[Path]:
    folder = tmp_path / "data"
    folder.mkdir()
    return [_file(folder, f"f{i}", 1 + i % 3000) for i in range(count)]


def test_add_files_copies_small_files_on_worker_processes_and_large_ones_on_threads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sluice.store.local_bulk as bulk

    monkeypatch.setattr(bulk, "_POOL_MIN_FILES", 50)
    monkeypatch.setattr(bulk, "_POOL_CHUNK", 7)  # several tasks, the last one short
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    forks = []
    real = bulk._fork_pool
    monkeypatch.setattr(bulk, "_fork_pool", lambda *a: forks.append(1) or real(*a))
    store = LocalStore(tmp_path / "store")
    sources = [*_many(tmp_path, 120), _file(tmp_path, "big", 2 * bulk._LARGE + 3)]
    sources.insert(30, sources[3])  # the same file twice: both writers succeed
    digests = store.add_files([str(p) for p in sources], [p.stat().st_size for p in sources],
                              [None] * len(sources))
    assert forks == [1]
    for src, digest in zip(sources, digests, strict=True):
        _stored_as_given(store, src, digest)


def test_add_files_skips_what_the_store_holds_and_uses_threads_for_a_few_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sluice.store.local_bulk as bulk

    monkeypatch.setattr(bulk, "_fork_pool", lambda *a: pytest.fail("no pool for 3 files"))
    store = LocalStore(tmp_path / "store")
    sources = _many(tmp_path, 3)
    held = store.add_file(sources[0])
    copies = []
    real = store.add_file
    monkeypatch.setattr(store, "add_file", lambda src: copies.append(src) or real(src))
    digests = store.add_files([str(p) for p in sources], [1, 1, 1], [held, None, None])
    assert digests[0] == held and copies == [str(p) for p in sources[1:]]
    for src, digest in zip(sources, digests, strict=True):
        _stored_as_given(store, src, digest)


def test_a_file_failing_in_a_worker_is_a_store_error_naming_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sluice.store.local_bulk as bulk
    from sluice.errors import StoreError

    monkeypatch.setattr(bulk, "_POOL_MIN_FILES", 20)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    store = LocalStore(tmp_path / "store")
    sources = _many(tmp_path, 60)
    sources[41].unlink()  # vanished between the listing and the copy
    with pytest.raises(StoreError, match=r"cannot store .*f41: No such file") as caught:
        store.add_files([str(p) for p in sources], [10] * 60, [None] * 60)
    assert caught.value.hint and "permissions" in caught.value.hint
    assert not list(store.tmp.iterdir())  # nothing half-written is left


_ADD_MANY = """
import sys
from pathlib import Path
from sluice.store.local import LocalStore

store, paths = LocalStore(Path(sys.argv[1])), sys.argv[2:]
store.add_files(paths, [1] * len(paths), [None] * len(paths))
"""


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    if int(handle.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return found


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc to find the workers")
def test_workers_stop_when_the_adding_process_is_killed(tmp_path: Path) -> None:
    """kill -9 of the adding process alone: its workers stop too, before their next file,
    and the store holds whole objects only."""
    import signal
    import subprocess
    import sys

    from tests.processes import alive, wait_for

    sources = _many(tmp_path, 6000)
    store = LocalStore(tmp_path / "store")
    proc = subprocess.Popen([sys.executable, "-c", _ADD_MANY, str(store.root),
                             *map(str, sources)], start_new_session=True)
    workers: list[int] = []
    try:
        def started() -> bool:
            workers[:] = _children(proc.pid)
            return proc.poll() is not None or (store.objects.is_dir() and bool(workers) and any(
                f.is_file() for f in store.objects.rglob("*")))
        wait_for(started, timeout=120, what="the workers to store objects")
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # the parent only, not its process group
        proc.wait()
    try:
        wait_for(lambda: not any(alive(pid) for pid in workers), timeout=60,
                 what="the workers to stop after their parent was killed")
    finally:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    stored = [f for f in store.objects.rglob("*") if f.is_file()]
    if len(stored) == len(sources):
        pytest.skip("the add finished before the kill landed")
    for obj in stored:  # whole objects only, each named by its content
        assert hash_file_uncached(obj) == obj.parent.name + obj.name
