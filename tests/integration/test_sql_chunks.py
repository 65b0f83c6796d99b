"""How a SQL store keeps a run's metric points in chunks: a finished run's keys logged in
many small pieces are merged, keys of a few pieces are left as they are (SQLite file)."""

from __future__ import annotations

import sqlite3
import uuid
from array import array
from pathlib import Path
from typing import Any

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


def test_a_wide_run_logged_through_the_api_is_stored_whole(store_uri: str) -> None:
    """The live ingester hands a SQL store a wide run's batches column-wise
    (``WriteBatch.metric_block``): every key's points and summary arrive, on SQLite and
    PostgreSQL, whether the block was the run's first metrics or merged into stored ones."""
    import labkeep

    names = [f"layer{i:03d}/grad" for i in range(300)]
    run = labkeep.init(experiment="wide", store=store_uri)
    try:
        run.log({"first": 1.0})  # one key, then wide calls: a first batch or a merge
        for step in range(12):
            run.log({n: step + i / 1000 for i, n in enumerate(names)}, step=step)
            if step == 5:
                assert run._ingester is not None
                run._ingester.flush(30)
    finally:
        run.finish()
    view = labkeep.get_run("last", store=store_uri)
    assert set(view.metrics) == {"first", *names}
    for i, n in enumerate(names):
        series = view.series(n)
        assert series.steps.tolist() == list(range(12)), n
        assert series.values.tolist() == [s + i / 1000 for s in range(12)], n
        m = view.metrics[n]
        assert (m.last, m.last_step, m.min, m.max, m.count) == (
            11 + i / 1000,
            11,
            i / 1000,
            11 + i / 1000,
            12,
        )


def test_a_block_and_the_same_points_as_columns_store_the_same(store: Any) -> None:
    from labkeep.store._base import MetricBlock

    names = ["b", "a", "c"]
    steps = array("q", [0, 1, 2])
    per_key = {n: array("d", [k + s / 4 for s in range(3)]) for k, n in enumerate(names)}
    numbers = []
    for as_block in (False, True):
        run_uuid = str(uuid.uuid4())
        batch = WriteBatch(run_uuid=run_uuid, writer=f"w{as_block}", position=1)
        batch.start = RunStart(uuid=run_uuid, experiment="e", name="", start_time=1.0)
        times = array("d", [5.0, 6.0, 7.0])
        if as_block:
            keys = sorted(names)
            batch.metric_block = MetricBlock(
                keys,
                [3] * 3,
                steps.tobytes() * 3,
                b"".join(per_key[k].tobytes() for k in keys),
                times.tobytes() * 3,
            )
        else:
            batch.metrics = {n: MetricColumns(steps, per_key[n], times) for n in names}
        numbers.append(store.apply(batch))
    for n in names:
        columns, block = (store.get_history(number, n) for number in numbers)
        assert (list(block.steps), list(block.values)) == (
            list(columns.steps),
            list(columns.values),
        )
    summaries = [
        {k: (m.last, m.min, m.max, m.count) for k, m in record.metrics.items()}
        for record in store.get_records(numbers)
    ]
    assert summaries[0] == summaries[1] and len(summaries[0]) == 3
