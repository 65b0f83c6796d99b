"""model registry and versioned artifacts: registered models, versions, aliases; named
artifacts, their versions, files, aliases and lineage links

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 23:30:00.000000

New tables only; existing runs are untouched.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _owner(column: str, table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{table}.id"], ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("tags", sa.Text(), server_default="{}", nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("updated", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "model_versions",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("run_uuid", sa.String(length=36), nullable=False),
        sa.Column("model_path", sa.String(length=1000), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("tags", sa.Text(), server_default="{}", nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        _owner("model_id", "registered_models"),
        sa.PrimaryKeyConstraint("model_id", "version"),
    )
    op.create_index("ix_model_versions_run", "model_versions", ["run_uuid"], unique=False)
    op.create_table(
        "model_aliases",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _owner("model_id", "registered_models"),
        sa.PrimaryKeyConstraint("model_id", "alias"),
    )
    op.create_table(
        "named_artifacts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "artifact_versions",
        sa.Column("artifact_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column("run_uuid", sa.String(length=36), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        _owner("artifact_id", "named_artifacts"),
        sa.PrimaryKeyConstraint("artifact_id", "version"),
    )
    op.create_index(
        "ux_artifact_versions_digest", "artifact_versions", ["artifact_id", "digest"], unique=True
    )
    op.create_table(
        "artifact_files",
        sa.Column("artifact_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        _owner("artifact_id", "named_artifacts"),
        sa.PrimaryKeyConstraint("artifact_id", "version", "path"),
    )
    op.create_index("ix_artifact_files_sha256", "artifact_files", ["sha256"], unique=False)
    op.create_table(
        "artifact_aliases",
        sa.Column("artifact_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _owner("artifact_id", "named_artifacts"),
        sa.PrimaryKeyConstraint("artifact_id", "alias"),
    )
    op.create_table(
        "artifact_links",
        sa.Column("run_uuid", sa.String(length=36), nullable=False),
        sa.Column("artifact_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        _owner("artifact_id", "named_artifacts"),
        sa.PrimaryKeyConstraint("run_uuid", "artifact_id", "version", "role"),
    )
    op.create_index(
        "ix_artifact_links_version", "artifact_links", ["artifact_id", "version"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_artifact_links_version", table_name="artifact_links")
    op.drop_table("artifact_links")
    op.drop_table("artifact_aliases")
    op.drop_index("ix_artifact_files_sha256", table_name="artifact_files")
    op.drop_table("artifact_files")
    op.drop_index("ux_artifact_versions_digest", table_name="artifact_versions")
    op.drop_table("artifact_versions")
    op.drop_table("named_artifacts")
    op.drop_table("model_aliases")
    op.drop_index("ix_model_versions_run", table_name="model_versions")
    op.drop_table("model_versions")
    op.drop_table("registered_models")
