"""blob_refs: every blob a run names, so purge never deletes one a snapshot still needs

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 15:10:00.000000

Filled from the artifacts and from each snapshot's JSON; the files a code manifest lists are
read from the manifest blob in the store's blob directory (a manifest that cannot be read
still keeps itself, and is logged).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_BATCH = 1000


def upgrade() -> None:
    op.create_table(
        "blob_refs",
        sa.Column("run_number", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["run_number"], ["runs.number"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_number", "sha256", "kind"),
    )
    op.create_index("ix_blob_refs_sha256", "blob_refs", ["sha256"], unique=False)
    config = op.get_context().config
    blob_dir = config.attributes.get("blob_dir") if config is not None else None
    _fill(op.get_bind(), Path(blob_dir) if blob_dir is not None else None)


def _fill(bind: Any, blob_dir: Path | None) -> None:
    from labkeep.store._blobs import BlobDirectory
    from labkeep.store._refs import ARTIFACT, snapshot_refs

    blobs = BlobDirectory(blob_dir) if blob_dir is not None else None
    manifests: dict[str, Any] = {}

    def read_json(sha: str) -> Any:
        if blobs is None:
            raise FileNotFoundError("no blob directory given")
        if sha not in manifests:
            manifests[sha] = json.loads(blobs.get(sha).read_bytes())
        return manifests[sha]

    insert = sa.text("INSERT INTO blob_refs (run_number, sha256, kind) VALUES (:run, :sha, :kind)")
    bind.execute(
        sa.text(
            "INSERT INTO blob_refs (run_number, sha256, kind) "
            f"SELECT DISTINCT run_number, sha256, '{ARTIFACT}' FROM artifacts"
        )
    )
    rows = bind.execute(sa.text("SELECT run_number, data FROM snapshots ORDER BY run_number"))
    pending: list[dict[str, Any]] = []
    for number, data in rows.fetchall():
        try:
            snapshot = json.loads(data)
        except ValueError:
            continue
        if not isinstance(snapshot, dict):
            continue
        for sha, kind in sorted(snapshot_refs(snapshot, read_json)):
            pending.append({"run": number, "sha": sha, "kind": kind})
        if len(pending) >= _BATCH:
            bind.execute(insert, pending)
            pending = []
    if pending:
        bind.execute(insert, pending)


def downgrade() -> None:
    op.drop_index("ix_blob_refs_sha256", table_name="blob_refs")
    op.drop_table("blob_refs")
