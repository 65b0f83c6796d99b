"""a registered model's highest version number ever given

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 05:40:00.000000

A new model version was numbered from the highest version left: after deleting version 3
of 3, the next registration was version 3 again, and ``models:/NAME/3`` named a different
model than before (a rerun, a deployment or a note that cites it would load the wrong one).
``registered_models.last_version`` keeps the highest number given; existing models start
from their highest version now.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registered_models", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_version", sa.Integer(), nullable=False, server_default="0")
        )
    op.execute(
        "UPDATE registered_models SET last_version = COALESCE((SELECT max(version) "
        "FROM model_versions WHERE model_versions.model_id = registered_models.id), 0)"
    )


def downgrade() -> None:
    with op.batch_alter_table("registered_models", schema=None) as batch_op:
        batch_op.drop_column("last_version")
