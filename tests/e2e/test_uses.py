"""End-to-end: an MLflow Project entry point and a Metaflow flow as sluice stages.

Real runs: `mlflow run --env-manager local` with the mlflow of ``$SLUICE_MLFLOW_BIN``
(its own virtualenv) and a local Metaflow run with the metaflow installed next to
sluice. Each stage runs, writes its declared output, records its run id, is cached
on a rerun, and is affected when the entry script's or the flow's helper changes.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

from tests.conftest import git, sluice
from tests.e2e.pipelines import MLPROJECT, on_feature_branch
from tests.unit._util import capsule_spec

TRAIN = """\
import importlib.util
import json
import os
import sys

import helper

os.makedirs("out", exist_ok=True)
with open("out/model.json", "w") as f:
    json.dump({"alpha": float(sys.argv[2]), "scale": helper.SCALE,
               "in_mlflow_env": importlib.util.find_spec("mlflow") is not None,
               "run_id": os.environ.get("MLFLOW_RUN_ID")}, f)
"""

FLOW = """\
import json
import os

from metaflow import FlowSpec, Parameter, step

from helpers import double


class FeatureFlow(FlowSpec):
    window = Parameter("window", default=1)

    @step
    def start(self):
        self.table = double(int(self.window))
        self.next(self.end)

    @step
    def end(self):
        os.makedirs("out", exist_ok=True)
        with open("out/features.json", "w") as f:
            json.dump({"table": self.table}, f)


if __name__ == "__main__":
    FeatureFlow()
"""

# The flow above as a stage; the tests append any other top-level keys.
FEATURES_STAGE = """\
  features:
    uses: metaflow
    flow: flows/features.py
    params: [features.window]
    outs: {table: out/features.json}
"""

FILES = {
    "params.yaml": "train:\n  alpha: 0.5\nfeatures:\n  window: 3\n",
    "mlproj/MLproject": MLPROJECT,
    "mlproj/train.py": TRAIN,
    "mlproj/helper.py": "SCALE = 1\n",
    "flows/features.py": FLOW,
    "flows/helpers.py": "def double(x):\n    return 2 * x\n",
}


def _project(repo: Path, stages: str) -> Path:
    return on_feature_branch(repo, "stages:\n" + stages, FILES)


def _need_metaflow() -> None:
    pytest.importorskip("metaflow", reason="metaflow is not installed "
                        "(pip install 'sluice-ml[metaflow]')")


def _record(repo: Path, stage: str) -> dict[str, object]:
    record: dict[str, object] = json.loads(
        (repo / ".sluice" / "stages" / f"{stage}.json").read_text())
    return record


def _affected(repo: Path, env: dict[str, str] | None = None) -> list[str]:
    out = sluice(repo, "affected", "--base", "main", "--json", env=env).stdout
    stages: list[str] = json.loads(out)["affected_stages"]
    return stages


def test_metaflow_flow_as_a_stage(repo: Path) -> None:
    _need_metaflow()
    _project(repo, FEATURES_STAGE)
    first = sluice(repo, "run")
    assert first.stdout.startswith("1 ran"), first.stdout
    assert json.loads((repo / "out/features.json").read_text()) == {"table": 6}
    meta = _record(repo, "features")["meta"]
    assert isinstance(meta, dict) and meta["uses"] == "metaflow"
    assert re.fullmatch(r"\d+", str(meta["run_id"])), meta
    # Metaflow's own artifacts stay in its local datastore, under .sluice.
    assert (repo / ".sluice" / "metaflow" / ".metaflow" / "FeatureFlow").is_dir()

    assert sluice(repo, "run").stdout.startswith("1 cached")  # Metaflow does not run
    assert _record(repo, "features")["meta"] == meta

    assert _affected(repo) == []
    (repo / "flows/helpers.py").write_text("def double(x):\n    return 3 * x\n")
    assert _affected(repo) == ["features"]
    sluice(repo, "run")
    assert json.loads((repo / "out/features.json").read_text()) == {"table": 9}
    again = _record(repo, "features")["meta"]
    assert isinstance(again, dict) and again["run_id"] != meta["run_id"]


@pytest.fixture
def mlflow_env(tmp_path: Path) -> dict[str, str]:
    """PATH as a user's with mlflow linked into a bin folder (pipx-style), the venv sluice
    runs from next: the stage must still run its entry point with mlflow's own Python."""
    binary = os.environ.get("SLUICE_MLFLOW_BIN")
    if not binary:
        pytest.skip("SLUICE_MLFLOW_BIN is not set (an `mlflow` in its own venv; "
                    "`make test` sets it)")
    links = tmp_path / "bin"
    links.mkdir()
    (links / "mlflow").symlink_to(binary)
    path = os.pathsep.join([str(links), os.path.dirname(sys.executable),
                            os.environ.get("PATH", "")])
    return {"PATH": path}


