"""``SqlStore.apply_many``: many batches in one transaction, all or none (SQLite, PostgreSQL).

The REST store applies them one request at a time (the Store default), so this holds for the
SQL backends only; what every backend shares is in the contract suite."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from labkeep.errors import NotFoundError
from labkeep.store._base import RunFinish, RunStart, WriteBatch


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
