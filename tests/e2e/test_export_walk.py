"""The exported DAG really runs: walk an Argo workflow and a compiled KFP spec on the host.

A small project (a check, a train and an evaluate stage with a gate against the staging
baseline) is exported; the walk runs every step's container command on this machine in
the definition's dependency order (the same arguments and environment variables, no
container): ``tier start`` in the submitting job's checkout, each stage step in a fresh
empty folder, the exit handler last, against a moto S3 store and a PostgreSQL server
the test starts. The ledger, verdicts and registry end the same as ``sluice run --tier
merge`` run locally on the same commit; a second walk with nothing changed runs no
stage command.

Needs ``sluice tier`` (docs/tier-run.md); skipped where it is not there.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import git, sluice

pytest_plugins = ["tests.s3", "tests.postgres"]
IMAGE = "ghcr.io/acme/walk@sha256:" + "0f" * 32
SECRET = "sluice-db/url"  # the Kubernetes secret the export names for the database URL

if importlib.util.find_spec("sluice.cli.tier_cmd") is None:
    pytest.skip("`sluice tier` is not in this tree", allow_module_level=True)


def _project(repo: Path, tmp_path: Path) -> Path:
    """The project, and a clone at the same commit where the platform's steps start."""
    from tests.e2e.pipelines import write_project
    from tests.e2e.test_tier_remote import CONFIG, FILES

    write_project(repo, CONFIG + f"export:\n  secrets: {{SLUICE_DATABASE_URL: {SECRET}}}\n",
                  files=FILES)
    clone = tmp_path / "platform"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    return clone


def _argo_steps(text: str, run_id: str, commit: str) -> list[tuple[str, list[str], dict[str, str],
                                                                   list[str]]]:
    """(name, argv, plain env, secret refs) of every step, in a dependency order."""
    spec = yaml.safe_load(text)["spec"]
    templates = {t["name"]: t for t in spec["templates"]}
    dag = next(t for t in spec["templates"] if t["name"] == spec["entrypoint"])["dag"]
    deps = {t["name"]: t.get("dependencies", []) for t in dag["tasks"]}
    subs = {"{{workflow.name}}": run_id, "{{workflow.parameters.commit}}": commit}

    def step(name: str) -> tuple[str, list[str], dict[str, str], list[str]]:
        container = templates[name]["container"]
        argv = [subs.get(a, a) for a in container["command"]]
        env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
        refs = [f"{e['valueFrom']['secretKeyRef']['name']}/{e['valueFrom']['secretKeyRef']['key']}"
                for e in container.get("env", []) if "valueFrom" in e]
        return name, argv, env, refs

    return [step(n) for n in _order(deps)] + [step(spec["onExit"])]


