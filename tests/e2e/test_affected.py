"""End-to-end: `sluice affected` / `sluice plan --base` in real git repos with history."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import git, sluice
from tests.e2e.pipelines import on_feature_branch

CONFIG = """\
params: params.yaml
datasets:
  events: data/events
stages:
  unit:
    kind: check
    cmd: python3 -m pytest -q tests
    deps: [tests/]
  features:
    cmd: python3 src/features.py ${datasets.events} ${outs.table}
    inputs: [datasets.events]
    outs: {table: build/features.txt}
  train_churn:
    kind: train
    cmd: python3 src/train.py ${stages.features.outs.table} ${outs.model}
    params: [train.lr]
    outs: {model: build/model.txt}
  evaluate_churn:
    kind: evaluate
    cmd: python3 src/evaluate.py ${stages.train_churn.outs.model} ${outs.preds}
    outs: {preds: build/preds.txt}
  report:
    cmd: cat ${stages.evaluate_churn.outs.preds} > ${outs.r}
    outs: {r: build/report.txt}
  lonely:
    cmd: python3 tools/lonely.py > ${outs.x}
    deps: [tools/lonely.py]
    outs: {x: build/lonely.txt}
models:
  churn: {train: train_churn, evaluate: evaluate_churn, artifact: model}
"""
FILES = {
    "params.yaml": "train:\n  lr: 0.1\n  epochs: 3\nunrelated: 1\n",
    "src/features.py": "import sys\nfrom helpers import util\n"
                       "open(sys.argv[2], 'w').write(str(util.f()))\n",
    "src/helpers/__init__.py": "",
    "src/helpers/util.py": "def f():\n    return 1\n",
    "src/train.py": "import sys\nopen(sys.argv[2], 'w').write('model')\n",
    "src/evaluate.py": "import sys\nopen(sys.argv[2], 'w').write('preds')\n",
    "tools/lonely.py": "print('alone')\n",
    "tests/test_nothing.py": "def test_ok():\n    assert True\n",
    "data/events/a.csv": "1\n",
}


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def project(repo: Path) -> Path:
    return on_feature_branch(repo, CONFIG, FILES)


def affected(repo: Path, *args: str) -> dict[str, object]:
    result: dict[str, object] = json.loads(
        sluice(repo, "affected", "--base", "main", "--json", *args).stdout)
    return result


def chains(impact: dict[str, object], stage: str) -> list[str]:
    stages = impact["stages"]
    assert isinstance(stages, list)
    return next(s["chains"] for s in stages if s["name"] == stage)


def test_nothing_changed_affects_nothing(project: Path) -> None:
    impact = affected(project)
    assert impact["affected_stages"] == [] and impact["affected_models"] == []


def test_modified_source_file_reaches_model_through_chain(project: Path) -> None:
    (project / "src/train.py").write_text("import sys\nopen(sys.argv[2], 'w').write('m2')\n")
    impact = affected(project)
    assert impact["affected_stages"] == ["train_churn", "evaluate_churn", "report"]
    assert impact["affected_models"] == ["churn"]
    assert chains(impact, "report") == [
        "report ← evaluate_churn ← train_churn ← src/train.py modified"]
    text = sluice(project, "affected", "--base", "main").stdout
    assert "churn ← train_churn ← src/train.py modified" in text
    assert "not affected: unit, features, lonely" in text


def test_helper_module_found_through_imports(project: Path) -> None:
    (project / "src/helpers/util.py").write_text("def f():\n    return 2\n")
    impact = affected(project)
    assert chains(impact, "features") == ["features ← src/helpers/util.py modified"]
    explain = json.loads(sluice(project, "plan", "--explain", "features", "--json").stdout)
    assert "src/helpers/util.py" in explain["discovered_imports"]


def test_discover_imports_false_ignores_helpers(project: Path) -> None:
    config = CONFIG.replace("    inputs: [datasets.events]\n",
                            "    inputs: [datasets.events]\n    discover_imports: false\n", 1)
    (project / "sluice.yaml").write_text(config)
    commit(project, "no discovery")
    (project / "src/helpers/util.py").write_text("def f():\n    return 2\n")
    impact = json.loads(sluice(project, "affected", "--base", "HEAD", "--json").stdout)
    assert impact["affected_stages"] == []


def test_params_change_affects_only_stages_using_the_key(project: Path) -> None:
    (project / "params.yaml").write_text("train:\n  lr: 0.05\n  epochs: 4\nunrelated: 2\n")
    impact = affected(project)
    assert impact["affected_stages"] == ["train_churn", "evaluate_churn", "report"]
    assert chains(impact, "train_churn") == ["train_churn ← params train.lr 0.1 → 0.05"]


def test_stage_cmd_change_in_sluice_yaml(project: Path) -> None:
    (project / "sluice.yaml").write_text(CONFIG.replace("cat ${stages", "tac ${stages"))
    impact = affected(project)
    assert impact["affected_stages"] == ["report"]
    assert chains(impact, "report") == ["report ← stage cmd changed in sluice.yaml"]


def test_new_stage_is_reported_as_added(project: Path) -> None:
    (project / "sluice.yaml").write_text(
        CONFIG.replace("models:", "  extra:\n    cmd: echo hi\nmodels:"))
    assert chains(affected(project), "extra") == ["extra ← stage added in sluice.yaml"]


def test_deleted_and_renamed_files(project: Path) -> None:
    git(project, "mv", "tests/test_nothing.py", "tests/test_renamed.py")
    (project / "tools/lonely.py").unlink()
    impact = affected(project)
    assert chains(impact, "unit") == [
        "unit ← tests/test_nothing.py renamed to tests/test_renamed.py"]
    assert chains(impact, "lonely") == ["lonely ← tools/lonely.py removed"]


def test_committed_changes_with_head_revision(project: Path) -> None:
    (project / "tools/lonely.py").write_text("print('still alone')\n")
    commit(project, "edit lonely")
    (project / "src/train.py").write_text("# uncommitted edit\n")
    impact = json.loads(sluice(project, "affected", "--base", "main", "--head", "HEAD",
                               "--json").stdout)
    assert impact["affected_stages"] == ["lonely"]


def test_base_means_merge_base(project: Path) -> None:
    (project / "tools/lonely.py").write_text("print('feature edit')\n")
    commit(project, "feature edit")
    git(project, "checkout", "-q", "main")
    (project / "src/train.py").write_text("import sys\n# main moved on\n")
    commit(project, "main edit")
    git(project, "checkout", "-q", "feature")
    # Like `git diff main...feature`: main's later commit does not count.
    assert affected(project)["affected_stages"] == ["lonely"]


def test_dataset_pinned_in_sluice_lock(project: Path) -> None:
    git(project, "rm", "-rq", "--cached", "data/events")
    sluice(project, "data", "add", "data/events")
    commit(project, "pin events")
    base = git(project, "rev-parse", "HEAD").strip()
    (project / "data/events/b.csv").write_text("2\n")
    sluice(project, "data", "add", "data/events")
    impact = json.loads(sluice(project, "affected", "--base", base, "--json").stdout)
    assert chains(impact, "features") == ["features ← dataset events changed (sluice.lock)"]


def _dvc_init(project: Path) -> None:
    """What `dvc init` leaves that matters here: the `.dvc/` folder, its config committed."""
    (project / ".dvc").mkdir()
    (project / ".dvc/config").write_text("")


def test_dvc_pointer_file_marks_consumers(project: Path) -> None:
    _dvc_init(project)
    git(project, "rm", "-rq", "--cached", "data/events")
    (project / ".gitignore").write_text("/data/events\n")
    dvc = ("outs:\n- md5: {md5}.dir\n  size: 2\n  nfiles: 1\n  hash: md5\n"
           "  path: events\n")
    (project / "data/events.dvc").write_text(dvc.format(md5="a" * 32))
    base = commit(project, "track with dvc")
    assert json.loads(sluice(project, "affected", "--base", base, "--json").stdout)[
        "affected_stages"] == []
    (project / "data/events.dvc").write_text(dvc.format(md5="b" * 32))
    impact = json.loads(sluice(project, "affected", "--base", base, "--json").stdout)
    assert chains(impact, "features") == ["features ← dataset events changed (data/events.dvc)"]


def test_corrupt_dvc_file_is_a_clear_error(project: Path) -> None:
    _dvc_init(project)
    (project / "data/broken.dvc").write_text("outs: [[[\n")
    result = sluice(project, "affected", "--base", "main", check=2)
    assert "data/broken.dvc is not valid YAML" in result.stderr
    assert "Traceback" not in result.stderr
    shutil.rmtree(project / ".dvc")  # outside a DVC repository a `.dvc` file pins nothing
    sluice(project, "affected", "--base", "main")


def test_unknown_revision(project: Path) -> None:
    result = sluice(project, "affected", "--base", "no-such-branch", check=2)
    assert "unknown revision `no-such-branch`" in result.stderr


def test_shallow_clone_says_how_to_fetch(project: Path, tmp_path: Path) -> None:
    (project / "tools/lonely.py").write_text("print(2)\n")
    commit(project, "second")
    clone = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", "--branch", "feature",
                    f"file://{project}", str(clone)], check=True)
    result = sluice(clone, "affected", "--base", "HEAD~1", check=2)
    assert "shallow clone" in result.stderr and "git fetch --deepen" in result.stderr


def test_base_without_sluice_yaml_makes_everything_new(repo: Path) -> None:
    (repo / "README").write_text("hi\n")
    commit(repo, "before sluice")
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "sluice.yaml").write_text("stages:\n  a:\n    cmd: echo\n")
    impact = json.loads(sluice(repo, "affected", "--base", "main", "--json").stdout)
    assert impact["affected_stages"] == ["a"]
    assert "no sluice.yaml at main" in str(impact["note"])


def test_paths_with_spaces_non_ascii_and_binary_files(project: Path) -> None:
    config = CONFIG.replace("deps: [tools/lonely.py]", "deps: ['tools/ü dir/']")
    (project / "sluice.yaml").write_text(config)
    (project / "tools/ü dir").mkdir()
    (project / "tools/ü dir/blob data.bin").write_bytes(bytes(range(256)) * 4)
    base = commit(project, "binary")
    (project / "tools/ü dir/blob data.bin").write_bytes(bytes(range(255, -1, -1)) * 4)
    impact = json.loads(sluice(project, "affected", "--base", base, "--json").stdout)
    assert chains(impact, "lonely") == ["lonely ← tools/ü dir/blob data.bin modified"]


def test_submodule_commit_change(project: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    git(lib, "init", "-q", "-b", "main")
    (lib / "x.py").write_text("X = 1\n")
    git(lib, "add", "-A")
    git(lib, "-c", "user.email=a@b", "-c", "user.name=n", "commit", "-q", "-m", "lib")
    git(project, "-c", "protocol.file.allow=always", "submodule", "add", "-q",
        str(lib), "vendor/lib")
    (project / "sluice.yaml").write_text(
        CONFIG.replace("deps: [tools/lonely.py]", "deps: [tools/lonely.py, vendor/lib]"))
    base = commit(project, "submodule")
    (project / "vendor/lib/x.py").write_text("X = 2\n")
    git(project / "vendor/lib", "-c", "user.email=a@b", "-c", "user.name=n", "commit",
        "-q", "-am", "bump")
    impact = json.loads(sluice(project, "affected", "--base", base, "--json").stdout)
    assert chains(impact, "lonely") == ["lonely ← vendor/lib modified"]


def test_plan_base_plans_only_affected_stages(project: Path) -> None:
    (project / "tools/lonely.py").write_text("print('changed')\n")
    result = json.loads(sluice(project, "plan", "--base", "main", "--json").stdout)
    assert [s["stage"] for s in result["stages"]] == ["lonely"]
    text = sluice(project, "plan", "--base", "main").stdout
    assert "lonely ← tools/lonely.py modified" in text
