"""How a SQL store keeps a run's metric points in chunks: a finished run's keys logged in
many small pieces are merged, keys of a few pieces are left as they are (SQLite file)."""

from __future__ import annotations

import sqlite3
import uuid
from array import array
from pathlib import Path

from labkeep.store import locate_store, open_store
from labkeep.store._base import MetricColumns, RunFinish, RunStart, WriteBatch
from labkeep.store.sql._apply import COMPACT_ABOVE


def _points(steps: range) -> MetricColumns:
    return MetricColumns(
        array("q", steps), array("d", [s / 2 for s in steps]), array("d", [100.0] * len(steps))
    )


def test_finish_merges_only_keys_logged_in_many_small_pieces(tmp_path: Path) -> None:
    store = open_store(locate_store(str(tmp_path / "store")))
    run_uuid = str(uuid.uuid4())
    pieces = COMPACT_ABOVE + 4
    try:
        for i in range(pieces):
            batch = WriteBatch(run_uuid=run_uuid, writer="w", position=i + 1)
            if i == 0:
                batch.start = RunStart(uuid=run_uuid, experiment="e", name="", start_time=1.0)
            batch.metrics["slow"] = _points(range(i * 3, i * 3 + 3))
            if i < 3:
                batch.metrics["wide"] = _points(range(i * 5, i * 5 + 5))
            if i == pieces - 1:
                batch.finish = RunFinish("completed", 2.0)
            number = store.apply(batch)
        db = sqlite3.connect(tmp_path / "store" / "labkeep.db")
        chunks = dict(
            db.execute(
                "SELECT key, COUNT(*) FROM metric_chunks WHERE run_number = ? GROUP BY key",
                (number,),
            ).fetchall()
        )
        db.close()
        assert chunks == {"slow": 1, "wide": 3}
        slow = store.get_history(number, "slow")
        wide = store.get_history(number, "wide")
        assert list(slow.steps) == list(range(pieces * 3))
        assert list(slow.values) == [s / 2 for s in range(pieces * 3)]
        assert list(wide.steps) == list(range(15))
    finally:
        store.close()