def _kfp_steps(text: str, run_id: str, commit: str) -> list[tuple[str, list[str],
                                                                  dict[str, str], list[str]]]:
    pipeline, platform = yaml.safe_load_all(text)
    executors = pipeline["deploymentSpec"]["executors"]
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    inner = pipeline["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    deps = {k: v.get("dependentTasks", []) for k, v in inner.items()}
    values = {"run_id": run_id, "commit": commit}

    def step(task: dict[str, Any]) -> tuple[str, list[str], dict[str, str], list[str]]:
        label = pipeline["components"][task["componentRef"]["name"]]["executorLabel"]
        container = executors[label]["container"]
        argv = [re.sub(r"\{\{\$\.inputs\.parameters\['(\w+)'\]\}\}",
                       lambda m: values[m.group(1)], a) for a in container["command"]]
        env = {e["name"]: e["value"] for e in container.get("env", [])}
        refs = [f"{s['secretName']}/{k['secretKey']}" for s in k8s[label].get("secretAsEnv", [])
                for k in s["keyToEnv"]]
        return task["taskInfo"]["name"], argv, env, refs

    finish = pipeline["root"]["dag"]["tasks"]["tier-finish"]
    return [step(inner[n]) for n in _order(deps)] + [step(finish)]


def _order(deps: dict[str, list[str]]) -> list[str]:
    done: list[str] = []
    while len(done) < len(deps):
        ready = [n for n in deps if n not in done and set(deps[n]) <= set(done)]
        assert ready, f"a cycle in {deps}"
        done += ready[:1]
    return done


def _walk(steps: list[tuple[str, list[str], dict[str, str], list[str]]], checkout: Path,
          tmp_path: Path, secrets: dict[str, str], tag: str) -> dict[str, dict[str, Any]]:
    """Run each step's command as the platform would; the JSON line of each stage step."""
    lines: dict[str, dict[str, Any]] = {}
    for name, argv, env, refs in steps:
        assert argv[0] == "sluice"
        full = {**env, **{variable: secrets[ref] for variable, ref in
                          zip(["SLUICE_DATABASE_URL"], refs, strict=True)},
                "SLUICE_CAPSULE_CACHE": str(tmp_path / "worker-cache")}
        if name == "tier-start":  # the submitting CI job's checkout
            folder = checkout
        else:
            folder = tmp_path / f"{tag}-{name}"
            folder.mkdir()
        done = sluice(folder, *argv[1:], env=full, check=None)
        assert done.returncode == 0, f"{name}: {argv}\n{done.stdout}\n{done.stderr}"
        if argv[1:3] == ["stage", "exec"]:
            lines[name] = json.loads(done.stdout.splitlines()[-1])
    return lines


@pytest.mark.parametrize("platform", ["argo", "kfp"])
def test_the_exported_dag_runs_like_a_local_tier_run(repo: Path, tmp_path: Path, s3: Any,
                                                     fresh_postgres_db: str,
                                                     platform: str) -> None:
    pytest.importorskip({"argo": "hera", "kfp": "kfp"}[platform])
    from tests.e2e.test_tier_remote import ORDER, _db, _new_commit, _state

    clone = _project(repo, tmp_path)
    here = {"SLUICE_CACHE_URL": s3.url("local"), "SLUICE_DATABASE_URL": _db(tmp_path, "local")}
    sluice(repo, "run", "--tier", "merge", env=here)
    build = _argo_steps if platform == "argo" else _kfp_steps
    # The platform's steps share a PostgreSQL server, as a team's would.
    secrets = {SECRET: fresh_postgres_db}
    store = {"SLUICE_CACHE_URL": s3.url("platform")}

    def walk(run_id: str) -> dict[str, dict[str, Any]]:
        text = sluice(clone, "export", platform, "--tier", "merge", "--image", IMAGE).stdout
        commit = git(clone, "rev-parse", "HEAD").strip()
        steps = [(n, a, {**e, **store}, r) for n, a, e, r in build(text, run_id, commit)]
        assert [s[0] for s in steps] == ["tier-start", *ORDER, "tier-finish"]
        return _walk(steps, clone, tmp_path, secrets, run_id)

    first = walk("walk-1")
    assert [first[s]["ran"] for s in ORDER] == [True, True, True]
    assert _state(here["SLUICE_DATABASE_URL"]) == _state(secrets[SECRET])
    # A new commit with a gate against the staging baseline: the same verdicts, versions
    # and aliases on both sides.
    _new_commit((repo, clone), 0.31, "      - {metric: roc_auc, max_regression: 0.05}\n")
    sluice(repo, "run", "--tier", "merge", env=here)
    second = walk("walk-2")
    assert second["train"]["ran"] is True
    state = _state(secrets[SECRET])
    assert state == _state(here["SLUICE_DATABASE_URL"])
    assert any(g[2] == "max_regression 0.05" and g[3] == "PASS" for g in state["gates"])
    assert state["aliases"] == [("churn", "staging", 2)]
    # Nothing changed: another run of the exported pipeline runs no stage command.
    third = walk("walk-3")
    assert not any(third[s]["ran"] for s in ORDER), third
