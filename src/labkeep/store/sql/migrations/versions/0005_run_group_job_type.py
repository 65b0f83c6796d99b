"""run group and job type: ``init(group="cv-5fold", job_type="fold")``

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 22:00:00.000000

Two nullable columns on runs; existing runs have neither.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("run_group", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("job_type", sa.String(length=255), nullable=True))
        batch_op.create_index("ix_runs_group", ["run_group"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_group")
        batch_op.drop_column("job_type")
        batch_op.drop_column("run_group")
