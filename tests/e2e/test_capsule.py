"""End-to-end: `sluice stage exec` runs a stage from the store alone, outside the workspace."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from sluice.store.local import LocalStore
from sluice.util.hashing import hash_bytes
from sluice.workspace.project import Project
from tests.conftest import sluice
from tests.unit._util import committed_project, stored_spec

CONFIG = """\
storage:
  cache: {shared}
stages:
  prepare:
    cmd: python3 src/prepare.py ${{outs.table}}
    deps: [src/prepare.py, data/raw.txt]
    outs: {{table: build/table.txt}}
  train:
    cmd: python3 src/train.py ${{stages.prepare.outs.table}} ${{outs.model}}
    deps: [src/train.py]
    outs: {{model: build/model.txt}}
"""
FILES = {
    "src/prepare.py": "import sys, pathlib\n"
                      "rows = sorted(pathlib.Path('data/raw.txt').read_text().split())\n"
                      "print('prepare saw', len(rows), 'rows', file=sys.stderr)\n"
                      "pathlib.Path(sys.argv[1]).write_text(' '.join(rows))\n",
    "src/train.py": "import sys, pathlib, time, os\n"
                    "time.sleep(float(os.environ.get('TRAIN_SLEEP', '0')))\n"
                    "text = pathlib.Path(sys.argv[1]).read_text()\n"
                    "pathlib.Path(sys.argv[2]).write_text(text.upper())\n",
    "requirements.txt": "# the stage's own packages would be listed here\n",
    ".gitignore": "data/\nbuild/\n",
    "data/raw.txt": "c a b",
}


@pytest.fixture
def project(repo: Path, tmp_path: Path) -> Project:
    return committed_project(repo, CONFIG.format(shared=(tmp_path / "shared").as_uri()), FILES)


def _exec(tmp_path: Path, digest: str, *, check: int = 0, scratch: str | None = None,
          env: dict[str, str] | None = None) -> tuple[dict[str, Any], str]:
    """Run the capsule from a folder outside the workspace; (the result line, stderr)."""
    elsewhere = tmp_path / "worker"
    elsewhere.mkdir(exist_ok=True)
    args = ["stage", "exec", digest, "--cache-dir", str(tmp_path / "worker-cache")]
    if scratch:
        args += ["--scratch", str(tmp_path / scratch)]
    done = sluice(elsewhere, *args, check=check,
                  env={"SLUICE_CACHE_URL": (tmp_path / "shared").as_uri(), **(env or {})})
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout
    return json.loads(lines[0]), done.stderr


def test_capsule_reads_nothing_from_the_workspace(project: Project, tmp_path: Path) -> None:
    prepare = stored_spec(project, "prepare", "r1")
    train = stored_spec(project, "train", "r1", pinned=False)  # before prepare ran
    # Altered after the specs were stored: the capsules must not see these.
    (project.root / "data/raw.txt").write_text("z y x w")
    (project.root / "src/prepare.py").write_text("raise SystemExit(9)\n")

    result, stderr = _exec(tmp_path, prepare, scratch="s1")
    assert result["ok"] and not result["cached"]
    assert "prepare saw 3 rows" in stderr  # the stage's output, on stderr
    assert result["outs"]["table"]["hash"] == hash_bytes(b"a b c")
    assert (tmp_path / "s1/build/table.txt").read_text() == "a b c"
    record = LocalStore(tmp_path / "shared").get_run(result["fingerprint"])
    assert record is not None and record["executor"]["name"] == "test"

    # An upstream reference, resolved from the store when the capsule starts.
    result, _ = _exec(tmp_path, train)
    assert result["ok"] and result["outs"]["model"]["hash"] == hash_bytes(b"A B C")

    # Idempotent: the same spec again reports the stored result without running.
    again, _ = _exec(tmp_path, prepare, scratch="s2")
    assert again["cached"] and again["outs"] == _exec(tmp_path, prepare)[0]["outs"]
    assert not (tmp_path / "s2").exists()


def test_hash_mismatch_in_the_store_is_exit_2(project: Project, tmp_path: Path) -> None:
    digest = stored_spec(project, "prepare", "r1")
    shared = LocalStore(tmp_path / "shared")
    blob = shared.object_path(hash_bytes(b"c a b"))
    os.chmod(blob, 0o644)
    blob.write_text("x y z")
    result, stderr = _exec(tmp_path, digest, check=2)
    assert not result["ok"] and "corrupt" in result["error"]
    assert "corrupt" in stderr and "Traceback" not in stderr
    assert _exec(tmp_path, "0" * 31, check=2)[0]["error"].startswith("the capsule spec")
    unknown = _exec(tmp_path, "0" * 32, check=2)[0]["error"]
    assert unknown.startswith(f"the capsule spec {'0' * 32} is not in the store")
    assert "--force" not in unknown  # the store's generic hint does not fit a spec


def test_timeout_kills_the_stage(project: Project, tmp_path: Path) -> None:
    _exec(tmp_path, stored_spec(project, "prepare", "r1"))
    digest = stored_spec(project, "train", "r1", pinned=False, timeout=1)
    result, _ = _exec(tmp_path, digest, check=1, env={"TRAIN_SLEEP": "600"})
    assert result["timed_out"] and not result["ok"] and "timeout" in result["error"]
    assert LocalStore(tmp_path / "shared").get_run(result["fingerprint"]) is None


def test_setup_environment_is_built_once(project: Project, tmp_path: Path) -> None:
    counter = tmp_path / "setups"
    setup = ('echo built >> "$COUNTER" && python3 -c "import sys; '
             'assert sys.prefix != sys.base_prefix" && pip --version && '
             'test -f requirements.txt')
    env = {"COUNTER": str(counter)}
    first, stderr = _exec(tmp_path, stored_spec(project, "prepare", "r1", setup=setup), env=env)
    assert first["ok"] and first["setup_built"], stderr
    second, _ = _exec(tmp_path, stored_spec(project, "train", "r1", pinned=False, setup=setup),
                      env=env)
    assert second["ok"] and not second["setup_built"]
    assert counter.read_text().count("built") == 1
    (project.root / "data/raw.txt").write_text("d e f")  # a new fingerprint: not cached
    failed, _ = _exec(tmp_path, stored_spec(project, "prepare", "r2", setup="exit 4"), check=1)
    assert "exited with code 4" in failed["error"]
