"""Tables of the sluice database (SQLAlchemy Core).

Changing a table means adding an Alembic migration under ``migrations/versions``
and bumping :data:`SCHEMA_REVISION` (in sluice.db.revision) to its revision id.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from sluice.db.revision import SCHEMA_REVISION as SCHEMA_REVISION

metadata = MetaData()

# One row per sluice run (a tier run or a plain `sluice run`).
runs = Table(
    "runs", metadata,
    Column("run_id", String(64), primary_key=True),
    Column("tier", String(128), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("wall_s", Float, nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("git_commit", String(64)),
    Column("branch", String(255)),
    Column("actor", String(255)),
    Column("cost_usd", Float, nullable=False, default=0.0),
    Column("details", Text),  # JSON: budgets, selection, fraction, seeds
    Index("ix_runs_started", "started_at"),
)

# The ledger: one row per stage execution (cache hits are not executions).
executions = Table(
    "executions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),
    Column("stage", String(255), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("tier", String(128), nullable=False),
    Column("fingerprint", String(64)),
    Column("started_at", Float, nullable=False),
    Column("wall_s", Float, nullable=False),
    Column("cpu_s", Float, nullable=False),  # measured CPU time
    Column("cpu_alloc_s", Float, nullable=False),  # allocated CPUs × wall: what is billed
    Column("gpu_s", Float, nullable=False),  # allocated GPUs × wall
    Column("gpu_type", String(128)),
    Column("max_rss_bytes", BigInteger),
    Column("cost_usd", Float, nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("fraction", Float, nullable=False),
    Column("seed", Integer, nullable=False),
    Column("git_commit", String(64)),
    Column("actor", String(255)),
    Index("ix_executions_stage", "stage", "outcome", "started_at"),
    Index("ix_executions_started", "started_at", "tier"),
)

# Every gate verdict of every run, with the interval and method behind it.
gate_results = Table(
    "gate_results", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),
    Column("model", String(255), nullable=False),
    Column("metric", String(255), nullable=False),
    Column("rule", String(255), nullable=False),
    Column("slice", String(255)),
    Column("verdict", String(16), nullable=False),
    Column("point", Float),
    Column("low", Float),
    Column("high", Float),
    Column("method", String(64)),
    Column("confidence", Float),
    Column("candidate", Float),
    Column("baseline", Float),
    Column("reason", Text),
    Column("created_at", Float, nullable=False),
    Index("ix_gate_results_model", "model", "created_at"),
)

# The model registry (see sluice.registry.versions): immutable versions, movable aliases.
model_versions = Table(
    "model_versions", metadata,
    Column("model", String(255), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("artifact_hash", String(80), nullable=False),
    Column("artifact_path", String(1024), nullable=False),
    Column("verdict", String(16)),
    Column("lineage", Text, nullable=False),  # JSON: commit, branch, tier, run, fingerprints
    Column("metrics", Text, nullable=False),  # JSON
    Column("gates", Text, nullable=False),  # JSON: verdicts with their evidence
    Column("predictions_hash", String(80)),
    Column("creator", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("tags", Text, nullable=False),
)
aliases = Table(
    "aliases", metadata,
    Column("model", String(255), primary_key=True),
    Column("alias", String(255), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("revision", Integer, nullable=False),  # bumped on every move: compare-and-swap
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(255), nullable=False),
)
alias_events = Table(
    "alias_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(255), nullable=False),
    Column("alias", String(255), nullable=False),
    Column("from_version", Integer),
    Column("to_version", Integer, nullable=False),
    Column("kind", String(32), nullable=False),  # promote, approve, rollback
    Column("actor", String(255), nullable=False),
    Column("reason", Text),
    Column("request_id", Integer),
    Column("evidence", Text),
    Column("at", Float, nullable=False),
    Index("ix_alias_events_model", "model", "alias", "id"),
)
promotion_requests = Table(
    "promotion_requests", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(255), nullable=False),
    Column("version", Integer, nullable=False),
    Column("alias", String(255), nullable=False),
    Column("requester", String(255), nullable=False),
    Column("reason", Text),
    Column("status", String(16), nullable=False),  # pending, approved, rejected
    Column("approvals", Text, nullable=False),  # JSON list of approvers
    Column("created_at", Float, nullable=False),
    Column("settled_at", Float),
    Column("settled_by", String(255)),
)
audit_log = Table(
    "audit_log", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("model", String(255)),
    Column("details", Text, nullable=False),
)

# Jobs submitted to a cluster (a Ray job per remote stage), written before each is
# submitted so that a later run can stop the jobs of a run killed with -9: a job whose
# run's lock (run_lock, on host) is free belongs to a dead run (sluice.pipeline.remote).
remote_jobs = Table(
    "remote_jobs", metadata,
    Column("job_id", String(255), primary_key=True),
    Column("run_id", String(64), nullable=False),
    Column("stage", String(255), nullable=False),
    Column("executor", String(255), nullable=False),
    Column("address", String(1024), nullable=False),
    Column("host", String(255), nullable=False),
    Column("run_lock", String(4096), nullable=False),
    Column("submitted_at", Float, nullable=False),
    Column("state", String(32), nullable=False),  # submitted, ended, stopped (orphan)
    Column("note", Text),
    Index("ix_remote_jobs_state", "state"),
)
