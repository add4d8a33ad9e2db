"""Mirroring the registry to an MLflow model registry (`mirror: mlflow:` in sluice.yaml).

sluice's registry stays the source of truth; MLflow gets a copy that serving tools can
read (``models:/churn@production``). After every registration and every alias move is
committed (:meth:`sluice.db.Database.registry_changed`), the model is synced: a
registered model of the same name (after an optional prefix), one MLflow version per
sluice version, holding the artifact (uploaded from the store into a run of the
mirror's experiment) and tags with its lineage and gate verdicts, and MLflow's aliases
set and removed to equal sluice's.

Syncing is idempotent: an MLflow version carries the tag ``sluice.version``, by which
the next sync finds it again, so a second sync only reads. A sync that fails (the
server is down) never fails the registration or promotion: it is recorded in the audit
log as pending (``mirror-pending``), and ``sluice models mirror`` catches up.
``sluice models mirror --check`` lists the drift between the two registries.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice.errors import SluiceError, UsageError
from sluice.registry.mlflow_client import MlflowClient, tag_dict, tracking_uri
from sluice.registry.versions import Version, _audit, list_models, versions
from sluice.util.credentials import mask

if TYPE_CHECKING:
    from sluice.config.schema import MlflowMirrorSpec
    from sluice.db import Database
    from sluice.workspace.project import Project

VERSION_TAG = "sluice.version"
PENDING, SYNCED = "mirror-pending", "mirror-synced"
_RETRY_AFTER_S = 60.0  # after a failed sync, how long later changes skip the server
_MAX_TAG_VALUE = 5000  # MLflow's limit on a model version tag's value
_KEY_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./ ")


def _key(key: str) -> str:
    """A tag key MLflow accepts (letters, digits, ``_-./`` and spaces)."""
    return "".join(c if c in _KEY_OK else "_" for c in key)[:250]


def version_tags(version: Version) -> dict[str, str]:
    """The MLflow tags of a mirrored version: its identity, lineage, metrics and verdicts."""
    lineage = version.lineage
    found: dict[str, Any] = {
        "sluice.model": version.model, VERSION_TAG: version.version,
        "sluice.artifact_hash": version.artifact_hash,
        "sluice.artifact_path": version.artifact_path,
        "sluice.verdict": version.verdict or "none", "sluice.creator": version.creator,
        "sluice.commit": lineage.get("commit"), "sluice.branch": lineage.get("branch"),
        "sluice.tier": lineage.get("tier"), "sluice.run_id": lineage.get("run_id"),
        "sluice.predictions_hash": version.predictions_hash,
    }
    for stage, fingerprint in sorted((lineage.get("fingerprints") or {}).items()):
        found[f"sluice.fingerprint.{stage}"] = fingerprint
    for path, entry in sorted((lineage.get("data") or {}).items()):
        found[f"sluice.data.{path}"] = (entry or {}).get("hash")
    for name, value in sorted(version.metrics.items()):
        found[f"sluice.metric.{name}"] = f"{value:.6g}" if isinstance(value, float) else value
    for gate in version.gates:
        where = f".{gate['slice']}" if gate.get("slice") else ""
        found[f"sluice.gate.{gate['metric']}{where} {gate['rule']}"] = gate["verdict"]
    return {_key(k): str(v)[:_MAX_TAG_VALUE] for k, v in found.items() if v is not None}


@dataclass
class Mirror:
    """One project's MLflow mirror; the client connects on first use."""

    project: Project
    spec: MlflowMirrorSpec
    _client: MlflowClient | None = field(default=None, repr=False)

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = MlflowClient.connect(tracking_uri(self.spec.tracking_uri),
                                                self.spec.retries, self.spec.timeout)
        return self._client

    @property
    def where(self) -> str:
        """The server, for messages (credentials masked)."""
        try:
            return mask(tracking_uri(self.spec.tracking_uri))
        except SluiceError:
            return "(no tracking server)"

    def name(self, model: str) -> str:
        return self.spec.prefix + model

    def _mirrored(self, name: str) -> dict[int, dict[str, Any]]:
        """MLflow's versions of ``name`` by the sluice version they mirror."""
        found: dict[int, dict[str, Any]] = {}
        for entry in self.client.versions(name):
            number = tag_dict(entry).get(VERSION_TAG, "")
            if number.isdigit():
                found.setdefault(int(number), entry)
        return found

    def sync(self, db: Database, model: str) -> list[str]:
        """Make MLflow's copy of ``model`` equal sluice's; what was done (empty: nothing)."""
        name, done = self.name(model), []
        registered = self.client.registered_model(name)
        if registered is None:
            self.client.create_registered_model(name, {"sluice.model": model,
                                                       "sluice.managed": "true"})
            done.append(f"created registered model `{name}`")
            registered = {}
        mirrored = self._mirrored(name)
        for version in versions(db, model):
            wanted = version_tags(version)
            entry = mirrored.get(version.version)
            if entry is None:
                entry = mirrored[version.version] = self._create(name, version, wanted)
                done.append(f"v{version.version} → MLflow version {entry['version']}")
                continue
            stale = {k: v for k, v in wanted.items() if tag_dict(entry).get(k) != v}
            for key, value in stale.items():
                self.client.set_version_tag(name, entry["version"], key, value)
            if stale:
                done.append(f"v{version.version}: {len(stale)} tag(s) updated")
        held = _held(db, model)
        theirs = {a["alias"]: str(a["version"]) for a in registered.get("aliases", [])}
        for alias, number in sorted(held.items()):
            target = str(mirrored[number]["version"])
            if theirs.get(alias) != target:
                self.client.set_alias(name, alias, target)
                done.append(f"`{alias}` → v{number} (MLflow version {target})")
        for alias in sorted(set(theirs) - set(held)):
            self.client.delete_alias(name, alias)
            done.append(f"`{alias}` removed (sluice has no such alias)")
        return done

    def _create(self, name: str, version: Version, values: dict[str, str]) -> dict[str, Any]:
        """An MLflow version holding the artifact, in a run found again after a failure."""
        client = self.client
        experiment = client.experiment_id(self.spec.experiment)
        ref = f"{name}:{version.version}"
        run = client.find_run(experiment, "sluice.ref", ref)
        if run is None:
            now = int(time.time() * 1000)
            run = client.create_run(experiment, f"{version.model}-v{version.version}",
                                    {**values, "sluice.ref": ref}, now)
            self._upload(run["info"]["artifact_uri"], version)
            # FINISHED marks the upload complete: only such a run is reused.
            client.finish_run(run["info"]["run_id"], "FINISHED", int(time.time() * 1000))
        info = run["info"]
        commit = str(version.lineage.get("commit") or "")[:10]
        return client.create_version(
            name, f"{info['artifact_uri']}/model", info["run_id"], values,
            f"sluice {version.model} version {version.version} "
            f"({version.verdict or 'no gates'}) from commit {commit or '?'}")

    def _upload(self, artifact_uri: str, version: Version) -> None:
        from sluice.registry.pull import pull_artifact

        self.project.state_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.project.state_dir,
                                         prefix="mirror-") as scratch:
            dest = Path(scratch) / Path(version.artifact_path).name
            pull_artifact(self.project.store, version.artifact_hash, dest)
            files = [dest] if dest.is_file() else sorted(p for p in dest.rglob("*")
                                                         if p.is_file())
            for path in files:
                rel = path.relative_to(scratch).as_posix()
                self.client.upload(artifact_uri, f"model/{rel}", path)

    def check(self, db: Database, model: str) -> list[dict[str, Any]]:
        """Where MLflow's copy of ``model`` differs from sluice's (empty: in sync)."""
        name = self.name(model)

        def drift(what: str, detail: str) -> dict[str, Any]:
            return {"model": model, "mlflow_model": name, "what": what, "detail": detail}

        registered = self.client.registered_model(name)
        if registered is None:
            return [drift("model", f"`{name}` is not in MLflow")]
        mirrored = self._mirrored(name)
        found = []
        for version in versions(db, model):
            entry = mirrored.get(version.version)
            if entry is None:
                found.append(drift("version", f"v{version.version} is not in MLflow"))
                continue
            stale = sorted(k for k, v in version_tags(version).items()
                           if tag_dict(entry).get(k) != v)
            if stale:
                found.append(drift("tags", f"v{version.version} (MLflow version "
                                           f"{entry['version']}): {', '.join(stale)} differ"))
        sluice_of = {str(e["version"]): n for n, e in mirrored.items()}
        held = _held(db, model)
        theirs = {a["alias"]: str(a["version"]) for a in registered.get("aliases", [])}
        for alias in sorted(set(held) | set(theirs)):
            ours, their = held.get(alias), theirs.get(alias)
            if their is None:
                found.append(drift("alias", f"`{alias}` is v{ours} in sluice, "
                                            "missing in MLflow"))
            elif ours is None:
                found.append(drift("alias", f"`{alias}` is MLflow version {their} there, "
                                            "but no alias in sluice"))
            elif sluice_of.get(their) != ours:
                mirrors = sluice_of.get(their)
                what = f"v{mirrors}" if mirrors is not None else "no sluice version"
                found.append(drift("alias", f"`{alias}` is v{ours} in sluice, MLflow version "
                                            f"{their} ({what}) there"))
        return found


