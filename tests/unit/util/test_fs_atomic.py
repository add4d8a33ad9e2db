"""fsutil.atomic_path and atomic_dir: replace whole or not at all (sampling writes through them)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sluice.util.fs import atomic_dir, atomic_path


def test_atomic_path_replaces_on_success_only(tmp_path: Path) -> None:
    dst = tmp_path / "sub" / "out.csv"
    with atomic_path(dst) as tmp:
        assert tmp.parent == dst.parent and tmp != dst
        tmp.write_text("new")
    assert dst.read_text() == "new"
    assert oct(dst.stat().st_mode & 0o777) == oct(0o644)
    with pytest.raises(RuntimeError), atomic_path(dst) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert dst.read_text() == "new"
    assert os.listdir(dst.parent) == ["out.csv"]  # no temporary file left


def test_atomic_path_never_takes_an_existing_name(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # The temporary name is new and private (as tempfile.mkstemp's), without tempfile.
    dst = tmp_path / "out.json"
    taken = tmp_path / f".out.json.{'00' * 6}.tmp"
    taken.write_text("another writer's")
    draws = iter([b"\0" * 6, b"\1" * 6])
    monkeypatch.setattr(os, "urandom", lambda n: next(draws))
    with atomic_path(dst) as tmp:
        assert tmp != taken and tmp.name == f".out.json.{'01' * 6}.tmp"
        assert oct(tmp.stat().st_mode & 0o777) == oct(0o600) and tmp.read_bytes() == b""
        tmp.write_text("mine")
    assert dst.read_text() == "mine" and taken.read_text() == "another writer's"


def test_atomic_dir_swaps_a_whole_folder(tmp_path: Path) -> None:
    dst = tmp_path / "sample"
    (dst / "old").mkdir(parents=True)
    (dst / "old" / "a.csv").write_text("old")
    with atomic_dir(dst) as tmp:
        (tmp / "b.csv").write_text("new")
    assert sorted(p.name for p in dst.iterdir()) == ["b.csv"]
    with pytest.raises(RuntimeError), atomic_dir(dst) as tmp:
        (tmp / "c.csv").write_text("half")
        raise RuntimeError("writer failed")
    assert sorted(p.name for p in dst.iterdir()) == ["b.csv"]
    assert os.listdir(tmp_path) == ["sample"]  # no temporary or old folders left


def test_sampling_has_no_writer_of_its_own() -> None:
    """Atomic writes and deletes live in fsutil only (issue 13: one way to do each thing)."""
    import sluice.data.sampling

    source = Path(sluice.data.sampling.__file__).read_text()
    for own in ("os.replace", "mkstemp", "mkdtemp", "rmdir", "rmtree"):
        assert own not in source, own
