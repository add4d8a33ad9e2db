"""End-to-end: `sluice init --from-dvc` on a project shaped like DVC's example-get-started.

The converted project runs, reruns from the cache, answers `affected` as DVC's own
dependency graph implies, and the data pinned by `data/data.xml.dvc` becomes a
sluice.lock pin that `data status`, `checkout` and `pull` work on.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sluice.config.lockfile import parse_lock
from tests.conftest import git, sluice
from tests.e2e.dvc_project import (
    DATA_XML,
    DVC_YAML,
    PARAMS,
    dvc_affected,
    md5,
    put_folder,
    remove_dvc_files,
    write_dvc_project,
)

STAGES = ["prepare", "featurize", "train", "evaluate"]
PLOTS_LINE = DVC_YAML.splitlines().index("plots:") + 1


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def converted(repo: Path) -> Path:
    write_dvc_project(repo)
    commit(repo, "a DVC project")
    out = sluice(repo, "init", "--from-dvc").stdout
    assert "wrote sluice.yaml with 4 stage(s)" in out
    assert f"dvc.yaml:{PLOTS_LINE}:1: top-level `plots:` of dvc.yaml is not carried" in out
    commit(repo, "converted to sluice")
    return repo


def test_conversion_writes_stages_and_pins(converted: Path) -> None:
    text = (converted / "sluice.yaml").read_text()
    assert "# from dvc.yaml:2" in text and "params: params.yaml" in text
    assert "params: [prepare.seed, prepare.split]" in text
    assert "metrics: eval/live/metrics.json   # DVC metrics" in text
    pin = parse_lock((converted / "sluice.lock").read_text())["data/data.xml"]
    assert pin.algorithm == "xxh3" and pin.size == len(DATA_XML)  # imported, md5-checked
    report = json.loads(sluice(converted, "init", "--from-dvc", "--force", "--json").stdout)
    assert list(report["stages"]) == STAGES
    assert report["imported"][0]["path"] == "data/data.xml"
    first = report["notes"][0]
    assert (first["file"], first["line"]) == ("dvc.yaml", PLOTS_LINE)


def test_converted_project_runs_and_reruns_cached(converted: Path) -> None:
    first = sluice(converted, "run").stdout
    assert json.loads((converted / "eval/live/metrics.json").read_text())["accuracy"] >= 0
    again = json.loads(sluice(converted, "run", "--json").stdout)
    assert {s["stage"]: s["status"] for s in again["stages"]} == dict.fromkeys(STAGES, "cached")
    assert "ran" in first


@pytest.mark.parametrize(("edit", "paths", "params"), [
    ("src/featurization.py", {"src/featurization.py"}, set()),
    ("src/train.py", {"src/train.py"}, set()),
    ("params:train.n_est", set(), {"train.n_est"}),
    ("params:prepare.split", set(), {"prepare.split"}),
    ("data/data.xml", {"data/data.xml"}, set()),
])
def test_affected_matches_dvc_dependencies(converted: Path, edit: str, paths: set[str],
                                           params: set[str]) -> None:
    if edit.startswith("params:"):
        key = edit.split(".")[-1]
        (converted / "params.yaml").write_text(PARAMS.replace(f"{key}: ", f"{key}: 7"))
    elif edit == "data/data.xml":
        (converted / edit).write_text(DATA_XML.replace("post 1 ", "post one "))
        sluice(converted, "data", "add", edit)
    else:
        (converted / edit).write_text((converted / edit).read_text() + "# edited\n")
    commit(converted, "a change")
    impact = json.loads(sluice(converted, "affected", "--base", "HEAD~1", "--json").stdout)
    expected = dvc_affected(paths, params)
    assert set(impact["affected_stages"]) == expected
    if edit == "src/featurization.py":
        assert expected == {"featurize", "train", "evaluate"}


def test_data_status_checkout_and_pull_from_the_dvc_remote(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "dvc-remote"
    write_dvc_project(repo, in_workspace=False, in_cache=False, remote=remote)
    # A folder pinned by DVC, whose objects and .dir listing sit in .dvc/cache only.
    files = {"a.txt": b"alpha\n", "sub/b.txt": b"beta\n"}
    digest = put_folder(repo / ".dvc/cache", files)
    (repo / "data/extra.dvc").write_text(
        f"outs:\n- md5: {digest}\n  size: 11\n  nfiles: 2\n  hash: md5\n  path: extra\n")
    commit(repo, "a DVC project, data on its remote")
    report = json.loads(sluice(repo, "init", "--from-dvc", "--json").stdout)
    assert [p["path"] for p in report["imported"]] == ["data/extra"]
    assert report["remote"] == [{"path": "data/data.xml", "hash": "dvc-md5:" + md5(
        DATA_XML.encode()), "dvc_remote": "../dvc-remote"}]
    status = json.loads(sluice(repo, "data", "status", "--json", check=1).stdout)
    states = {s["path"]: s["state"] for s in status}
    assert states["data/data.xml"] == "missing" and states["data/extra"] == "missing"
    refused = sluice(repo, "run", check=2)
    assert "sluice data pull" in refused.stderr + refused.stdout
    sluice(repo, "data", "checkout", "data/extra")
    assert (repo / "data/extra/sub/b.txt").read_bytes() == b"beta\n"
    pushed = sluice(repo, "data", "push", "--remote", str(tmp_path / "store"))
    assert "skipping 1 path(s) still pinned by DVC's md5" in pushed.stderr
    pulled = sluice(repo, "data", "pull").stdout
    assert "fetched from DVC's cache or remote" in pulled
    assert (repo / "data/data.xml").read_text() == DATA_XML
    pin = parse_lock((repo / "sluice.lock").read_text())["data/data.xml"]
    assert pin.algorithm == "xxh3"
    remove_dvc_files(repo)
    status = sluice(repo, "data", "status", "--json").stdout
    assert "missing" not in status and "modified" not in status
    sluice(repo, "run")


def test_corrupt_dvc_object_is_refused(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "dvc-remote"
    write_dvc_project(repo, in_workspace=False, in_cache=False, remote=remote)
    obj = next(p for p in remote.rglob("*") if p.is_file())
    obj.write_bytes(b"tampered")
    commit(repo, "project")
    sluice(repo, "init", "--from-dvc")
    bad = sluice(repo, "data", "pull", check=None)
    assert bad.returncode != 0 and "does not match its md5" in bad.stderr
    assert not (repo / "data/data.xml").exists()


def test_pointer_files_are_imported_even_without_the_dvc_folder(repo: Path) -> None:
    # A clone whose `.dvc/` folder was dropped: its `.dvc` files still say what to pin.
    write_dvc_project(repo)
    shutil.rmtree(repo / ".dvc")
    commit(repo, "a DVC project without its .dvc folder")
    sluice(repo, "init", "--from-dvc")
    pin = parse_lock((repo / "sluice.lock").read_text())["data/data.xml"]
    assert pin.algorithm == "xxh3" and pin.size == len(DATA_XML)
