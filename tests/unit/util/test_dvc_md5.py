"""DVC-compatible md5: files (raw and legacy dos2unix), folders (`.dir` manifests), the cache.

The golden values were produced once by DVC 3.67.1 itself (`dvc add` for `hash: md5`,
and dvc-data's `file_md5(..., name="md5-dos2unix")` / `build(..., "md5-dos2unix")` for
the legacy flavour) on exactly the bytes these tests write; the tests need no DVC.
Where a value can be derived with hashlib alone, the test derives it too.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from sluice.config.lockfile import parse_dvc_file, parse_dvc_lock
from sluice.util import dvc_md5
from sluice.util.dvc_md5 import MD5, MD5_DOS2UNIX, file_md5, looks_like_text, manifest_md5, path_md5
from sluice.util.statcache import StatCache

CRLF = b"x,y\r\n1,2\r\n3,4\r\n"
# First 1 MiB chunk binary (a NUL up front), the second text with CRLFs: DVC decides per chunk.
CHUNKY = b"\0" * 10 + b"a" * ((1 << 20) - 10) + b"b\r\n" * 1000
FOLDER = {
    "a.csv": b"a\r\nb\r\n",
    "a/b.csv": b"1\n",
    "a-b": b"",
    "sub/\u00e9t\u00e9 file.txt": "caf\u00e9\r\n".encode(),
    "Z.bin": b"\0\r\n" * 100,
}


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _write(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def test_file_md5_raw_and_legacy(tmp_path: Path) -> None:
    path = tmp_path / "crlf.txt"
    path.write_bytes(CRLF)
    assert file_md5(path, MD5) == _md5(CRLF) == "c90135599344113561a910f6c638137f"
    assert file_md5(path, MD5_DOS2UNIX) == _md5(CRLF.replace(b"\r\n", b"\n")) \
        == "178ba85707470c41cf680fb37ff99f7f"
    binary = tmp_path / "bin.dat"
    binary.write_bytes(bytes(range(256)) * 10)  # binary: both flavours hash the raw bytes
    assert file_md5(binary, MD5) == file_md5(binary, MD5_DOS2UNIX) \
        == "9aec5fa312feff7a1d15b135181ffe04"


def test_legacy_md5_decides_text_per_chunk(tmp_path: Path) -> None:
    path = tmp_path / "chunky.bin"
    path.write_bytes(CHUNKY)
    head, tail = CHUNKY[:1 << 20], CHUNKY[1 << 20:]
    assert file_md5(path, MD5_DOS2UNIX) == _md5(head + tail.replace(b"\r\n", b"\n")) \
        == "63d962dab69c811378faaf306fab4eb5"
    assert file_md5(path, MD5) == "433de25abc19899da98408c89518fdb1"


def test_text_heuristic() -> None:
    assert looks_like_text(b"") and looks_like_text(b"plain text\r\n")
    assert not looks_like_text(b"a\0b")
    assert looks_like_text(b"a" * 70 + b"\xff" * 30)  # 30 % non-text: still text
    assert not looks_like_text(b"a" * 69 + b"\xff" * 31)


def test_folder_manifest_matches_dvc(tmp_path: Path) -> None:
    root = _write(tmp_path / "d", FOLDER)
    cache = StatCache(tmp_path / "state.db")
    # Independently: DVC's manifest is json.dumps of {md5, relpath} sorted by relpath.
    rows = sorted(({"md5": _md5(data), "relpath": rel} for rel, data in FOLDER.items()),
                  key=lambda r: r["relpath"])
    expected = _md5(json.dumps(rows, sort_keys=True).encode()) + ".dir"
    assert path_md5(root, cache, MD5) == expected == "6e6729b04ca12dc0d755c40adf15b7d3.dir"
    assert path_md5(root, cache, MD5_DOS2UNIX) == "cc640429e802a27bc2f0e37e3213f7d7.dir"
    assert manifest_md5([]) == _md5(b"[]") + ".dir"


def test_unchanged_files_are_not_read_again(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    root = _write(tmp_path / "d", FOLDER)
    old = time.time_ns() - 60 * 10**9  # clear of the stat cache's racy window
    for path in root.rglob("*"):
        os.utime(path, ns=(old, old))
    reads: list[str] = []
    real = dvc_md5.file_md5

    def counting(path: Path | str, algorithm: str = MD5) -> str:
        reads.append(os.path.basename(path))
        return real(path, algorithm)

    monkeypatch.setattr(dvc_md5, "file_md5", counting)
    first = StatCache(tmp_path / "state.db")
    digest = path_md5(root, first, MD5)
    first.flush()
    assert len(reads) == len(FOLDER)
    again = StatCache(tmp_path / "state.db")  # a later run: a fresh process's cache
    assert path_md5(root, again, MD5) == digest
    assert len(reads) == len(FOLDER)  # nothing re-read
    # The flavours are cached apart: the legacy digest is a different value.
    path_md5(root, again, MD5_DOS2UNIX)
    assert len(reads) == 2 * len(FOLDER)
    (root / "a.csv").write_bytes(b"changed\n")
    assert path_md5(root, again, MD5) != digest
    assert reads[-1] == "a.csv" and len(reads) == 2 * len(FOLDER) + 1


def test_pointer_files_carry_their_algorithm() -> None:
    new = parse_dvc_file("outs:\n- md5: abc\n  size: 3\n  hash: md5\n  path: raw.csv\n",
                         "data/raw.csv.dvc")
    old = parse_dvc_file("outs:\n- md5: abc.dir\n  path: events\n", "events.dvc")
    cloud = parse_dvc_file("outs:\n- etag: '0x1'\n  path: s3://bucket/x\n", "x.dvc")
    outside = parse_dvc_file("outs:\n- md5: abc\n  path: ../../elsewhere.csv\n", "d/x.dvc")
    assert (new[0].path, new[0].hash, new[0].algorithm) == \
        ("data/raw.csv", "dvc-md5:abc", MD5)
    assert (old[0].path, old[0].algorithm, old[0].source) == ("events", MD5_DOS2UNIX,
                                                              "events.dvc")
    assert cloud[0].algorithm == outside[0].algorithm == "external"
    lock = parse_dvc_lock("schema: '2.0'\nstages:\n  prep:\n    cmd: x\n    outs:\n"
                          "    - path: out.csv\n      hash: md5\n      md5: def\n")
    assert (lock[0].path, lock[0].algorithm) == ("out.csv", MD5)
