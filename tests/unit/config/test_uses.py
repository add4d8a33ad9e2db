"""`uses: mlflow-project` / `uses: metaflow`: the command sluice writes, the deps it adds,
the errors of a wrong stage, the entry scripts read from MLproject, the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.config.base import disk_reader
from sluice.config.uses import environment
from sluice.errors import ConfigError
from sluice.workspace.imports import ImportFinder
from sluice.workspace.uses import uses_scripts
from tests.e2e.pipelines import MLPROJECT as MAIN_ONLY
from tests.unit._util import load, problems

PARAMS = {"params.yaml": "train:\n  alpha: 0.5\n  ratio: 0.1\nflow:\n  window: 3\n"}


def test_mlflow_project_command_and_deps(tmp_path: Path) -> None:
    config = load(tmp_path, """\
        stages:
          train:
            uses: mlflow-project
            project: projects/churn
            params: [train.alpha, train.ratio]
            outs: {model: projects/churn/out/model.pkl}
        """, PARAMS)
    stage = config.stages["train"]
    assert stage.cmd == ("mlflow run projects/churn -e main --env-manager local "
                         "-P alpha=${params.train.alpha} -P ratio=${params.train.ratio}")
    assert stage.deps == ("projects/churn/MLproject",)


def test_mlflow_project_defaults_and_named_parameters(tmp_path: Path) -> None:
    config = load(tmp_path, """\
        stages:
          train:
            uses: mlflow-project
            entry_point: fit
            parameters: {learning-rate: train.alpha}
            deps: [MLproject]
        """, PARAMS)
    stage = config.stages["train"]
    assert stage.cmd == ("mlflow run . -e fit --env-manager local "
                         "-P learning-rate=${params.train.alpha}")
    assert stage.deps == ("MLproject",)  # declared once, not twice


def test_metaflow_command_and_deps(tmp_path: Path) -> None:
    config = load(tmp_path, """\
        stages:
          feats:
            uses: metaflow
            flow: ./flows/feats.py
            params: [flow.window]
        """, PARAMS)
    stage = config.stages["feats"]
    assert stage.cmd == ("python flows/feats.py run --window ${params.flow.window} "
                         "--run-id-file .sluice/logs/feats.run-id")
    assert stage.deps == ("flows/feats.py",)


def test_uses_stage_survives_the_config_cache(tmp_path: Path) -> None:
    yaml = "stages:\n  feats:\n    uses: metaflow\n    flow: flows/feats.py\n"
    first = load(tmp_path, yaml).stages["feats"]
    again = load(tmp_path, yaml).stages["feats"]  # from .sluice's cache of configs
    assert (again.cmd, again.deps) == (first.cmd, first.deps)
    assert again.cmd.startswith("python flows/feats.py run")


@pytest.mark.parametrize(("yaml", "message", "line"), [
    ("stages:\n  a:\n    uses: metaflow\n    flow: f.py\n    cmd: python f.py run\n",
     "stage `a` has both `cmd` and `uses: metaflow`", 5),
    ("stages:\n  a:\n    uses: metaflow\n", "stage `a` uses metaflow but names no flow file", 3),
    ("stages:\n  a:\n    uses: metaflow\n    flow: f.py\n    project: p\n",
     "`project` of stage `a` belongs to `uses: mlflow-project`, not `metaflow`", 5),
    ("stages:\n  a:\n    uses: mlflow-project\n    flow: f.py\n",
     "`flow` of stage `a` belongs to `uses: metaflow`, not `mlflow-project`", 4),
    ("stages:\n  a:\n    uses: mlflow-project\n    project: ../elsewhere\n",
     "project folder `../elsewhere` of stage `a` points outside the repository", 4),
    ("stages:\n  a:\n    uses: mlflow-project\n    params: [train.alpha, other.alpha]\n",
     "two params keys of stage `a` end in the same name", 4),
    ("stages:\n  a:\n    uses: mlflow-project\n    parameters: {alpha: train.alpah}\n",
     "params key `train.alpah` of parameter `alpha` of stage `a`: `train.alpah` is not in "
     "params.yaml; did you mean `train.alpha`?", 4),
    ("stages:\n  a:\n    uses: mlflow\n",
     "`uses` of stage `a` must be `mlflow-project` or `metaflow`, not the string `mlflow`", 3),
])
def test_wrong_uses_stage_is_a_config_error_with_its_line(
        tmp_path: Path, yaml: str, message: str, line: int) -> None:
    files = {**PARAMS, "params.yaml": PARAMS["params.yaml"] + "other:\n  alpha: 1\n"}
    found = problems(tmp_path, yaml, files)
    assert [e.message for e in found] == [message]
    error = found[0]
    assert error.location is not None and error.location.line == line


def _mlflow_stage(tmp_path: Path, mlproject: str, entry: str = "main") -> list[str]:
    config = load(tmp_path, f"""\
        stages:
          train:
            uses: mlflow-project
            project: proj
            entry_point: {entry}
        """, {"proj/MLproject": mlproject})
    return uses_scripts(config.stages["train"], disk_reader(tmp_path))


# The e2e tests' project with a second entry point whose command runs Python unbuffered.
MLPROJECT = MAIN_ONLY + """\
  prep:
    command: "python -u steps/prep.py"
