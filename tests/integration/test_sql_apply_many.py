"""``SqlStore.apply_many``: many batches in one transaction, all or none (SQLite, PostgreSQL).

The REST store applies them one request at a time (the Store default), so this holds for the
SQL backends only; what every backend shares is in the contract suite."""

from __future__ import annotations

import uuid
from array import array
from typing import Any

import pytest

from labkeep.errors import NotFoundError
from labkeep.store._base import MetricColumns, RunFinish, RunStart, WriteBatch


def _new_run(experiment: str) -> WriteBatch:
    run_uuid = str(uuid.uuid4())
    return WriteBatch(
        run_uuid=run_uuid,
        writer=f"import-{run_uuid}",
        position=1,
        start=RunStart(uuid=run_uuid, experiment=experiment, name="", start_time=1000.0),
        params={"x": 1},
        finish=RunFinish("completed", 1001.0),
    )


def test_a_failing_batch_leaves_none_of_the_others_written(store: Any) -> None:
    experiment = f"exp-{uuid.uuid4().hex[:8]}"
    good = [_new_run(experiment) for _ in range(3)]
    unknown = WriteBatch(str(uuid.uuid4()), "w", 5, notes="a run that does not exist")
    with pytest.raises(NotFoundError):
        store.apply_many([*good[:2], unknown, good[2]])
    for batch in good:
        with pytest.raises(NotFoundError):
            store.resolve_run(batch.run_uuid)
    assert len(store.apply_many(good)) == 3  # the store is usable and nothing half-written


def _rich_run(index: int, name: str = "") -> WriteBatch:
    """An imported run's batch with values of every kind, NaN and -0.0 points among them."""
    run_uuid = str(uuid.UUID(int=index + 1))
    return WriteBatch(
        run_uuid=run_uuid,
        writer=f"import-{run_uuid}",
        position=1,
        start=RunStart(
            uuid=run_uuid,
            experiment=f"exp-{index % 2}",
            name=name,
            start_time=1000.0 + index,
            user="ada",
            parent_uuid=str(uuid.UUID(int=1)) if index else None,
        ),
        params={
            "lr": 0.1 * index,
            "zero": -0.0,
            "epochs": index,
            "big": 2**70,
            "on": index % 2 == 0,
            "none": None,
            "solver": "saga\x00é",
            "nan": float("nan"),
            "inf": float("inf"),
            "layers": [1, 2],
            "opt": {"b": 1},
        },
        summary={"import.source": "mlflow", "import.id": f"id{index}", "acc": 0.5},
        tags_added=["team=vision", "team=vision", "reviewed"],
        metrics={
            "loss": MetricColumns(
                array("q", [0, 1, 1, 2]),
                array("d", [1.5, float("nan"), -0.0, 0.25 * index]),
                array("d", [1.0, 2.0, 3.0, 4.0]),
            ),
            "empty": MetricColumns(),
            "all_nan": MetricColumns(
                array("q", [0]), array("d", [float("nan")]), array("d", [1.0])
            ),
            "neg_zero": MetricColumns(array("q", [5]), array("d", [-0.0]), array("d", [2.0])),
        }
        if index % 3
        else {},
        output=[("stdout", 1001.0, f"line {index}")],
        finish=RunFinish("completed" if index % 2 else "failed", 2000.0 + index, None, index),
    )


def _tables(store: Any) -> dict[str, list[str]]:
    names = [r[0] for r in store._rows("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {n: sorted(map(repr, store._rows(f"SELECT * FROM {n}"))) for n in names}


def test_new_runs_written_a_table_at_a_time_are_the_runs_written_a_batch_at_a_time(
    tmp_path: Any,
) -> None:
    """Importing runs (each batch creates its run whole) takes the table-at-a-time path on
    SQLite: every table then holds what applying the batches one by one writes."""
    from labkeep.store import locate_store, open_store

    batches = [_rich_run(i, name="named" if i == 4 else "") for i in range(7)]
    one_by_one = open_store(locate_store(str(tmp_path / "one")))
    grouped = open_store(locate_store(str(tmp_path / "many")))
    try:
        numbers = [one_by_one.apply(b) for b in batches]
        assert grouped.apply_many(batches) == numbers
        assert _tables(grouped) == _tables(one_by_one)
        # Applied again (a second import of the same runs): nothing changes.
        assert grouped.apply_many(batches) == numbers
        assert _tables(grouped) == _tables(one_by_one)
        # A group where some runs are already there and some are new.
        more = [_rich_run(i) for i in range(5, 10)]
        assert grouped.apply_many(more) == [one_by_one.apply(b) for b in more]
        assert _tables(grouped) == _tables(one_by_one)
    finally:
        one_by_one.close()
        grouped.close()
