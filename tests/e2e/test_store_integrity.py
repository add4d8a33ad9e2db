"""End-to-end: what comes out of a store is checked before anything is written.

The shared store is trusted for availability, never for paths or bytes. A run
record naming ``../pwned.txt``, a correctly hashed folder manifest with a
``../`` entry (from a run record or a registry row), and swapped object bytes
each make ``sluice run`` / ``sluice models pull`` exit 1 with a corruption
message and write nothing, least of all outside the repository. Outputs under a
committed symbolic link and links inside tracked data are refused.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sluice.util.hashing import TreeEntry, hash_bytes, hash_manifest, manifest_bytes
from tests.conftest import git, sluice
from tests.e2e.pipelines import MODEL_PIPELINE, PREDICT, write_project

if TYPE_CHECKING:
    from tests.s3 import S3Bucket

pytest_plugins = ["tests.s3"]

PIPELINE = """\
storage:
  cache: {url}
stages:
  make:
    cmd: echo made > ${{outs.file}}
    outs: {{file: build/made.txt}}
  folder:
    cmd: mkdir -p ${{outs.dir}} && echo one > ${{outs.dir}}/one.txt
    outs: {{dir: build/folder}}
"""
PWNED = b"pwned\n"


def _key(digest: str, kind: str = "objects") -> str:
    return f"{kind}/{digest[:2]}/{digest[2:]}" + (".json" if kind == "runs" else "")


class Shared:
    """Reads and writes one store's raw keys (a folder, or a bucket on moto)."""

    def __init__(self, read: Callable[[str], bytes], write: Callable[[str, bytes], None],
                 keys: Callable[[], list[str]]) -> None:
        self.read, self.write, self.keys = read, write, keys

    def record(self, stage: str) -> tuple[str, dict[str, object]]:
        for key in self.keys():
            if key.startswith("runs/"):
                record = json.loads(self.read(key))
                if record.get("stage") == stage:
                    return key, record
        raise AssertionError(f"no run record of {stage}")

    def put_object(self, data: bytes, digest: str | None = None) -> str:
        digest = digest or hash_bytes(data)
        self.write(_key(digest), data)
        return digest

    def escaping_manifest(self) -> str:
        """A folder manifest, correctly hashed, whose one entry climbs out of the repo."""
        entries = [TreeEntry("../../../pwned.txt", self.put_object(PWNED), len(PWNED))]
        return self.put_object(manifest_bytes(entries), hash_manifest(entries))

    def tamper(self, how: str) -> None:
        if how == "record path":
            key, record = self.record("make")
            record["outs"]["file"]["path"] = "../pwned.txt"  # type: ignore[index]
            self.put_object(PWNED)
            record["outs"]["file"]["hash"] = hash_bytes(PWNED)  # type: ignore[index]
        elif how == "manifest entry":
            key, record = self.record("folder")
            record["outs"]["dir"]["hash"] = self.escaping_manifest()  # type: ignore[index]
        else:  # swapped bytes: the object keeps its name, its content changes
            _, record = self.record("make")
            self.write(_key(record["outs"]["file"]["hash"]), b"evil\n")  # type: ignore[index]
            return
        self.write(key, json.dumps(record).encode())


def _folder(root: Path) -> Shared:
    def write(key: str, data: bytes) -> None:
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            os.chmod(path, 0o644)  # objects are stored read-only
        path.write_bytes(data)

    return Shared(lambda key: (root / key).read_bytes(), write,
                  lambda: sorted(p.relative_to(root).as_posix()
                                 for p in root.rglob("*") if p.is_file()))


def _assert_refused(clone: Path, tmp_path: Path, how: str) -> None:
    result = sluice(clone, "run", check=1)
    text = result.stdout + result.stderr
    assert "corrupt" in text or "nothing was written" in text, text
    assert "Traceback" not in text
    assert not (tmp_path / "pwned.txt").exists() and not (clone / "pwned.txt").exists()
    if how == "swapped bytes":
        assert not (clone / "build/made.txt").exists()
    assert not list(tmp_path.rglob("pwned.txt"))


@pytest.mark.parametrize("how", ["record path", "manifest entry", "swapped bytes"])
def test_a_tampered_shared_folder_store_is_corruption(repo: Path, tmp_path: Path,
                                                       how: str) -> None:
    shared = tmp_path / "shared"
    write_project(repo, PIPELINE.format(url=shared), files={})
    sluice(repo, "run")
    _folder(shared).tamper(how)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    _assert_refused(clone, tmp_path, how)


