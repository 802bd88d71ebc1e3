"""run results and performance buckets (issue 10)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("result", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("n_labelled", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("label_coverage", sa.Float(), nullable=True))
    op.create_table(
        "performance_buckets",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("bucket", sa.String(length=32), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("n_predictions", sa.Integer(), nullable=False),
        sa.Column("n_labelled", sa.Integer(), nullable=False),
        sa.Column("label_coverage", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ux_performance_buckets_key", "performance_buckets",
                    ["model", "bucket", "bucket_start"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_performance_buckets_key", table_name="performance_buckets")
    op.drop_table("performance_buckets")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("label_coverage")
        batch_op.drop_column("n_labelled")
        batch_op.drop_column("result")
