"""The model registry: immutable versions, aliases that move only with evidence, history.

A version records a model's artifact (by content hash, kept in the sluice store),
its lineage, metrics and gate verdicts. An alias (``staging``, ``production``)
points at one version; moving it is checked against the alias's policy in
``sluice.yaml`` (gates passed, held by another alias first, approvals, branches,
actors) and is a compare-and-swap on the alias's revision, so of two concurrent
moves exactly one wins and the other is told who won. Every move is kept in
``alias_events`` and every action in the append-only ``audit_log``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sluice.db import Database
from sluice.db.read import Reader, as_reader
from sluice.errors import SluiceError, UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection



@dataclass(frozen=True)
class Version:
    model: str
    version: int
    artifact_hash: str
    artifact_path: str
    verdict: str | None
    lineage: dict[str, Any]
    metrics: dict[str, Any]
    gates: list[dict[str, Any]]
    creator: str
    created_at: float
    tags: dict[str, Any]
    predictions_hash: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


def _version(row: Mapping[str, Any]) -> Version:
    return Version(row["model"], row["version"], row["artifact_hash"], row["artifact_path"],
                   row["verdict"], json.loads(row["lineage"]), json.loads(row["metrics"]),
                   json.loads(row["gates"]), row["creator"], row["created_at"],
                   json.loads(row["tags"]), row["predictions_hash"])


def _audit(conn: Connection, actor: str, action: str, model: str | None,
           details: dict[str, Any]) -> None:
    from sluice.db.schema import audit_log

    conn.execute(audit_log.insert().values(at=time.time(), actor=actor, action=action,
                                           model=model, details=json.dumps(details)))


def register(db: Database, model: str, *, artifact_hash: str, artifact_path: str,
             verdict: str | None, lineage: dict[str, Any], metrics: dict[str, Any],
             gates: list[dict[str, Any]], creator: str, predictions_hash: str | None = None,
             tags: dict[str, Any] | None = None) -> Version:
    """Create the next version of ``model`` (numbers are dense; a race retries)."""
    from sqlalchemy import func, select
    from sqlalchemy.exc import IntegrityError

    from sluice.db.schema import model_versions as t

    for _ in range(20):
        try:
            with db.engine.begin() as conn:
                last = conn.execute(select(func.max(t.c.version))
                                    .where(t.c.model == model)).scalar()
                number = int(last or 0) + 1
                row = {"model": model, "version": number, "artifact_hash": artifact_hash,
                       "artifact_path": artifact_path, "verdict": verdict,
                       "lineage": json.dumps(lineage, sort_keys=True, default=str),
                       "metrics": json.dumps(metrics, sort_keys=True),
                       "gates": json.dumps(gates, sort_keys=True),
                       "predictions_hash": predictions_hash, "creator": creator,
                       "created_at": time.time(), "tags": json.dumps(tags or {})}
                conn.execute(t.insert().values(**row))
                _audit(conn, creator, "register", model, {"version": number,
                                                          "artifact": artifact_hash})
            db.registry_changed(model)
            return _version(row)
        except IntegrityError:
            continue  # another process took this number: take the next one
    raise SluiceError(f"could not register a version of `{model}`: too much contention",
                      hint="retry")


def get_version(source: Database | Reader, model: str, version: int | None = None,
                alias: str | None = None) -> Version:
    """A version by number, by alias, or the latest.

    Plain SQL through a :class:`~sluice.db.read.Reader`, so a one-shot
    `sluice models show` on a SQLite file needs no SQLAlchemy.
    """
    reader = as_reader(source)
    if alias is not None:
        held = reader.rows("SELECT version FROM aliases WHERE model = :model AND alias = :alias",
                           {"model": model, "alias": alias})
        if not held:
            known = _known_aliases(reader, model)
            raise UsageError(f"model `{model}` has no alias `{alias}`",
                             hint="aliases: " + (", ".join(known) or "(none yet)"))
        version = int(held[0]["version"])
    if version is not None:
        rows = reader.rows("SELECT * FROM model_versions WHERE model = :model "
                           "AND version = :version", {"model": model, "version": version})
    else:
        rows = reader.rows("SELECT * FROM model_versions WHERE model = :model "
                           "ORDER BY version DESC LIMIT 1", {"model": model})
    if not rows:
        _unknown(reader, model, version)
    return _version(rows[0])


def _known_aliases(reader: Reader, model: str) -> list[str]:
    return [r["alias"] for r in reader.rows("SELECT alias FROM aliases WHERE model = :model "
                                            "ORDER BY alias", {"model": model})]


def _unknown(source: Database | Reader, model: str, version: int | None) -> Any:
    models = [m["model"] for m in list_models(source)]
    if model not in models:
        from sluice.util.suggest import did_you_mean

        raise UsageError(f"no model `{model}` in the registry" + did_you_mean(model, models),
                         hint="versions are registered by tiers with `register: true`; "
                              "`sluice models list` shows what is there")
    raise UsageError(f"model `{model}` has no version {version}",
                     hint=f"`sluice models show {model}` lists its versions")


def list_models(source: Database | Reader) -> list[dict[str, Any]]:
    reader = as_reader(source)
    rows = reader.rows("SELECT model, MAX(version) AS latest, COUNT(*) AS n "
                       "FROM model_versions GROUP BY model ORDER BY model")
    held = reader.rows("SELECT model, alias, version FROM aliases")
    return [{"model": r["model"], "latest": int(r["latest"]), "versions": int(r["n"]),
             "aliases": {h["alias"]: int(h["version"]) for h in held
                         if h["model"] == r["model"]}}
            for r in rows]


def versions(db: Database, model: str, *, newest_first: bool = False,
             limit: int | None = None, offset: int = 0) -> list[Version]:
    """The versions of ``model``, oldest first (or a page of them, newest first)."""
    from sqlalchemy import select

    from sluice.db.schema import model_versions as t

    order = t.c.version.desc() if newest_first else t.c.version
    query = select(t).where(t.c.model == model).order_by(order).offset(offset).limit(limit)
    with db.engine.connect() as conn:
        rows = conn.execute(query).all()
    if not rows and offset == 0:
        _unknown(db, model, None)
    return [_version(dict(r._mapping)) for r in rows]


def history(db: Database, model: str, alias: str | None = None) -> list[dict[str, Any]]:
    """Every alias move of ``model`` (optionally of one alias), oldest first."""
    from sqlalchemy import select

    from sluice.db.schema import alias_events as e

    query = select(e).where(e.c.model == model)
    if alias is not None:
        query = query.where(e.c.alias == alias)
    with db.engine.connect() as conn:
        rows = conn.execute(query.order_by(e.c.id)).all()
    if not rows and model not in [m["model"] for m in list_models(db)]:
        _unknown(db, model, None)
    return [{"id": r.id, "alias": r.alias, "from": r.from_version, "to": r.to_version,
             "kind": r.kind, "actor": r.actor, "reason": r.reason, "request": r.request_id,
             "evidence": json.loads(r.evidence) if r.evidence else None, "at": r.at}
            for r in rows]