def _held(db: Database, model: str) -> dict[str, int]:
    for item in list_models(db):
        if item["model"] == model:
            return dict(item["aliases"])
    return {}


def configured(project: Project) -> Mirror | None:
    spec = project.config.spec.mirror.mlflow
    return Mirror(project, spec) if spec is not None else None


def required(project: Project) -> Mirror:
    mirror = configured(project)
    if mirror is None:
        raise UsageError("sluice.yaml configures no mirror",
                         hint="add `mirror: {mlflow: {tracking_uri: http://host:5000}}` "
                              "(docs/mlflow.md)")
    return mirror


@dataclass
class _AfterChange:
    """The hook run after each registry change: sync, and on failure record it as pending."""

    mirror: Mirror
    db: Database
    notices: list[str] = field(default_factory=list)
    failed_at: float | None = None

    def __call__(self, model: str) -> None:
        # Once the server failed, changes in the next minute only wait for catch-up: a
        # command moving many aliases pays the retries once (the dashboard tries again).
        if self.failed_at is None or time.monotonic() - self.failed_at > _RETRY_AFTER_S:
            try:
                self.mirror.sync(self.db, model)
                return
            except Exception as exc:  # a mirror never fails a registration
                self.failed_at = time.monotonic()
                reason = mask(exc.message if isinstance(exc, SluiceError)
                              else f"{type(exc).__name__}: {exc}")
                self.notices.append(f"MLflow mirror of `{model}` pending ({reason}); "
                                    "`sluice models mirror` catches up")
        else:
            reason = "the server failed moments ago; not tried"
        _record(self.db, model, PENDING, {"to": self.mirror.where, "error": reason})


