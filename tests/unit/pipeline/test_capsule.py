"""The stage capsule's API: specs built from a real git project, run from the store alone."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from sluice.errors import ConfigError, CorruptObject, StoreError
from sluice.pipeline.capsule import capsule_command, pointer_key, run_capsule, setup_files
from sluice.pipeline.fingerprint import RunContext
from sluice.pipeline.plan import decide
from sluice.store.local import LocalStore
from sluice.workspace.outputs import save_outputs
from sluice.workspace.project import Project, load_project
from tests.unit._util import committed_project, stored_spec, write_project

CONFIG = """\
storage:
  cache: {shared}
stages:
  prepare:
    cmd: python3 src/prepare.py ${{outs.table}}
    deps: [src/prepare.py, data/raw]
    outs: {{table: build/table.txt}}
  train:
    cmd: python3 src/train.py ${{stages.prepare.outs.table}} ${{outs.model}}
    deps: [src/train.py]
    timeout: 120
    outs: {{model: build/model.txt}}
"""
FILES = {
    "src/prepare.py": "import sys, pathlib, helper\n"
                      "rows = sorted(pathlib.Path('data/raw/a.txt').read_text().split())\n"
                      "pathlib.Path(sys.argv[1]).write_text(helper.tag(' '.join(rows)))\n",
    "src/helper.py": "def tag(text):\n    return 'v1:' + text\n",
    "src/train.py": "import sys, pathlib, time, os\n"
                    "text = pathlib.Path(sys.argv[1]).read_text()\n"
                    "time.sleep(float(os.environ.get('TRAIN_SLEEP', '0')))\n"
                    "pathlib.Path(sys.argv[2]).write_text(text.upper())\n",
    ".gitignore": "data/\nbuild/\n",
    "data/raw/a.txt": "c a b",
}


@pytest.fixture
def project(repo: Path, tmp_path: Path) -> Project:
    return committed_project(repo, CONFIG.format(shared=(tmp_path / "shared").as_uri()), FILES)


def _shared(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "shared")


def _run(tmp_path: Path, digest: str, name: str = "scratch", **kwargs: object):  # type: ignore[no-untyped-def]
    return run_capsule(_shared(tmp_path), digest, scratch=tmp_path / name,
                       cache_dir=tmp_path / "worker-cache", **kwargs)  # type: ignore[arg-type]


def test_spec_is_stored_with_every_object_and_no_secret(project: Project, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret-value-123")
    digest = stored_spec(project, "prepare")
    shared = _shared(tmp_path)
    raw = shared.read_bytes(digest)
    assert b"very-secret-value-123" not in raw and b"AWS_SECRET" not in raw
    assert capsule_command(digest) == f"sluice stage exec {digest}"
    import json

    spec = json.loads(raw)
    assert spec["env"]["SLUICE_STAGE"] == "prepare" and "SLUICE_PYTHON" not in spec["env"]
    assert shared.has(spec["snapshot"])
    data = next(i for i in spec["inputs"] if i["path"] == "data/raw")
    assert shared.has(data["hash"])  # untracked pinned-style data went to the shared store


def test_run_from_the_store_alone(project: Project, tmp_path: Path) -> None:
    digest = stored_spec(project, "prepare")
    (project.root / "data/raw/a.txt").write_text("z z z")  # the workspace changes afterwards
    (project.root / "src/helper.py").write_text("def tag(text):\n    return 'v2:' + text\n")
    log = io.StringIO()
    result = _run(tmp_path, digest, log=log)
    assert result.ok and not result.cached, result
    table = result.outs["table"]
    assert table["path"] == "build/table.txt"
    assert (tmp_path / "scratch/build/table.txt").read_text() == "v1:a b c"
    record = _shared(tmp_path).get_run(result.fingerprint)
    assert record is not None and record["outs"] == result.outs
    assert record["executor"]["name"] == "test" and "host" in record["executor"]
    assert _shared(tmp_path).get_run(pointer_key("r1", "prepare")) is not None


def test_rerun_is_idempotent(project: Project, tmp_path: Path) -> None:
    digest = stored_spec(project, "prepare")
    first = _run(tmp_path, digest)
    again = _run(tmp_path, digest, "scratch2")
    assert again.cached and again.ok and again.outs == first.outs
    assert not (tmp_path / "scratch2").exists()  # nothing was materialised


def test_uncommitted_edit_is_part_of_a_local_spec(project: Project, tmp_path: Path) -> None:
    (project.root / "src/helper.py").write_text("def tag(text):\n    return 'edit:' + text\n")
    result = _run(tmp_path, stored_spec(project, "prepare"))
    assert (tmp_path / "scratch/build/table.txt").read_text() == "edit:a b c"
    assert result.ok


def test_upstream_reference_resolved_at_start(project: Project, tmp_path: Path) -> None:
    train = stored_spec(project, "train", "r7", pinned=False)  # written before prepare ran
    with pytest.raises(StoreError, match="has not finished in this run"):
        _run(tmp_path, train, "early")
    assert _run(tmp_path, stored_spec(project, "prepare", "r7"), "up").ok
    result = _run(tmp_path, train, "down")
    assert result.ok, result
    assert (tmp_path / "down/build/model.txt").read_text() == "V1:A B C"
    # The fingerprint is the one a local run computes once prepare's output exists.
    restored = load_project(project.root)
    (restored.root / "build").mkdir()
    (restored.root / "build/table.txt").write_text("v1:a b c")
    local = decide(restored, "train", RunContext(), force=True, known_outputs={})
    assert local.fingerprint == result.fingerprint


def test_corrupt_object_is_refused(project: Project, tmp_path: Path) -> None:
    digest = stored_spec(project, "prepare")
    shared = _shared(tmp_path)
    import json

    spec = json.loads(shared.read_bytes(digest))
    data = next(i for i in spec["inputs"] if i["path"] == "src/prepare.py")
    target = shared.object_path(data["hash"])
    os.chmod(target, 0o644)
    target.write_text("print('tampered')\n")
    with pytest.raises(CorruptObject, match="corrupt"):
        _run(tmp_path, digest)


def test_timeout_stops_the_stage(project: Project, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    prepare = _run(tmp_path, stored_spec(project, "prepare"), "up")
    assert prepare.ok
    save_dir = project.root / "build"
    save_dir.mkdir()
    (save_dir / "table.txt").write_text("v1:a b c")
    save_outputs(project, project.config.stages["prepare"])
    monkeypatch.setenv("TRAIN_SLEEP", "600")
    # The scheduler may lower the timeout (a budget).
    result = _run(tmp_path, stored_spec(project, "train", timeout=1))
    assert result.timed_out and not result.ok and result.error
    assert _shared(tmp_path).get_run(result.fingerprint) is None


def test_setup_environment_is_built_once(project: Project, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    (project.root / "requirements.txt").write_text("# nothing\n")
    counter = tmp_path / "setups"
    monkeypatch.setenv("COUNTER", str(counter))
    setup = "echo built >> \"$COUNTER\"; cat requirements.txt > /dev/null"
    first = _run(tmp_path, stored_spec(project, "prepare", "a", setup=setup), "one")
    second = _run(tmp_path, stored_spec(project, "train", "a", setup=setup, pinned=False), "two")
    assert first.ok and first.setup_built
    assert second.ok and not second.setup_built, second
    assert counter.read_text().count("built") == 1
    # Which setup ran a stage is not fingerprinted: the stored result stands.
    third = _run(tmp_path, stored_spec(project, "prepare", "b", setup=setup + " # v2"), "three")
    assert third.cached and counter.read_text().count("built") == 1


def test_failed_setup_is_a_stage_failure(project: Project, tmp_path: Path) -> None:
    result = _run(tmp_path, stored_spec(project, "prepare", setup="exit 3"))
    assert result.returncode == 1 and not result.ok
    assert result.error is not None and "exited with code 3" in result.error
    assert _shared(tmp_path).get_run(result.fingerprint) is None


def test_setup_files(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", "stages: {}\n", {
        "requirements.txt": "-r base/reqs.txt\nnumpy\n", "base/reqs.txt": "-c pins.txt\n",
        "base/pins.txt": "", "env.sh": ""})
    assert setup_files(root, "pip install -r requirements.txt && bash env.sh -e .") == [
        "requirements.txt", "env.sh", "base/reqs.txt", "base/pins.txt"]
    assert setup_files(root, None) == []
    assert setup_files(root, "pip install --requirement=./requirements.txt") == [
        "requirements.txt", "base/reqs.txt", "base/pins.txt"]
    with pytest.raises(ConfigError, match=r"missing\.txt"):
        setup_files(root, "pip install -r missing.txt")
