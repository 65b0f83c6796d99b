"""store_settings: what a store records about itself (where its artifacts live)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 23:30:00.000000

One row per setting. ``artifacts`` names the artifact store (a directory or
``s3://bucket/prefix``) that every machine using this database reads and writes, recorded by
``labkeep server --artifacts URI``; without it each machine keeps blobs in its own cache.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "store_settings",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("store_settings")