def _record(db: Database, model: str, action: str, details: dict[str, Any]) -> None:
    try:
        with db.engine.begin() as conn:
            _audit(conn, "sluice", action, model, details)
    except Exception:  # the audit entry is a courtesy: never fail for it
        return


def open_registry(project: Project) -> Database:
    """The project's database, with the mirror (if configured) following every change."""
    from sluice.db import open_project_database

    db = open_project_database(project)
    mirror = configured(project)
    if mirror is not None:
        db.after_registry_change.append(_AfterChange(mirror, db))
    return db


def notices(db: Database) -> list[str]:
    """What the mirror hook has to say (pending syncs) since the database was opened."""
    return [n for hook in db.after_registry_change if isinstance(hook, _AfterChange)
            for n in hook.notices]


def pending(db: Database) -> dict[str, str]:
    """Models whose last mirror attempt failed and no sync since: model → the error."""
    from sqlalchemy import select

    from sluice.db.schema import audit_log as a

    last: dict[str, str] = {}
    with db.engine.connect() as conn:
        for row in conn.execute(select(a.c.model, a.c.action, a.c.details)
                                .where(a.c.action.in_((PENDING, SYNCED))).order_by(a.c.id)):
            if row.action == PENDING:
                last[row.model] = str(json.loads(row.details).get("error", ""))
            else:
                last.pop(row.model, None)
    return last


def _names(db: Database, model: str | None) -> list[str]:
    """Every registered model, or ``model`` (an unknown one is a usage error, before any
    request to MLflow)."""
    if model is None:
        return [m["model"] for m in list_models(db)]
    versions(db, model, limit=1)
    return [model]