def test_swapped_bytes_in_the_local_cache_are_corruption(repo: Path, tmp_path: Path) -> None:
    local = repo / ".sluice/cache"
    write_project(repo, PIPELINE.format(url=local), files={})
    sluice(repo, "run")
    (repo / "build/made.txt").unlink()
    _folder(local).tamper("swapped bytes")
    result = sluice(repo, "run", check=1)
    assert "is corrupt" in result.stdout + result.stderr
    assert not (repo / "build/made.txt").exists()


def test_a_tampered_s3_store_is_corruption(repo: Path, tmp_path: Path, s3: S3Bucket) -> None:
    write_project(repo, PIPELINE.format(url=s3.url()), files={})
    sluice(repo, "run")
    bucket = Shared(lambda key: s3.read(f"sluice/{key}"),
                    lambda key, data: s3.write(f"sluice/{key}", data),
                    lambda: sorted(k.removeprefix("sluice/") for k in s3.keys("sluice/")))
    key, original = bucket.record("make")
    for number, how in enumerate(["record path", "swapped bytes"]):
        bucket.write(key, json.dumps(original).encode())
        bucket.tamper(how)
        clone = tmp_path / f"clone{number}"
        git(tmp_path, "clone", "-q", str(repo), str(clone))
        _assert_refused(clone, tmp_path, how)


@pytest.fixture
def registered(repo: Path) -> Path:
    config = MODEL_PIPELINE + "tiers:\n  merge: {select: all, register: true}\n"
    write_project(repo, config, files={"predict.py": PREDICT,
                                       "params.yaml": "quality: 0.3\nrows: 200\n"})
    sluice(repo, "run", "--tier", "merge")
    return repo


def test_models_pull_refuses_a_manifest_escaping_its_folder(registered: Path,
                                                             tmp_path: Path) -> None:
    digest = _folder(registered / ".sluice/cache").escaping_manifest()
    with sqlite3.connect(registered / ".sluice/sluice.db") as db:
        db.execute("UPDATE model_versions SET artifact_hash = ?", (digest,))
    dest = tmp_path / "out" / "model"
    bad = sluice(registered, "models", "pull", "churn:1", "-o", str(dest), check=1)
    assert "climbs out of its folder" in bad.stderr and "Traceback" not in bad.stderr
    assert not list(tmp_path.rglob("pwned.txt")) and not dest.exists()


def test_models_pull_refuses_swapped_bytes(registered: Path, tmp_path: Path) -> None:
    digest = json.loads(sluice(registered, "models", "show", "churn:1", "--json").stdout)[
        "artifact_hash"]
    _folder(registered / ".sluice/cache").write(_key(digest), b"evil\n")
    dest = tmp_path / "m.txt"
    bad = sluice(registered, "models", "pull", "churn:1", "-o", str(dest), check=1)
    assert "is corrupt" in bad.stderr and not dest.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".m.txt")]  # no temp left


def test_an_output_under_a_committed_link_is_refused(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    config = ("stages:\n  make:\n    cmd: echo x > ${outs.file}\n"
              "    outs: {file: models/x.txt}\n")
    write_project(repo, config, files={}, commit=False)
    (repo / "models").symlink_to(outside)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a link to a folder outside")
    result = sluice(repo, "run", check=2)
    assert "output `file` of stage `make` (`models/x.txt`) lies under the symbolic link" \
        in result.stderr
    assert str(outside) in result.stderr and "sluice.yaml:" in result.stderr
    assert not list(outside.iterdir())


def test_data_add_refuses_a_link_inside_tracked_data(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "host-etc"
    outside.mkdir()
    secret = b"root:x:0:0:secret-" + os.urandom(8).hex().encode() + b"\n"
    (outside / "passwd").write_bytes(secret)
    (repo / "sluice.yaml").write_text("stages: {}\n")
    (repo / "data").mkdir()
    (repo / "data/a.csv").write_text("1\n")
    (repo / "data/etc").symlink_to(outside)
    result = sluice(repo, "data", "add", "data", check=2)
    assert "data/etc` is a symbolic link" in result.stderr and "Traceback" not in result.stderr
    assert not (repo / "sluice.lock").exists()
    stored = [p for p in (repo / ".sluice").rglob("*") if p.is_file()]
    assert not any(secret in p.read_bytes() for p in stored)
