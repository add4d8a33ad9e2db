"""Stage outputs into the store (sluice.workspace.outputs): each file read once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from sluice.store.local import LocalStore
from sluice.util import hashing
from sluice.util.hashing import hash_file_uncached
from sluice.workspace.outputs import save_outputs
from sluice.workspace.project import load_project
from tests.unit._util import write_project

CONFIG = """\
stages:
  train:
    cmd: echo
    outs: {model: build/model.bin, curves: build/curves}
"""


def test_outputs_are_read_once_by_the_copy(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_project(tmp_path / "p", CONFIG, {
        "build/model.bin": "weights" * 1000, "build/curves/a.csv": "1,2\n",
        "build/curves/deep/b.csv": "3,4\n"})
    for path in (root / "build").rglob("*"):
        if path.is_file():  # older than the racy window: the stat cache may trust them
            os.utime(path, ns=(path.stat().st_mtime_ns - 10**10,) * 2)
    want = {p: hash_file_uncached(p) for p in (root / "build").rglob("*") if p.is_file()}

    def no_second_read(path: Any) -> str:
        raise AssertionError(f"{path} was hashed before the copy read it again")

    monkeypatch.setattr(hashing, "hash_file_uncached", no_second_read)
    project = load_project(root)
    record = save_outputs(project, project.config.stages["train"])
    assert record["model"]["hash"] == want[root / "build/model.bin"]
    assert isinstance(project.store, LocalStore)
    for path, digest in want.items():
        assert project.store.object_path(digest).read_bytes() == path.read_bytes()
    manifest = hashing.manifest_from_bytes(project.store.read_bytes(record["curves"]["hash"]))
    assert sorted(e.path for e in manifest) == ["a.csv", "deep/b.csv"]
    # The stat cache learnt the digests: the next fingerprint reads nothing.
    assert project.hasher.path(root / "build/curves") == record["curves"]["hash"]
