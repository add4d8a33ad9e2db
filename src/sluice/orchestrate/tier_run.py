"""A tier run in steps, for the platforms: ``sluice tier start`` and ``sluice tier finish``.

An exported pipeline (Argo, KFP, SageMaker, Azure ML, Databricks) runs a tier as
separate steps in separate containers. :func:`start_tier` runs in a checkout: it
plans the tier exactly as ``sluice run --tier`` does (:func:`plan_tier`), checks the
budget (:func:`enforce_budget`), stores the code snapshot and one capsule spec per
selected stage in the shared store, and writes the tier-run manifest
(:mod:`sluice.pipeline.tier_manifest`). Each stage's step then runs its capsule.
:func:`finish_tier` needs no checkout: it materialises the snapshot the manifest
names into an empty folder, settles every stage from the store's records (each
spec's upstream resolved through the pointer records, as its capsule did), and ends
the run with :func:`sluice.orchestrate.tier.conclude`, the same code that ends a
local tier run: gates, ledger, registry, report.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from sluice.errors import SluiceError, UsageError
from sluice.orchestrate.tier import Provenance, conclude
from sluice.orchestrate.tier_plan import (
    TierPlan,
    TierRequest,
    enforce_budget,
    needs_budget,
    plan_tier,
    run_context,
)
from sluice.pipeline.base import FAILED, RunResult, StageOutcome
from sluice.pipeline.plan import StagePlan
from sluice.pipeline.tier_manifest import (
    StageEntry,
    TierManifest,
    check_export_version,
    check_run_id,
    check_version,
    manifest_key,
    parse_manifest,
    put_manifest,
    read_manifest,
)
from sluice.store.base import Store
from sluice.util import identity
from sluice.workspace.project import SHARED_CACHE_ENV, STATE_DIR, Project


def _shared(project: Project) -> Store:
    from sluice.pipeline.capsule import shared_layer

    if project.shared_cache_url is None:
        raise UsageError("a tier run on a platform needs a shared store: its steps run "
                         "elsewhere and meet there",
                         hint=f"set ${SHARED_CACHE_ENV} (or `storage: cache:` in sluice.yaml) "
                              "to the store the platform's steps reach, e.g. s3://…")
    return shared_layer(project.store)


TOKEN_ENV = "SLUICE_GIT_TOKEN"
USER_ENV = "SLUICE_GIT_USER"


def clone_commit(url: str, commit: str, dest: Path) -> Path:
    """Clone ``url`` into the empty folder ``dest`` and check out ``commit`` (full history:
    `select: affected` compares with a base revision).

    For a platform that starts the run on its own schedule, with no CI checkout. The
    credential is never in the URL nor on a command line: git's own mechanism (a
    credential helper), or ``$SLUICE_GIT_TOKEN`` from the platform's secret, sent as an
    HTTP header through git's environment (user ``$SLUICE_GIT_USER``, default
    ``x-access-token``, as GitHub and GitLab accept).
    """
    import base64
    import os

    from sluice.util.credentials import reject_embedded_secrets
    from sluice.util.git import git

    reject_embedded_secrets(url, "repository URL")
    if not re.fullmatch(r"[0-9a-fA-F]{7,64}", commit):
        raise UsageError(f"--commit {commit} is not a commit hash",
                         hint="pass the full commit SHA the run is for")
    env: dict[str, str] = {"GIT_TERMINAL_PROMPT": "0"}
    token = os.environ.get(TOKEN_ENV)
    if token:
        user = os.environ.get(USER_ENV) or "x-access-token"
        basic = base64.b64encode(f"{user}:{token}".encode()).decode()
        env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="http.extraHeader",
                   GIT_CONFIG_VALUE_0=f"Authorization: Basic {basic}")
    dest.mkdir(parents=True, exist_ok=True)
    git(dest, "clone", "--quiet", "--no-checkout", "--", url, ".", env=env)
    git(dest, "checkout", "--quiet", "--detach", commit)
    return dest


def gated_stages(project: Project, selected: list[str]) -> set[str]:
    """Stages that wait for every check (as the scheduler gates them)."""
    checks = [s for s in selected if project.config.stages[s].kind == "check"]
    if not checks:
        return set()
    needed = set(project.graph.with_upstream(checks))
    return {s for s in selected if s not in needed}


def start_tier(project: Project, request: TierRequest, run_id: str, *, version: str,
               commit: str | None = None) -> tuple[TierManifest, bool]:
    """Plan the tier, push snapshot and specs, write the manifest; (manifest, existed).

    Idempotent per run id: a manifest already written for the same tier and commit is
    reported as it is (a retried step); one for another tier or commit is refused.
    """
    from sluice.pipeline.capsule import build_spec, put_pointer, put_spec
    from sluice.pipeline.capsule_run import complete

    check_run_id(run_id)
    check_export_version(version)
    head = identity.commit(project.root)
    if commit is not None and head is not None and not head.startswith(commit.lower()):
        raise UsageError(f"--commit {commit} is not the checked-out commit {head[:12]}",
                         hint=f"check it out first (`git checkout {commit}`), or leave "
                              "--commit out")
    shared = _shared(project)
    existing = shared.get_run(manifest_key(run_id))
    if existing is not None:
        found = parse_manifest(existing, run_id, list(project.config.stages))
        if found.tier != request.tier or found.commit != head:
            raise UsageError(f"run id {run_id} is taken by a run of tier `{found.tier}` at "
                             f"commit {(found.commit or 'unknown')[:12]}",
                             hint="give each platform run its own run id")
        check_version(found, version)
        return found, True
    plan = plan_tier(project, request)
    if len(plan.tier.seeds) > 1:
        raise UsageError(f"tier `{plan.tier.name}` runs {len(plan.tier.seeds)} seeds; a "
                         "platform run has one step per stage and runs one seed",
                         hint="run multi-seed tiers with `sluice run --tier` (e.g. in a "
                              "scheduled CI job), or set `seeds: 1` for the exported tier")
    skip = enforce_budget(plan, request.allow_over_budget, project)
    context = run_context(plan.tier, plan.tier.seeds[0])
    planned = {p.stage: p for p in plan.stages}
    gated = gated_stages(project, list(planned))
    stages: dict[str, StageEntry] = {}
    for name, stage in project.config.stages.items():
        row = planned.get(name)
        if row is None:
            stages[name] = StageEntry("skip", stage.kind, reason="not selected by the tier")
            continue
        if name in skip:
            stages[name] = StageEntry("budget", stage.kind, reason=(
                "not started: the estimate exceeds the budget (on_budget: skip-expensive)"))
            continue
        executor = project.config.executor_name(name, plan.tier.name)
        spec = project.config.executor_spec(executor)
        digest = put_spec(project, build_spec(
            project, name, context, run_id, decision=None,
            setup=spec.setup if spec is not None else None, executor=executor))
        fingerprint = row.fingerprint
        if row.action != "run" and fingerprint and complete(shared, shared.get_run(fingerprint)):
            put_pointer(shared, run_id, name, fingerprint)  # its downstream resolves it
            stages[name] = StageEntry("cached", stage.kind, digest, fingerprint,
                                      gated=name in gated)
        else:
            stages[name] = StageEntry("run", stage.kind, digest, gated=name in gated)
    manifest = TierManifest(
        run_id, plan.tier.name, head, identity.branch(project.root), version,
        _finish_snapshot(project, shared), stages, [p.to_json() for p in plan.stages],
        plan.tier.targets, [list(s) for s in plan.tier.samples], list(plan.tier.notes),
        list(plan.warnings), request.actor)
    put_manifest(shared, manifest)
    return manifest, False


def _finish_snapshot(project: Project, shared: Store) -> str:
    """The code `tier finish` works in: every tracked file (and the params file)."""
    from sluice.pipeline.snapshot import put_snapshot, snapshot_entries

    params = project.config.params_file
    extra = [params] if params and (project.root / params).is_file() else []
    return put_snapshot(project, shared, snapshot_entries(project, extra))


# ---------------------------------------------------------------------------- finish


def _settle(store: Store, manifest: TierManifest, project: Project, row: StagePlan,
            outcomes: dict[str, StageOutcome]) -> StageOutcome:
    """One stage's outcome from the store: its record under the fingerprint its capsule
    resolved, or why there is none (never a success without a record)."""
    from sluice.pipeline.capsule_run import complete, pointer_key, resolve_spec
    from sluice.workspace.records import write_record

    name = row.stage
    entry = manifest.stages[name]
    failed_checks = [c for c in manifest.checks if c in outcomes
                     and outcomes[c].status in FAILED]
    if entry.gated and failed_checks:
        return StageOutcome(name, "gated", f"gated by failing check `{failed_checks[0]}`")
    if entry.action == "budget":
        return StageOutcome(name, "budget", entry.reason)
    failed_up = next((u for u in project.graph.upstream[name]
                      if u in outcomes and outcomes[u].status in FAILED), None)
    if failed_up is not None:
        return StageOutcome(name, "skipped", f"upstream `{failed_up}` did not succeed")
    assert entry.spec is not None
    pointer = store.get_run(pointer_key(manifest.run_id, name))
    if pointer is None:
        return StageOutcome(name, "failed", f"its step left no result in the store: it "
                                            "failed, was lost or did not run (see the "
                                            f"platform's log of step `{name}`)")
    try:
        spec, fingerprint = resolve_spec(store, entry.spec)
    except SluiceError as exc:
        return StageOutcome(name, "failed", exc.render())
    record = store.get_run(fingerprint)
    if pointer.get("fingerprint") != fingerprint or record is None or \
            not complete(store, record):
        return StageOutcome(name, "failed", f"the store holds no complete record for its "
                                            f"fingerprint {fingerprint[:12]}", fingerprint)
    ran_on = record.get("executor") if isinstance(record.get("executor"), dict) else {}
    assert isinstance(ran_on, dict)
    wall = record.get("wall_s")
    write_record(project, name, fingerprint, spec["components"], record["outs"],
                 wall if isinstance(wall, int | float) else None)
    if record.get("run_id") != manifest.run_id:  # made by an earlier run: no ledger row
        reason = "up to date" if entry.action == "cached" else "already in the store"
        return StageOutcome(name, "cached", reason, fingerprint)
    numbers = {k: record.get(k) if isinstance(record.get(k), int | float) else None
               for k in ("wall_s", "cpu_s", "max_rss_bytes")}
    rss = numbers["max_rss_bytes"]
    return StageOutcome(name, "ran", "; ".join(row.reasons), fingerprint,
                        numbers["wall_s"], numbers["cpu_s"],
                        int(rss) if rss is not None else None, 0,
                        executor=str(ran_on.get("name", spec["executor"])))


def _tier_plan(project: Project, manifest: TierManifest) -> TierPlan:
    """The plan `tier start` made, rebuilt from the manifest (no git history needed)."""
    from sluice.pipeline.costs import rates
    from sluice.pipeline.tiers import resolve_tier

    tier = resolve_tier(project, manifest.tier)  # its params overrides, seeds, spec
    tier.targets = manifest.targets
    tier.notes = list(manifest.notes)
    tier.samples = tuple((s[0], s[1]) for s in manifest.samples)
    stages = [StagePlan(**row) for row in manifest.plan]
    plan = TierPlan(tier, stages, warnings=list(manifest.warnings))
    if plan.to_run and needs_budget(project, tier):
        plan.rates = rates(project.config.spec.prices, needs_gpu=any(
            project.config.stages[s].spec.resources.gpus for s in plan.to_run))
    return plan


def _check_database(project: Project, workdir: Path) -> None:
    """The ledger and registry must outlive the folder finish works in."""
    from sluice.db import DATABASE_ENV, configured_database, database_url

    url = database_url(project.root, configured_database(project))
    if url.startswith("sqlite:///") and Path(url.removeprefix("sqlite:///")).is_relative_to(
            workdir):
        raise UsageError(
            "`tier finish` writes the ledger and the registry, but no database is "
            "configured: the default SQLite file would be inside the folder it works in",
            hint=f"set ${DATABASE_ENV} to the team's database (PostgreSQL), the one "
                 "`sluice run` and `sluice promote` use")


def finish_tier(store: Store, run_id: str, workdir: Path, *, version: str,
                actor: str | None = None) -> tuple[Project, TierPlan, RunResult]:
    """End the platform run ``run_id`` like a local one, working in ``workdir`` (empty).

    ``store`` is the shared store the steps used; the database comes from
    ``$SLUICE_DATABASE_URL`` (or the snapshot's sluice.yaml).
    """
    from sluice.pipeline.snapshot import restore_snapshot
    from sluice.store.layered import LayeredStore
    from sluice.store.local import LocalStore
    from sluice.workspace.project import load_project

    check_run_id(run_id)
    manifest = read_manifest(store, run_id)
    check_version(manifest, version)
    if workdir.exists() and any(workdir.iterdir()):
        raise UsageError(f"the folder {workdir} is not empty",
                         hint="give `tier finish` an empty or new folder (--workdir)")
    restore_snapshot(store, manifest.snapshot, workdir)
    project = load_project(workdir)
    # The run's shared store, whatever the snapshot's sluice.yaml names.
    project.store = LayeredStore(LocalStore(workdir / STATE_DIR / "cache"), store)
    manifest = parse_manifest(store.get_run(manifest_key(run_id)), run_id,
                              list(project.config.stages))
    _check_database(project, workdir)
    plan = _tier_plan(project, manifest)
    outcomes: dict[str, StageOutcome] = {}
    # Checks (and what they read) first, as the scheduler runs them: the rest is gated.
    for row in sorted(plan.stages, key=lambda r: manifest.stages[r.stage].gated):
        outcomes[row.stage] = _settle(store, manifest, project, row, outcomes)
    result = RunResult(run_id, [outcomes[r.stage] for r in plan.stages],
                       max(time.time() - manifest.created, 0.0))
    conclude(project, plan, result, manifest.created, actor or manifest.actor,
             Provenance(manifest.commit, manifest.branch))
    return project, plan, result
