"""End-to-end: a tier run in platform steps ends exactly like `sluice run --tier`.

`sluice tier start` in a checkout, then each stage's `sluice stage exec --run ID
--stage NAME` in its own fresh empty folder (as a platform step would, in DAG order),
then `sluice tier finish` in another empty folder, against a moto S3 store: the same
stages, verdicts, ledger rows and registry versions and aliases as a local run of the
same tier on the same commit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git, sluice
from tests.e2e.pipelines import GATED_TO_STAGING, MODEL_PIPELINE, PREDICT, write_project

pytest_plugins = ["tests.s3"]

CONFIG = MODEL_PIPELINE.replace("stages:\n", """\
stages:
  unit:
    kind: check
    cmd: python3 check.py
    deps: [check.py]
""", 1) + "    baseline: {alias: staging}\n" + GATED_TO_STAGING
ORDER = ["unit", "train", "evaluate"]  # the DAG: unit gates train → evaluate
FILES = {"predict.py": PREDICT, "params.yaml": "quality: 0.3\nrows: 400\n",
         "check.py": "import sys\nsys.exit(0)\n"}


def _db(tmp_path: Path, name: str) -> str:
    return f"sqlite:///{tmp_path / name}.db"


def _platform_run(tmp_path: Path, repo: Path, env: dict[str, str], run_id: str, *,
                  codes: dict[str, int] | None = None, finish: int = 0
                  ) -> dict[str, Any]:
    """start in the checkout; each step in a new empty folder; finish in another."""
    start = sluice(repo, "tier", "start", "--tier", "merge", "--run-id", run_id, "--json",
                   env=env)
    manifest = json.loads(start.stdout)
    for stage in ORDER:
        folder = tmp_path / f"step-{run_id}-{stage}"
        folder.mkdir()
        done = sluice(folder, "stage", "exec", "--run", run_id, "--stage", stage,
                      "--cache-dir", str(tmp_path / "worker-cache"), env=env,
                      check=(codes or {}).get(stage, 0))
        assert not any(folder.iterdir()), "a step leaves its folder as it found it"
        line = json.loads(done.stdout.splitlines()[-1])
        assert line["stage"] == stage
    folder = tmp_path / f"finish-{run_id}"
    folder.mkdir()
    done = sluice(folder, "tier", "finish", "--run-id", run_id, "--json",
                  "--report-dir", str(folder / "report"), env=env, check=finish)
    assert (folder / "report" / "report.json").is_file()
    return {"manifest": manifest, "result": json.loads(done.stdout)}


def _state(db_url: str) -> dict[str, Any]:
    """The ledger and registry, without what differs between any two runs (times, ids);
    from SQLite or PostgreSQL alike."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        def rows(query: str) -> list[tuple[Any, ...]]:
            return sorted((tuple(r) for r in conn.execute(text(query))), key=repr)

        versions = []
        for model, version, verdict, artifact, predictions, lineage, metrics in rows(
                "SELECT model, version, verdict, artifact_hash, predictions_hash, lineage, "
                "metrics FROM model_versions"):
            line = json.loads(lineage)
            versions.append((model, version, verdict, artifact, predictions,
                             line["commit"], line["branch"], line["tier"],
                             json.dumps(line["fingerprints"], sort_keys=True),
                             json.dumps(line["params"], sort_keys=True), metrics))
        return {
            "runs": rows("SELECT tier, outcome, git_commit, branch, actor FROM runs"),
            "executions": rows("SELECT stage, kind, tier, fingerprint, outcome, fraction, "
                               "seed, git_commit, actor FROM executions"),
            "gates": rows("SELECT model, metric, rule, verdict, point, candidate, baseline "
                          "FROM gate_results"),
            "versions": versions,
            "aliases": rows("SELECT model, alias, version FROM aliases"),
            "events": rows("SELECT model, alias, from_version, to_version, kind, actor "
                           "FROM alias_events"),
        }


