"""The model registry: versions, aliases with their history, promotion requests, audit log.

Revision ID: 0003_registry
Revises: 0002_gate_results
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_registry"
down_revision = "0002_gate_results"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("model", sa.String(255), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("artifact_hash", sa.String(80), nullable=False),
        sa.Column("artifact_path", sa.String(1024), nullable=False),
        sa.Column("verdict", sa.String(16)),
        sa.Column("lineage", sa.Text, nullable=False),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("gates", sa.Text, nullable=False),
        sa.Column("predictions_hash", sa.String(80)),
        sa.Column("creator", sa.String(255), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
    )
    op.create_table(
        "aliases",
        sa.Column("model", sa.String(255), primary_key=True),
        sa.Column("alias", sa.String(255), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=False),
    )
    op.create_table(
        "alias_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("alias", sa.String(255), nullable=False),
        sa.Column("from_version", sa.Integer),
        sa.Column("to_version", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("request_id", sa.Integer),
        sa.Column("evidence", sa.Text),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index("ix_alias_events_model", "alias_events", ["model", "alias", "id"])
    op.create_table(
        "promotion_requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("alias", sa.String(255), nullable=False),
        sa.Column("requester", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("approvals", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("settled_at", sa.Float),
        sa.Column("settled_by", sa.String(255)),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("model", sa.String(255)),
        sa.Column("details", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("audit_log", "promotion_requests", "alias_events", "aliases",
                  "model_versions"):
        op.drop_table(table)
