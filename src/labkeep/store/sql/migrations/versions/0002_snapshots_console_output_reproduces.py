"""snapshots, console output, reproduces

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 15:21:02.394722
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "output_lines",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_number", sa.Integer(), nullable=False),
        sa.Column("stream", sa.String(length=8), nullable=False),
        sa.Column("time", sa.Float(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["run_number"], ["runs.number"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("output_lines", schema=None) as batch_op:
        batch_op.create_index("ix_output_lines_run", ["run_number", "id"], unique=False)

    op.create_table(
        "snapshots",
        sa.Column("run_number", sa.Integer(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["run_number"], ["runs.number"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_number"),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reproduces_uuid", sa.String(length=36), nullable=True))

    # Covering indexes for queries on values: run numbers come straight from the index.
    for table, index, value in (
        ("params", "ix_params_key_num", "num"),
        ("summaries", "ix_summaries_key_num", "num"),
        ("metrics", "ix_metrics_key_last", "last"),
    ):
        op.drop_index(index, table_name=table)
        op.create_index(index, table, ["key", value, "run_number"], unique=False)


def downgrade() -> None:
    for table, index, value in (
        ("params", "ix_params_key_num", "num"),
        ("summaries", "ix_summaries_key_num", "num"),
        ("metrics", "ix_metrics_key_last", "last"),
    ):
        op.drop_index(index, table_name=table)
        op.create_index(index, table, ["key", value], unique=False)
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("reproduces_uuid")

    op.drop_table("snapshots")
    with op.batch_alter_table("output_lines", schema=None) as batch_op:
        batch_op.drop_index("ix_output_lines_run")

    op.drop_table("output_lines")
