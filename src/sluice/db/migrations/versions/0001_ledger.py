"""The ledger: runs and stage executions.

Revision ID: 0001_ledger
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_ledger"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("tier", sa.String(128), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("wall_s", sa.Float, nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("git_commit", sa.String(64)),
        sa.Column("branch", sa.String(255)),
        sa.Column("actor", sa.String(255)),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("details", sa.Text),
    )
    op.create_index("ix_runs_started", "runs", ["started_at"])
    op.create_table(
        "executions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("tier", sa.String(128), nullable=False),
        sa.Column("fingerprint", sa.String(64)),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("wall_s", sa.Float, nullable=False),
        sa.Column("cpu_s", sa.Float, nullable=False),
        sa.Column("cpu_alloc_s", sa.Float, nullable=False),
        sa.Column("gpu_s", sa.Float, nullable=False),
        sa.Column("gpu_type", sa.String(128)),
        sa.Column("max_rss_bytes", sa.BigInteger),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("fraction", sa.Float, nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("git_commit", sa.String(64)),
        sa.Column("actor", sa.String(255)),
    )
    op.create_index("ix_executions_stage", "executions", ["stage", "outcome", "started_at"])
    op.create_index("ix_executions_started", "executions", ["started_at", "tier"])


def downgrade() -> None:
    op.drop_table("executions")
    op.drop_table("runs")