def sync_all(project: Project, db: Database, model: str | None = None) -> list[dict[str, Any]]:
    """Sync every model (or one) now; per model what was done, and what was pending."""
    mirror = required(project)
    waiting = pending(db)
    names = _names(db, model)
    results = []
    for name in names:
        done = mirror.sync(db, name)
        if name in waiting:
            _record(db, name, SYNCED, {"to": mirror.where})
        results.append({"model": name, "mlflow_model": mirror.name(name), "done": done,
                        "was_pending": waiting.get(name)})
    return results


def check_all(project: Project, db: Database, model: str | None = None) -> list[dict[str, Any]]:
    """The drift between sluice's registry and MLflow's, every model (or one)."""
    mirror = required(project)
    names = _names(db, model)
    return [d for name in names for d in mirror.check(db, name)]


def log_runs(project: Project, run_id: str) -> list[str]:
    """Log each stage execution of a sluice run as an MLflow run (`log_runs: true`).

    Params are the stage's params values, metrics its ledger figures (time, CPU, GPU,
    memory, cost), tags its fingerprint, tier, cost and outcome. Found again by the
    tag ``sluice.execution``, so logging twice logs once. Never raises: what went
    wrong comes back as a line to show.
    """
    mirror = configured(project)
    if mirror is None or not mirror.spec.log_runs:
        return []
    try:
        from sluice.db import open_project_database

        logged = _log_runs(mirror, open_project_database(project), run_id)
    except Exception as exc:  # logging runs never fails the run
        reason = mask(exc.message if isinstance(exc, SluiceError) else str(exc))
        return [f"MLflow: stage runs of run {run_id} not logged ({reason})"]
    return [f"MLflow: logged {logged} stage run(s) to experiment "
            f"`{mirror.spec.experiment}`"] if logged else []


def _log_runs(mirror: Mirror, db: Database, run_id: str) -> int:
    from sqlalchemy import select

    from sluice.db.schema import executions as e
    from sluice.workspace.records import read_record

    with db.engine.connect() as conn:
        rows = conn.execute(select(e).where(e.c.run_id == run_id).order_by(e.c.id)).all()
    client = mirror.client
    experiment = client.experiment_id(mirror.spec.experiment) if rows else ""
    logged = 0
    for row in rows:
        key = f"{run_id}/{row.stage}@{row.seed}"
        if client.find_run(experiment, "sluice.execution", key) is not None:
            continue
        record = read_record(mirror.project, row.stage) or {}
        params = {name: str(value)[:6000] for name, value in
                  _flat(record.get("components", {}).get("params", {})).items()}
        values = {"sluice.execution": key, "sluice.run_id": run_id, "sluice.stage": row.stage,
                  "sluice.kind": row.kind, "sluice.tier": row.tier,
                  "sluice.fingerprint": row.fingerprint or "", "sluice.outcome": row.outcome,
                  "sluice.cost_usd": f"{row.cost_usd:.6g}", "sluice.commit": row.git_commit or "",
                  "mlflow.user": row.actor or "", "mlflow.source.git.commit": row.git_commit or ""}
        metrics = {"wall_s": row.wall_s, "cpu_s": row.cpu_s, "cpu_alloc_s": row.cpu_alloc_s,
                   "gpu_s": row.gpu_s, "cost_usd": row.cost_usd, "fraction": row.fraction,
                   "seed": float(row.seed)}
        if row.max_rss_bytes is not None:
            metrics["max_rss_bytes"] = float(row.max_rss_bytes)
        start = int(row.started_at * 1000)
        made = client.create_run(experiment, f"{row.stage} ({row.tier})",
                                 {k: v for k, v in values.items() if v}, start)
        ident = made["info"]["run_id"]
        client.log_batch(ident, params, metrics, {}, start)
        # FINISHED only once everything is logged: find_run reuses only finished runs.
        client.finish_run(ident, "FINISHED" if row.outcome == "ran" else "FAILED",
                          start + int(row.wall_s * 1000))
        logged += 1
    return logged


def _flat(params: Any, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 0.1}}`` → ``{"train.lr": 0.1}`` (MLflow params are flat)."""
    if not isinstance(params, dict):
        return {prefix: params} if prefix else {}
    found: dict[str, Any] = {}
    for key, value in params.items():
        found.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return found
