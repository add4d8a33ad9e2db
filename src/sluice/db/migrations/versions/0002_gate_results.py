"""Gate verdicts with their evidence.

Revision ID: 0002_gate_results
Revises: 0001_ledger
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_gate_results"
down_revision = "0001_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gate_results",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("metric", sa.String(255), nullable=False),
        sa.Column("rule", sa.String(255), nullable=False),
        sa.Column("slice", sa.String(255)),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("point", sa.Float),
        sa.Column("low", sa.Float),
        sa.Column("high", sa.Float),
        sa.Column("method", sa.String(64)),
        sa.Column("confidence", sa.Float),
        sa.Column("candidate", sa.Float),
        sa.Column("baseline", sa.Float),
        sa.Column("reason", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_gate_results_model", "gate_results", ["model", "created_at"])


def downgrade() -> None:
    op.drop_table("gate_results")
