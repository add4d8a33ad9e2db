"""DVC-compatible md5 digests, to check data pinned by ``.dvc`` files and ``dvc.lock``.

DVC names data by md5, in one of two flavours that its pointer files tell apart:

- ``hash: md5`` (written by DVC 3): the md5 of the file's bytes.
- no ``hash:`` key (written by DVC 2, still read by DVC 3 as ``md5-dos2unix``):
  the file is read in 1 MiB chunks, and a chunk whose first 512 bytes look like
  text (no NUL, at most 30 % bytes outside printable ASCII and ``\\n\\r\\t\\f\\b``)
  is hashed with every CRLF turned into LF, so a text file checked out on
  Windows keeps its hash.

A folder's digest is the md5 of its manifest, a JSON list of ``{"md5", "relpath"}``
entries sorted by relative path (``/`` separators), serialised by Python's
``json.dumps(..., sort_keys=True)`` with its default separators, followed by
``.dir``. File digests go through the stat cache, so an unchanged file is read once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from sluice.util.hashing import DIR_SUFFIX, walk_files

if TYPE_CHECKING:
    from sluice.util.statcache import StatCache

MD5 = "md5"  # DVC 3: raw bytes
MD5_DOS2UNIX = "md5-dos2unix"  # DVC 2 and older: CRLF → LF in text chunks
ALGORITHMS = (MD5, MD5_DOS2UNIX)

_CHUNK = 1 << 20  # DVC's read size: the text test applies per chunk of this size
_SNIFF = 512  # how much of a chunk DVC looks at to decide text or binary
_TEXT_BYTES = bytes(range(32, 127)) + b"\n\r\t\f\b"


def looks_like_text(block: bytes) -> bool:
    """DVC's heuristic: empty, or no NUL and at most 30 % non-text bytes."""
    if not block:
        return True
    if b"\0" in block:
        return False
    return len(block.translate(None, _TEXT_BYTES)) / len(block) <= 0.30


def file_md5(path: Path | str, algorithm: str = MD5) -> str:
    """The md5 DVC records for one file (uncached)."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown DVC hash algorithm {algorithm!r}")
    import hashlib  # DVC's pins only: not imported by every run that checks pins

    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            if algorithm == MD5_DOS2UNIX and looks_like_text(chunk[:_SNIFF]):
                chunk = chunk.replace(b"\r\n", b"\n")
            digest.update(chunk)
    return digest.hexdigest()


def manifest_md5(entries: Iterable[tuple[str, str]]) -> str:
    """The digest of a folder from its (relative path, md5) pairs: md5 of DVC's manifest + .dir."""
    rows = sorted(({"md5": md5, "relpath": rel} for rel, md5 in entries),
                  key=lambda row: row["relpath"])
    manifest = json.dumps(rows, sort_keys=True).encode("utf-8")
    import hashlib

    return hashlib.md5(manifest, usedforsecurity=False).hexdigest() + DIR_SUFFIX


def cached_file_md5(path: Path, cache: StatCache, algorithm: str,
                    st: os.stat_result | None = None) -> str:
    st = st or os.stat(path)
    digest = cache.get(str(path), st, algorithm)
    if digest is None:
        digest = file_md5(path, algorithm)
        cache.put(str(path), st, digest, algorithm)
    return digest


def path_md5(path: Path, cache: StatCache, algorithm: str = MD5) -> str:
    """The md5 DVC would record for a file or a folder (``….dir``)."""
    if not path.is_dir():
        return cached_file_md5(path, cache, algorithm)
    return manifest_md5((rel, cached_file_md5(path / rel, cache, algorithm, st))
                        for rel, st in walk_files(path))
