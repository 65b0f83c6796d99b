"""indexes for searches of many runs: a param or summary's string, the start time, the runs
outside the trash

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 02:30:00.000000

``params.optimizer == 'adam'`` compiles to a test on ``params.text``, which no index held:
PostgreSQL read the whole params table (4 rows a run) to find the runs with that value, then
hashed them. ``(key, text, run_number)`` finds them with an index-only scan, as
``ix_params_key_num`` already does for numbers; summaries likewise. ``(start_time, number)``
gives ``sort="-started"`` (what ``labkeep.runs(...).to_pandas()`` is often asked) its order
without sorting every run: on a store of 100,000 runs the sort spilled to disk.
``ix_runs_live`` (the numbers of runs not in the trash, a partial index) lets a count test
each candidate run with an index-only probe rather than a read of its row: on a store of a
million runs, counting ``params.optimizer == 'adam' and metrics.loss < 0.5`` went from 811 to
304 ms, and counting every run from 183 to 108 ms (EXPLAIN ANALYZE).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_params_key_text", "params", ["key", "text", "run_number"])
    op.create_index("ix_summaries_key_text", "summaries", ["key", "text", "run_number"])
    op.create_index("ix_runs_start", "runs", ["start_time", "number"])
    live = sa.text("NOT deleted")
    op.create_index("ix_runs_live", "runs", ["number"], postgresql_where=live, sqlite_where=live)


def downgrade() -> None:
    op.drop_index("ix_runs_live", table_name="runs")
    op.drop_index("ix_runs_start", table_name="runs")
    op.drop_index("ix_summaries_key_text", table_name="summaries")
    op.drop_index("ix_params_key_text", table_name="params")
