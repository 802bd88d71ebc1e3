"""run leases: each model's tick runs once across several collectors (issue 12)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_leases",
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("tick_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("run_id", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("model", "tick_start"),
    )
    op.create_index("ix_run_leases_open", "run_leases", ["model", "finished_at"])


def downgrade() -> None:
    op.drop_index("ix_run_leases_open", table_name="run_leases")
    op.drop_table("run_leases")
