"""Remote jobs: each job submitted to a cluster, recorded before it is submitted.

Revision ID: 0004_remote_jobs
Revises: 0003_registry
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_remote_jobs"
down_revision = "0003_registry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "remote_jobs",
        sa.Column("job_id", sa.String(255), primary_key=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(255), nullable=False),
        sa.Column("executor", sa.String(255), nullable=False),
        sa.Column("address", sa.String(1024), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("run_lock", sa.String(4096), nullable=False),
        sa.Column("submitted_at", sa.Float, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_remote_jobs_state", "remote_jobs", ["state"])


def downgrade() -> None:
    op.drop_index("ix_remote_jobs_state", "remote_jobs")
    op.drop_table("remote_jobs")