@pytest.fixture
def checkouts(repo: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The project, and a clone at the same commit (each side gets its own state)."""
    write_project(repo, CONFIG, files=FILES)
    clone = tmp_path / "platform"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    for key, value in (("user.email", "test@example.com"), ("user.name", "Test"),
                       ("commit.gpgsign", "false")):
        git(clone, "config", key, value)
    return repo, clone


def _new_commit(repos: tuple[Path, Path], quality: float, gates: str = "") -> None:
    """A commit in the project, pulled into the clone: both at the same commit."""
    repo = repos[0]
    (repo / "params.yaml").write_text(f"quality: {quality}\nrows: 400\n")
    if gates:
        config = (repo / "sluice.yaml").read_text()
        rule = "      - {metric: roc_auc, min: 0.6}\n"
        (repo / "sluice.yaml").write_text(config.replace(rule, rule + gates))
    git(repo, "commit", "-qam", f"quality {quality}")
    git(repos[1], "pull", "-q", "--ff-only")
    assert git(repo, "rev-parse", "HEAD") == git(repos[1], "rev-parse", "HEAD")


def test_platform_steps_end_like_a_local_tier_run(checkouts: tuple[Path, Path],
                                                   tmp_path: Path, s3: Any) -> None:
    local, platform = checkouts
    here = {"SLUICE_CACHE_URL": s3.url("local"), "SLUICE_DATABASE_URL": _db(tmp_path, "local")}
    there = {"SLUICE_CACHE_URL": s3.url("platform"),
             "SLUICE_DATABASE_URL": _db(tmp_path, "platform")}
    # Round 1: no baseline yet; the absolute gate passes, version 1 goes to staging.
    sluice(local, "run", "--tier", "merge", env=here)
    first = _platform_run(tmp_path, platform, there, "argo-run-1")
    assert {s: e["action"] for s, e in first["manifest"]["stages"].items()} == \
        dict.fromkeys(ORDER, "run")
    assert [(s["stage"], s["status"]) for s in first["result"]["stages"]] == \
        [(s, "ran") for s in ORDER]
    assert _state(here["SLUICE_DATABASE_URL"]) == _state(there["SLUICE_DATABASE_URL"])
    assert _state(there["SLUICE_DATABASE_URL"])["aliases"] == [("churn", "staging", 1)]
    # Round 2: a new commit, and a gate against the staging baseline (read from the store).
    _new_commit(checkouts, 0.31, "      - {metric: roc_auc, max_regression: 0.05}\n")
    sluice(local, "run", "--tier", "merge", env=here)
    second = _platform_run(tmp_path, platform, there, "argo-run-2")
    assert second["manifest"]["stages"]["unit"]["action"] == "cached"
    state = _state(there["SLUICE_DATABASE_URL"])
    assert state == _state(here["SLUICE_DATABASE_URL"])
    assert [v[:3] for v in state["versions"]] == [("churn", 1, "PASS"), ("churn", 2, "PASS")]
    assert state["aliases"] == [("churn", "staging", 2)]
    assert any(g[2] == "max_regression 0.05" and g[3] == "PASS" for g in state["gates"])
    # A retried start reports the manifest it wrote; a retried step finds its result.
    again = sluice(platform, "tier", "start", "--tier", "merge", "--run-id", "argo-run-2",
                   "--json", env=there)
    assert json.loads(again.stdout)["existed"] is True
    folder = tmp_path / "retry"
    folder.mkdir()
    retry = sluice(folder, "stage", "exec", "--run", "argo-run-2", "--stage", "train",
                   "--cache-dir", str(tmp_path / "worker-cache"), env=there)
    assert json.loads(retry.stdout)["cached"] is True


def test_a_failed_step_is_reported_by_finish(checkouts: tuple[Path, Path],
                                             tmp_path: Path, s3: Any) -> None:
    _, platform = checkouts
    (platform / "check.py").write_text("import sys\nsys.exit(3)\n")
    git(platform, "commit", "-qam", "a failing check")
    env = {"SLUICE_CACHE_URL": s3.url(), "SLUICE_DATABASE_URL": _db(tmp_path, "db")}
    # The check fails; train (expensive) is gated even if the platform starts it, and
    # evaluate's step (had the platform run it) finds no upstream result: exit 2.
    run = _platform_run(tmp_path, platform, env, "run-1",
                        codes={"unit": 1, "train": 1, "evaluate": 1}, finish=1)
    stages = {s["stage"]: s for s in run["result"]["stages"]}
    assert stages["unit"]["status"] == "failed"
    assert "left no result in the store" in stages["unit"]["reason"]
    assert stages["train"]["status"] == "gated"
    assert stages["evaluate"]["status"] == "gated"
    state = _state(env["SLUICE_DATABASE_URL"])
    assert state["versions"] == [] and state["aliases"] == []


def test_unselected_and_cached_steps_end_at_once(repo: Path, tmp_path: Path) -> None:
    config = CONFIG.replace("merge: {select: all,", "merge: {select: [unit],")
    write_project(repo, config, files=FILES)
    env = {"SLUICE_CACHE_URL": (tmp_path / "store").as_uri(),
           "SLUICE_DATABASE_URL": _db(tmp_path, "db")}
    sluice(repo, "tier", "start", "--tier", "merge", "--run-id", "r1", env=env)
    folder = tmp_path / "step"
    folder.mkdir()
    line = json.loads(sluice(folder, "stage", "exec", "--run", "r1", "--stage", "train",
                             env=env).stdout)
    assert line == {"action": "skip", "fingerprint": None, "ok": True, "ran": False,
                    "reason": "not selected by the tier", "run_id": "r1", "stage": "train"}
    sluice(folder, "stage", "exec", "--run", "r1", "--stage", "unit", env=env)
    sluice(repo, "tier", "start", "--tier", "merge", "--run-id", "r2", env=env)
    line = json.loads(sluice(folder, "stage", "exec", "--run", "r2", "--stage", "unit",
                             env=env).stdout)
    assert (line["action"], line["ran"]) == ("cached", False)
    # A platform's own schedule: no checkout, the step clones the commit.
    sha = git(repo, "rev-parse", "HEAD").strip()
    cloned = sluice(folder, "tier", "start", "--tier", "merge", "--run-id", "r3", "--json",
                    "--clone", repo.as_uri(), "--commit", sha,
                    env={**env, "SLUICE_GIT_TOKEN": "not-needed-for-a-local-repo"})
    assert json.loads(cloned.stdout)["commit"] == sha
    assert json.loads(cloned.stdout)["stages"]["unit"]["action"] == "cached"
    assert not any(folder.iterdir())
    # The same run id for another commit is refused.
    (repo / "check.py").write_text("print('changed')\n")
    git(repo, "commit", "-qam", "change")
    taken = sluice(repo, "tier", "start", "--tier", "merge", "--run-id", "r2", env=env,
                   check=2)
    assert "run id r2 is taken" in taken.stderr


def test_bad_run_id_damaged_manifest_and_other_version(repo: Path, tmp_path: Path) -> None:
    write_project(repo, CONFIG, files=FILES)
    store = tmp_path / "store"
    env = {"SLUICE_CACHE_URL": store.as_uri(), "SLUICE_DATABASE_URL": _db(tmp_path, "db")}
    folder = tmp_path / "step"
    folder.mkdir()
    bad = sluice(folder, "stage", "exec", "--run", "../x", "--stage", "unit", env=env,
                 check=2)
    assert "not a valid run id" in bad.stderr and "Traceback" not in bad.stderr
    missing = sluice(folder, "tier", "finish", "--run-id", "nope", env=env, check=2)
    assert "holds no tier run nope" in missing.stderr
    sluice(repo, "tier", "start", "--tier", "merge", "--run-id", "r1", env=env)
    from sluice.pipeline.tier_manifest import manifest_key
    from sluice.store.local import LocalStore

    shared = LocalStore(store)
    good = shared.get_run(manifest_key("r1"))
    assert good is not None
    shared.put_run(manifest_key("r1"), {**good, "version": "0.0.1"})
    other = sluice(folder, "stage", "exec", "--run", "r1", "--stage", "unit", env=env,
                   check=2)
    assert "started by sluice 0.0.1" in other.stderr
    shared.put_run(manifest_key("r1"), {**good, "stages": {**good["stages"],
                                                           "unit": {"action": "run"}}})
    damaged = sluice(folder, "tier", "finish", "--run-id", "r1", env=env, check=2)
    assert "malformed entry for stage `unit`" in damaged.stderr
    shared.put_run(manifest_key("r1"), {**good, "stages": {**good["stages"],
                                                           "../evil": good["stages"]["unit"]}})
    evil = sluice(folder, "tier", "finish", "--run-id", "r1", env=env, check=2)
    assert "names a stage `../evil` that sluice.yaml does not have" in evil.stderr


def test_a_tier_that_selects_nothing_ends_cleanly(repo: Path, tmp_path: Path) -> None:
    write_project(repo, CONFIG.replace("merge: {select: all,", "merge: {select: affected,"),
                  files=FILES)
    env = {"SLUICE_CACHE_URL": (tmp_path / "store").as_uri(),
           "SLUICE_DATABASE_URL": _db(tmp_path, "db")}
    started = sluice(repo, "tier", "start", "--tier", "merge", "--run-id", "r1", "--base",
                     "HEAD", "--json", env=env)
    assert {e["action"] for e in json.loads(started.stdout)["stages"].values()} == {"skip"}
    folder = tmp_path / "finish"
    folder.mkdir()
    nowhere = sluice(folder, "tier", "finish", "--run-id", "r1", env={
        **env, "SLUICE_DATABASE_URL": ""}, check=2)
    assert "no database is configured" in nowhere.stderr
    done = sluice(folder, "tier", "finish", "--run-id", "r1", "--json", env=env)
    assert json.loads(done.stdout)["stages"] == []
