"""End-to-end: the registry mirrored to a real MLflow server (docs/mlflow.md).

The server (tests/mlflow_server.py) is shared by the module's tests; each test gives
its registered models a prefix of its own. What MLflow holds is read back through its
REST API, and once through MLflow's own client (``models:/NAME@ALIAS``).
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from tests.conftest import sluice
from tests.e2e.pipelines import GATED_TO_STAGING, MODEL_PIPELINE, PREDICT, write_project

if TYPE_CHECKING:  # imported as a plugin, below: importing it here too would warn
    from tests.mlflow_server import MlflowServer

pytest_plugins = ["tests.mlflow_server"]

CONFIG = MODEL_PIPELINE + GATED_TO_STAGING + """\
mirror:
  mlflow: {MIRROR}
"""


def _project(repo: Path, mirror: str) -> Path:
    write_project(repo, CONFIG.replace("{MIRROR}", mirror),
                  files={"predict.py": PREDICT, "params.yaml": "quality: 0.3\nrows: 600\n"})
    return repo


def _json(repo: Path, *args: str, check: int = 0, env: dict[str, str] | None = None) -> object:
    return json.loads(sluice(repo, *args, "--json", check=check, env=env).stdout)


def _dead_url() -> str:
    with socket.socket() as sock:  # a port nothing listens on once this socket is closed
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_register_and_promote_are_mirrored_once(repo: Path, mlflow_server: MlflowServer,
                                                tmp_path: Path) -> None:
    project = _project(repo, f"{{tracking_uri: '{mlflow_server.url}', prefix: t1-, "
                             "experiment: t1, log_runs: true}")
    run = sluice(project, "run", "--tier", "merge")
    assert "MLflow: logged 2 stage run(s) to experiment `t1`" in run.stdout
    [version] = mlflow_server.versions("t1-churn")
    tags = {t["key"]: t["value"] for t in version["tags"]}
    assert tags["sluice.version"] == "1" and tags["sluice.verdict"] == "PASS"
    assert tags["sluice.tier"] == "merge" and tags["sluice.fingerprint.train"]
    assert tags["sluice.gate.roc_auc min 0.6"] == "PASS"
    assert tags["sluice.artifact_hash"] == _json(project, "models", "show",
                                                 "churn")["artifact_hash"]  # type: ignore[index]
    assert mlflow_server.aliases("t1-churn") == {"staging": version["version"]}

    moved = sluice(project, "promote", "churn", "1", "--to", "production")
    assert "warning" not in moved.stderr
    assert mlflow_server.aliases("t1-churn") == {"staging": version["version"],
                                                 "production": version["version"]}
    # Mirroring again changes nothing: the tag `sluice.version` finds the version.
    again = _json(project, "models", "mirror")
    assert again == [{"model": "churn", "mlflow_model": "t1-churn", "done": [],
                      "was_pending": None}]
    assert len(mlflow_server.versions("t1-churn")) == 1
    assert _json(project, "models", "mirror", "--check") == {"in_sync": True, "drift": []}

    # `log_runs: true`: each stage execution is an MLflow run with params, metrics, tags.
    experiment = mlflow_server.call("GET", "/experiments/get-by-name",
                                    query={"experiment_name": "t1"})["experiment"]
    [train] = mlflow_server.call("POST", "/runs/search", {
        "experiment_ids": [experiment["experiment_id"]],
        "filter": "tags.`sluice.stage` = 'train'"})["runs"]
    run_tags = {t["key"]: t["value"] for t in train["data"]["tags"]}
    assert run_tags["sluice.tier"] == "merge" and run_tags["sluice.outcome"] == "ran"
    assert run_tags["sluice.fingerprint"] == tags["sluice.fingerprint.train"]
    assert "sluice.cost_usd" in run_tags and train["info"]["status"] == "FINISHED"
    assert {p["key"]: p["value"] for p in train["data"]["params"]} == {"quality": "0.3"}
    assert {"wall_s", "cost_usd", "cpu_s"} <= {m["key"] for m in train["data"]["metrics"]}

    # What serving tools read: MLflow's own client resolves the alias to the artifact.
    script = ("import mlflow, pathlib, sys\n"
              "p = mlflow.artifacts.download_artifacts('models:/t1-churn@production',"
              " dst_path=sys.argv[1])\n"
              "print(pathlib.Path(p, 'model.txt').read_text())\n")
    fetched = subprocess.run([mlflow_server.python, "-c", script, str(tmp_path / "dl")],
                             capture_output=True, text=True, timeout=300, cwd=tmp_path,
                             env={"MLFLOW_TRACKING_URI": mlflow_server.url,
                                  "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout.strip() == (project / "build" / "model.txt").read_text().strip()


def test_server_down_leaves_pending_then_catch_up_and_check(
        repo: Path, mlflow_server: MlflowServer) -> None:
    # The tracking server comes from MLflow's own variable when sluice.yaml has none.
    project = _project(repo, "{prefix: t2-, retries: 2}")
    down = {"MLFLOW_TRACKING_URI": _dead_url()}
    run = sluice(project, "run", "--tier", "merge", env=down)
    assert "registered churn version 1 (PASS)" in run.stdout
    assert "MLflow mirror of `churn` pending" in run.stdout
    assert _json(project, "models", "list", env=down) == [
        {"model": "churn", "latest": 1, "versions": 1, "aliases": {"staging": 1}}]
    unreachable = sluice(project, "models", "mirror", "--check", env=down, check=1)
    assert "MLflow:" in unreachable.stderr and "Traceback" not in unreachable.stderr

    up = {"MLFLOW_TRACKING_URI": mlflow_server.url}
    caught = sluice(project, "models", "mirror", env=up)
    assert "churn: created registered model `t2-churn`" in caught.stdout
    assert "(caught up)" in caught.stdout
    [version] = mlflow_server.versions("t2-churn")
    assert mlflow_server.aliases("t2-churn") == {"staging": version["version"]}
    assert _json(project, "models", "mirror", "--check", env=up) == {"in_sync": True,
                                                                     "drift": []}

    # Someone moves `staging` in MLflow by hand, to a version sluice never made.
    other = mlflow_server.call("POST", "/model-versions/create", {
        "name": "t2-churn", "source": version["source"],
        "run_id": version["run_id"]})["model_version"]["version"]
    mlflow_server.call("POST", "/registered-models/alias",
                       {"name": "t2-churn", "alias": "staging", "version": other})
    drift = _json(project, "models", "mirror", "--check", env=up, check=1)
    assert drift == {"in_sync": False, "drift": [{
        "model": "churn", "mlflow_model": "t2-churn", "what": "alias",
        "detail": f"`staging` is v1 in sluice, MLflow version {other} (no sluice version) "
                  "there"}]}
    text = sluice(project, "models", "mirror", "--check", env=up, check=1)
    assert "drift  churn: `staging` is v1 in sluice" in text.stdout
    sluice(project, "models", "mirror", env=up)
    assert mlflow_server.aliases("t2-churn") == {"staging": version["version"]}
    sluice(project, "models", "mirror", "--check", env=up)