"""


def test_entry_scripts_come_from_mlproject(tmp_path: Path) -> None:
    assert _mlflow_stage(tmp_path, MLPROJECT) == ["proj/train.py"]
    assert _mlflow_stage(tmp_path / "b", MLPROJECT, "prep") == ["proj/steps/prep.py"]
    assert _mlflow_stage(tmp_path / "c", MLPROJECT, "run.py") == ["proj/run.py"]


def test_unknown_entry_point_names_mlproject(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _mlflow_stage(tmp_path, MLPROJECT, "mian")
    assert info.value.message == \
        "proj/MLproject has no entry point `mian` (stage `train`); did you mean `main`?"
    assert info.value.location is not None and info.value.location.file == "proj/MLproject"
    assert info.value.location.line == 3


def test_entry_script_imports_are_found_from_the_project_folder(tmp_path: Path) -> None:
    files = {"proj/train.py": "import helpers\nimport numpy\n", "proj/helpers.py": "X = 1\n"}
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    read = disk_reader(tmp_path)
    finder = ImportFinder(lambda p: (tmp_path / p).is_file(), read)
    assert finder.discover("mlflow run proj -e main", ["proj/train.py"]) == \
        ["proj/helpers.py", "proj/train.py"]


def test_environment_defaults_give_way_to_the_users(tmp_path: Path) -> None:
    config = load(tmp_path, """\
        stages:
          m: {uses: metaflow, flow: f.py}
          p: {uses: mlflow-project}
        """)
    meta, mlp = config.stages["m"].spec.uses, config.stages["p"].spec.uses
    env = environment(meta, tmp_path, {"USER": "me", "PATH": ""})
    assert env == {"METAFLOW_DEFAULT_DATASTORE": "local", "METAFLOW_DEFAULT_METADATA": "local",
                   "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(tmp_path / ".sluice" / "metaflow")}
    assert environment(meta, tmp_path, {"PATH": ""})["METAFLOW_USER"] == "sluice"
    assert "METAFLOW_DEFAULT_DATASTORE" not in environment(
        meta, tmp_path, {"METAFLOW_DEFAULT_DATASTORE": "s3", "USER": "me"})
    env = environment(mlp, tmp_path, {"PATH": ""})
    assert env["MLFLOW_TRACKING_URI"] == (tmp_path / ".sluice" / "mlruns").as_uri()
    assert environment(mlp, tmp_path, {"PATH": "", "MLFLOW_TRACKING_URI": "http://x"}) == {}


def test_mlflow_stage_runs_with_the_python_mlflow_is_installed_in(tmp_path: Path) -> None:
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    for name in ("mlflow", "python"):
        (venv / name).write_text("#!/bin/sh\n")
        (venv / name).chmod(0o755)
    links = tmp_path / "links"  # as pipx links ~/.local/bin/mlflow into its venv
    links.mkdir()
    (links / "mlflow").symlink_to(venv / "mlflow")
    config = load(tmp_path / "p", "stages:\n  p: {uses: mlflow-project}\n")
    env = environment(config.stages["p"].spec.uses, tmp_path, {"PATH": f"{links}:/usr/bin"})
    assert env["PATH"] == f"{venv}:{links}:/usr/bin"
