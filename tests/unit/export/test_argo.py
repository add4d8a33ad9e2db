"""`sluice export argo`: a Workflow built with hera, parsed back and checked structurally."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from sluice.export.generate import generate
from sluice.workspace.project import Project
from tests.unit.export.conftest import IMAGE

pytest.importorskip("hera")


def _workflow(project: Project, tier: str = "merge") -> dict[str, Any]:
    text = generate(project, "argo", tier, IMAGE)
    from hera.workflows import Workflow
    from hera.workflows.models import Workflow as WorkflowModel

    # Both hera's own loader and Argo's Workflow model (pydantic) accept it.
    Workflow.from_yaml(text)
    data = yaml.safe_load(text)
    WorkflowModel.model_validate(data)
    assert isinstance(data, dict)
    return data


def test_dag_edges_finish_on_exit_and_deadlines(project: Project) -> None:
    data = _workflow(project)
    spec = data["spec"]
    templates = {t["name"]: t for t in spec["templates"]}
    tasks = {t["name"]: t.get("dependencies", []) for t in templates["tier"]["dag"]["tasks"]}

    def argo(name: str) -> str:  # Argo's names have no `_`
        return name.replace("_", "-")

    assert list(tasks) == ["tier-start", *map(argo, project.graph.order)]
    for name in project.graph.order:
        deps = tasks[argo(name)]
        assert "tier-start" in deps
        assert {argo(u) for u in project.graph.upstream[name]} <= set(deps)
        assert templates[argo(name)]["container"]["command"][-1] == name
    for expensive in ("train-churn", "train-baseline", "evaluate-churn", "evaluate-baseline"):
        assert {"unit", "validate-regions"} <= set(tasks[expensive])
    # tier-finish runs whatever happened: the exit handler, not a task of the DAG.
    assert spec["onExit"] == "tier-finish" and "tier-finish" not in tasks
    finish = templates["tier-finish"]["container"]["command"]
    assert finish == ["sluice", "tier", "finish", "--run-id", "{{workflow.name}}", "--json"]
    assert spec["activeDeadlineSeconds"] == 3600 + 1800  # wall budget + the finish step
    assert templates["train-churn"]["activeDeadlineSeconds"] == 600
    assert spec["arguments"]["parameters"] == [{"name": "commit"}]  # required
    start = templates["tier-start"]["container"]["command"]
    assert start[start.index("--commit") + 1] == "{{workflow.parameters.commit}}"
    assert start[start.index("--run-id") + 1] == "{{workflow.name}}"


def test_resources_secrets_by_reference_and_no_hash(project: Project) -> None:
    data = _workflow(project)
    spec = data["spec"]
    assert spec["serviceAccountName"] == "sluice-runner"
    train = next(t for t in spec["templates"] if t["name"] == "train-churn")
    container = train["container"]
    assert container["image"] == IMAGE
    assert container["resources"]["requests"] == {"cpu": "2", "memory": "1908Mi",
                                                  "nvidia.com/gpu": "1"}
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert train["nodeSelector"] == {"pool": "ml", "nvidia.com/gpu.product": "nvidia-tesla-a100"}
    assert train["retryStrategy"] == {"limit": 3, "retryPolicy": "OnError"}
    env = {e["name"]: e for e in container["env"]}
    assert env["SLUICE_DATABASE_URL"]["valueFrom"] == {
        "secretKeyRef": {"name": "sluice-db", "key": "url"}}
    assert "value" not in env["SLUICE_DATABASE_URL"]
    assert env["SLUICE_CACHE_URL"]["value"] == "s3://team-cache/sluice"
    assert env["SLUICE_EXPORT_VERSION"]["value"] == data["metadata"]["annotations"][
        "sluice.dev/version"]
    text = yaml.safe_dump(data)
    # The only 64-hex string is the image digest given: no content hash, no commit.
    import re

    assert set(re.findall(r"[0-9a-f]{40,}", text)) == {"ab" * 32}


def test_valid_against_argos_published_workflow_schema(project: Project, tmp_path: Path) -> None:
    """The Workflow JSON schema of Argo's API, from the npm package
    ``@kubernetes-models/argo-workflows`` (validated by its own ajv validator).

    Install it with ``npm install --prefix DIR @kubernetes-models/argo-workflows@2`` and
    set ``SLUICE_ARGO_MODELS=DIR``; skipped, saying so, without it.
    """
    models = os.environ.get("SLUICE_ARGO_MODELS")
    workflow_js = Path(models or "-") / "node_modules" / "@kubernetes-models" / \
        "argo-workflows" / "argoproj.io" / "v1alpha1" / "Workflow.js"
    if shutil.which("node") is None or not workflow_js.is_file():
        pytest.skip("set SLUICE_ARGO_MODELS to a folder with npm's "
                    "@kubernetes-models/argo-workflows installed (and node on PATH)")
    data = _workflow(project)
    document = tmp_path / "workflow.json"
    document.write_text(json.dumps(data))
    script = tmp_path / "validate.mjs"
    script.write_text(VALIDATE)
    ok = subprocess.run(["node", str(script), workflow_js.as_uri(), str(document)],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    # The schema is not a formality: an invalid name is refused.
    data["spec"]["templates"][0]["name"] = "train_churn"
    document.write_text(json.dumps(data))
    bad = subprocess.run(["node", str(script), workflow_js.as_uri(), str(document)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "must match pattern" in bad.stderr


VALIDATE = """\
import { readFileSync } from "node:fs";
const { Workflow } = await import(process.argv[2]);
const data = JSON.parse(readFileSync(process.argv[3], "utf8"));
try { new Workflow(data).validate(); }
catch (error) { console.error(String(error.message || error)); process.exit(1); }
"""
