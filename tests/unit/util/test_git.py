"""sluice.util.git.Repo: reading files at a revision, one by one and prefetched."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sluice.util.git import Repo


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def test_prefetch_by_blob_id_reads_what_a_path_lookup_reads(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "ml" / "src").mkdir(parents=True)
    _git(root, "init", "-q")
    for i in range(30):
        (root / "ml" / "src" / f"m{i}.py").write_text(f"print({i})\n")
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    (root / "ml" / "src" / "m0.py").write_text("changed on disk, not committed\n")

    seen_by_path = Repo.open(root / "ml")
    commit = seen_by_path.resolve("HEAD")
    prefetched = Repo.open(root / "ml")
    assert prefetched.prefix == "ml/"
    files = prefetched.tree(commit)
    paths = [f"src/m{i}.py" for i in range(30)] + ["src/absent.py"]
    prefetched.prefetch(commit, paths, files)
    assert all(f"{commit}:ml/{p}" in prefetched._blobs for p in paths)  # no later reads
    for path in paths:
        assert prefetched.read(commit, path) == seen_by_path.read(commit, path)
    assert prefetched.read(commit, "src/m0.py") == b"print(0)\n"
    assert prefetched.read(commit, "src/absent.py") is None
