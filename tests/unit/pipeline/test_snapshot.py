"""The code snapshot: tracked files as on disk, chosen untracked ones, stored once."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.errors import CorruptObject, UsageError
from sluice.pipeline.snapshot import put_snapshot, restore_snapshot, snapshot_entries
from sluice.store.local import LocalStore
from sluice.util.hashing import hash_manifest, manifest_bytes
from sluice.workspace.project import Project, load_project
from tests.conftest import git
from tests.unit._util import write_project


@pytest.fixture
def project(repo: Path) -> Project:
    write_project(repo, "stages: {}\n", {"src/a.py": "A = 1\n", "src/b.py": "B = 1\n",
                                         "gone.txt": "x\n", ".gitignore": "secret.txt\n"})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    return load_project(repo)


def test_tracked_files_with_working_tree_content(project: Project) -> None:
    root = project.root
    (root / "src/a.py").write_text("A = 2\n")  # uncommitted edit
    (root / "gone.txt").unlink()  # deleted, not committed
    (root / "notes.txt").write_text("untracked\n")
    (root / "secret.txt").write_text("ignored\n")
    (root / "local.py").write_text("L = 1\n")
    paths = {e.path: e for e in snapshot_entries(project, ["local.py"])}
    assert set(paths) == {".gitignore", "sluice.yaml", "src/a.py", "src/b.py", "local.py"}
    assert paths["src/a.py"].size == len("A = 2\n")
    with pytest.raises(UsageError, match=r"missing\.py"):
        snapshot_entries(project, ["missing.py"])


def test_link_out_of_the_project_is_left_out(project: Project, tmp_path: Path) -> None:
    (tmp_path / "host.txt").write_text("host file\n")
    (project.root / "out").symlink_to(tmp_path / "host.txt")
    (project.root / "in").symlink_to("src/a.py")
    git(project.root, "add", "out", "in")
    paths = {e.path for e in snapshot_entries(project)}
    assert "in" in paths and "out" not in paths


def test_stored_once_and_restored_verified(project: Project, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    entries = snapshot_entries(project)
    digest = put_snapshot(project, store, entries)
    assert digest == hash_manifest(entries)
    sent: list[str] = []
    original = store.add_file

    def counting(src: Path, digest: str | None = None) -> str:
        sent.append(str(src))
        return original(src, digest)

    store.add_file = counting  # type: ignore[method-assign]
    (project.root / "src/b.py").write_text("B = 2\n")
    second = put_snapshot(project, store, snapshot_entries(project))
    assert second != digest and sent == [str(project.root / "src/b.py")]  # only the change
    sent.clear()
    assert put_snapshot(project, store, snapshot_entries(project)) == second and not sent
    restored = restore_snapshot(store, second, tmp_path / "scratch")
    assert (tmp_path / "scratch/src/b.py").read_text() == "B = 2\n"
    assert {e.path for e in restored} == {e.path for e in entries}


def test_tampered_manifest_path_is_refused(project: Project, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    entries = snapshot_entries(project)
    put_snapshot(project, store, entries)
    from sluice.util.hashing import TreeEntry

    bad = [TreeEntry("../escape.py", entries[0].hash, entries[0].size)]
    digest = hash_manifest(bad)
    store.add_bytes(manifest_bytes(bad), digest)
    with pytest.raises(CorruptObject, match="climbs out"):
        restore_snapshot(store, digest, tmp_path / "scratch")
    assert not (tmp_path / "escape.py").exists()
