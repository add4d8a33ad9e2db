"""End-to-end: `sluice data add --link` and `storage: link` (hard links to read-only objects)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sluice.util.hashing import hash_file_uncached
from tests.conftest import sluice


def _object(repo: Path, path: Path) -> Path:
    digest = hash_file_uncached(path)
    return repo / ".sluice/cache/objects" / digest[:2] / digest[2:]


def test_linked_data_round_trip(repo: Path) -> None:
    (repo / "sluice.yaml").write_text("version: 1\n")
    for i in range(30):
        path = repo / f"data/part{i % 3}/f{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(100 + i * 50))
    files = sorted((repo / "data").rglob("*.bin"))
    content = {p: p.read_bytes() for p in files}

    assert "pinned data: 30 file(s)" in sluice(repo, "data", "add", "--link", "data").stdout
    for path in files:
        obj = _object(repo, path)
        assert os.path.samefile(path, obj)  # no second copy on disk
        assert stat.S_IMODE(obj.stat().st_mode) == 0o444
    if os.geteuid() != 0:  # root writes through any mode bits
        with pytest.raises(PermissionError):
            files[0].open("r+b")
    assert sluice(repo, "data", "status").returncode == 0

    # Changing linked data: a new file renamed over the link; the object stays as it was.
    edited, obj = files[0], _object(repo, files[0])
    new = edited.with_suffix(".new")
    new.write_bytes(b"changed")
    os.replace(new, edited)
    assert "modified" in sluice(repo, "data", "status", check=1).stdout
    assert obj.read_bytes() == content[edited]

    # With `storage: link`, checkout restores links too.
    (repo / "sluice.yaml").write_text("version: 1\nstorage:\n  link: true\n")
    assert "restored data" in sluice(repo, "data", "checkout").stdout
    assert edited.read_bytes() == content[edited] and os.path.samefile(edited, obj)
    assert sluice(repo, "data", "status").returncode == 0
    # --copy overrides it: a plain copy, the object untouched.
    edited.unlink()
    sluice(repo, "data", "checkout", "--copy")
    assert edited.stat().st_nlink == 1 and edited.read_bytes() == content[edited]
