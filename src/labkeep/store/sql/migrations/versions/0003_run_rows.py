"""run_rows and key_sets: each run's params, summary and metric summaries packed in one row

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 18:10:00.000000
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BATCH = 1000


def upgrade() -> None:
    op.create_table(
        "key_sets",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("keys", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "run_rows",
        sa.Column("run_number", sa.Integer(), nullable=False),
        sa.Column("param_keyset", sa.BigInteger(), nullable=True),
        sa.Column("param_packed", sa.LargeBinary(), nullable=True),
        sa.Column("param_other", sa.Text(), nullable=True),
        sa.Column("summary_keyset", sa.BigInteger(), nullable=True),
        sa.Column("summary_packed", sa.LargeBinary(), nullable=True),
        sa.Column("summary_other", sa.Text(), nullable=True),
        sa.Column("metric_keyset", sa.BigInteger(), nullable=True),
        sa.Column("metric_packed", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(["run_number"], ["runs.number"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_number"),
    )
    _fill(op.get_bind())


def _fill(bind: Any) -> None:
    """Pack every existing run's row, a batch of runs at a time."""
    from labkeep.store.sql._packed import SECTIONS, pack_sections

    numbers = [row[0] for row in bind.execute(sa.text("SELECT number FROM runs ORDER BY number"))]
    known: set[int] = set()
    for lo in range(0, len(numbers), _BATCH):
        part = numbers[lo : lo + _BATCH]
        found: dict[int, dict[str, list[Any]]] = {n: {} for n in part}
        for section, sql in (
            ("params", "SELECT run_number, key, json FROM params"),
            ("summary", "SELECT run_number, key, json FROM summaries"),
            ("metrics", "SELECT run_number, key, last, min, max, count, last_step FROM metrics"),
        ):
            query = sa.text(f"{sql} WHERE run_number IN :part").bindparams(
                sa.bindparam("part", expanding=True)
            )
            for row in bind.execute(query, {"part": part}):
                found[row[0]].setdefault(section, []).append(tuple(row[1:]))
        rows = []
        for number in part:
            if not found[number]:
                continue
            names, values, key_lists = pack_sections(found[number], SECTIONS)
            new = [{"id": i, "keys": k} for i, k in key_lists.items() if i not in known]
            if new:
                bind.execute(sa.text("INSERT INTO key_sets (id, keys) VALUES (:id, :keys)"), new)
                known.update(key_lists)
            rows.append({"run_number": number, **dict(zip(names, values, strict=True))})
        if rows:
            names = list(rows[0])
            bind.execute(
                sa.text(
                    f"INSERT INTO run_rows ({', '.join(names)}) "
                    f"VALUES ({', '.join(':' + n for n in names)})"
                ),
                rows,
            )


def downgrade() -> None:
    op.drop_table("run_rows")
    op.drop_table("key_sets")