def test_mlflow_project_as_a_stage(repo: Path, mlflow_env: dict[str, str]) -> None:
    _project(repo, """\
  train:
    kind: train
    uses: mlflow-project
    project: mlproj
    params: [train.alpha]
    outs: {model: mlproj/out/model.json}
""")
    sluice(repo, "run", env=mlflow_env)
    model = json.loads((repo / "mlproj/out/model.json").read_text())
    assert model["alpha"] == 0.5 and model["scale"] == 1
    assert model["in_mlflow_env"] is True  # the entry point ran with mlflow's Python
    meta = _record(repo, "train")["meta"]
    assert meta == {"uses": "mlflow-project", "run_id": model["run_id"]}
    assert re.fullmatch(r"[0-9a-f]{32}", str(model["run_id"]))
    imports = _record(repo, "train")["components"]
    assert isinstance(imports, dict)
    assert sorted(imports["imports"]) == ["mlproj/helper.py", "mlproj/train.py"]
    assert sorted(imports["deps"]) == ["mlproj/MLproject"]

    assert sluice(repo, "run", env=mlflow_env).stdout.startswith("1 cached")

    (repo / "mlproj/helper.py").write_text("SCALE = 2\n")
    assert _affected(repo, mlflow_env) == ["train"]
    git(repo, "checkout", "-q", "--", "mlproj/helper.py")
    (repo / "mlproj/MLproject").write_text(MLPROJECT.replace("0.1", "0.2"))
    assert _affected(repo, mlflow_env) == ["train"]
    git(repo, "checkout", "-q", "--", "mlproj/MLproject")
    (repo / "params.yaml").write_text("train:\n  alpha: 0.25\nfeatures:\n  window: 3\n")
    sluice(repo, "run", env=mlflow_env)
    model = json.loads((repo / "mlproj/out/model.json").read_text())
    assert model["alpha"] == 0.25
    assert _record(repo, "train")["meta"] == {"uses": "mlflow-project",
                                              "run_id": model["run_id"]}
    assert model["run_id"] != meta["run_id"]


def test_metaflow_stage_in_a_capsule(repo: Path, tmp_path: Path) -> None:
    """A capsule on another machine: the spec carries no path of this workspace; the
    worker sets Metaflow's datastore in its own scratch folder and stores the run id."""
    _need_metaflow()
    from sluice.pipeline.capsule import put_spec
    from sluice.store.local import LocalStore
    from sluice.workspace.project import load_project

    shared = (tmp_path / "shared").as_uri()
    _project(repo, FEATURES_STAGE + f"storage:\n  cache: {shared}\n")
    project = load_project(repo)
    spec = capsule_spec(project, "features")
    assert spec["uses"] == "metaflow"
    assert not any(k.startswith("METAFLOW_") for k in spec["env"]), spec["env"]
    digest = put_spec(project, spec)
    worker = tmp_path / "worker"
    worker.mkdir()
    done = sluice(worker, "stage", "exec", digest, "--cache-dir", str(tmp_path / "wcache"),
                  "--scratch", str(tmp_path / "scratch"), env={"SLUICE_CACHE_URL": shared})
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["ok"], done.stderr
    assert json.loads((tmp_path / "scratch/out/features.json").read_text()) == {"table": 6}
    assert (tmp_path / "scratch/.sluice/metaflow/.metaflow/FeatureFlow").is_dir()
    stored = LocalStore(tmp_path / "shared").get_run(result["fingerprint"])
    assert stored is not None and stored["meta"]["uses"] == "metaflow"
    assert re.fullmatch(r"\d+", stored["meta"]["run_id"])
