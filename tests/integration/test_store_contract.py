"""The Store contract: one suite, run against every backend (SQLite, PostgreSQL).

Each backend gets the same WriteBatches and must answer the same reads. PostgreSQL tests
share one schema per session, so every test makes its own runs, experiments and uuids and
looks only at those.
"""

from __future__ import annotations

import math
import os
import secrets
import time
import uuid as uuid_mod
from array import array
from pathlib import Path
from typing import Any

import pytest
from registry_contract import *  # noqa: F403  # the registry's part of the contract

from labkeep.entities import Artifact, RunStatus
from labkeep.errors import AmbiguousRefError, NotFoundError
from labkeep.store._base import MetricColumns, RunFinish, RunStart, Store, WriteBatch

NAN = float("nan")
INF = float("inf")


def _experiment() -> str:
    return f"exp-{secrets.token_hex(4)}"


def _start(
    store: Store,
    *,
    experiment: str | None = None,
    name: str = "",
    run_uuid: str | None = None,
    writer: str | None = None,
    start_time: float | None = None,
    **fields: Any,
) -> WriteBatch:
    """Create a run; return the batch (its uuid and writer are reused by the caller)."""
    run_uuid = run_uuid or str(uuid_mod.uuid4())
    batch = WriteBatch(
        run_uuid=run_uuid,
        writer=writer or f"{run_uuid}.{secrets.token_hex(6)}",
        position=10,
        start=RunStart(
            uuid=run_uuid,
            experiment=experiment or _experiment(),
            name=name,
            start_time=time.time() if start_time is None else start_time,
            user="alice",
            host="box",
            pid=4242,
        ),
        **fields,
    )
    store.apply(batch)
    return batch


def _next(batch: WriteBatch, **fields: Any) -> WriteBatch:
    """The same writer's next batch."""
    return WriteBatch(
        run_uuid=batch.run_uuid, writer=batch.writer, position=batch.position + 10, **fields
    )


def _columns(points: list[tuple[int, float]], t0: float = 1000.0) -> MetricColumns:
    cols = MetricColumns()
    for i, (step, value) in enumerate(points):
        cols.steps.append(step)
        cols.values.append(value)
        cols.times.append(t0 + i)
    return cols


def _record(store: Store, batch: WriteBatch) -> Any:
    number = store.resolve_run(batch.run_uuid).number
    return store.get_records([number])[0]


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


# -- apply -----------------------------------------------------------------------------


def test_apply_creates_a_run(store: Store) -> None:
    experiment = _experiment()
    before = time.time()
    batch = _start(store, experiment=experiment, start_time=before)
    number = store.apply(_next(batch))
    info = store.resolve_run(number)
    assert info.uuid == batch.run_uuid
    assert info.experiment == experiment
    assert info.status is RunStatus.RUNNING
    assert info.start_time == before
    assert (info.user, info.host, info.pid) == ("alice", "box", 4242)
    assert info.name.endswith(f"-{number}")  # a generated name, unique by its number
    assert experiment in store.list_experiments()
    assert store.journal_position(batch.writer) == 20


def test_apply_keeps_a_given_name(store: Store) -> None:
    name = f"baseline-{secrets.token_hex(3)}"
    batch = _start(store, name=name)
    assert _record(store, batch).info.name == name


def test_params_keep_their_types(store: Store) -> None:
    params = {
        "int": 3,
        "big": 2**70,
        "neg": -1,
        "float": 0.1,
        "nan": NAN,
        "inf": -INF,
        "true": True,
        "false": False,
        "str": "adam",
        "empty": "",
        "none": None,
        "list": [1, 2.5, "x", None, [True]],
        "optimizer.lr": 1e-4,
        "unicode": "größe ✓",
        "nul": "a\x00b",  # PostgreSQL text cannot hold NUL; the value must still round-trip
    }
    batch = _start(store, params=params)
    got = _record(store, batch).params
    assert set(got) == set(params)
    for key, value in params.items():
        if key == "nan":
            assert math.isnan(got[key])
            continue
        assert got[key] == value, key
        assert type(got[key]) is type(value), key


def test_params_and_summary_are_overwritten_by_later_batches(store: Store) -> None:
    batch = _start(store, params={"lr": 0.1}, summary={"best": 1})
    store.apply(_next(batch, params={"lr": 0.2, "new": "x"}, summary={"best": "done"}))
    record = _record(store, batch)
    assert record.params == {"lr": 0.2, "new": "x"}
    assert record.summary == {"best": "done"}


def test_summary_values_are_typed(store: Store) -> None:
    summary = {"acc": 0.97, "epochs": 12, "ok": True, "note": "fine", "none": None, "cm": [[1, 0]]}
    batch = _start(store, summary=summary)
    got = _record(store, batch).summary
    assert got == summary
    assert type(got["epochs"]) is int and type(got["ok"]) is bool


def test_tags_are_added_and_removed(store: Store) -> None:
    batch = _start(store, tags_added=["b", "a", "c"])
    store.apply(_next(batch, tags_added=["a", "d"], tags_removed=["c"]))
    assert _record(store, batch).tags == ("a", "b", "d")


def test_notes(store: Store) -> None:
    batch = _start(store)
    store.apply(_next(batch, notes="first try\nwith two lines"))
    assert _record(store, batch).info.notes == "first try\nwith two lines"


def test_metrics_summary_and_history_with_nan_and_inf(store: Store) -> None:
    points = [(0, 3.0), (1, NAN), (2, -INF), (3, INF), (4, 1.5)]
    batch = _start(store, metrics={"loss": _columns(points), "allnan": _columns([(0, NAN)] * 3)})
    record = _record(store, batch)
    loss = record.metrics["loss"]
    assert (loss.last, loss.last_step, loss.count) == (1.5, 4, 5)
    assert (loss.min, loss.max) == (-INF, INF)
    assert loss.last_time == 1004.0
    allnan = record.metrics["allnan"]
    assert math.isnan(allnan.last)
    assert allnan.min is None and allnan.max is None and allnan.count == 3
    history = store.get_history(record.info.number, "loss")
    assert history.steps == [0, 1, 2, 3, 4]
    assert all(_same(a, b) for a, b in zip(history.values, [v for _, v in points], strict=True))
    assert history.times == [1000.0, 1001.0, 1002.0, 1003.0, 1004.0]


def test_last_value_nan_is_kept(store: Store) -> None:
    batch = _start(store, metrics={"x": _columns([(0, 1.0), (1, NAN)])})
    x = _record(store, batch).metrics["x"]
    assert math.isnan(x.last) and x.last_step == 1 and (x.min, x.max) == (1.0, 1.0)


def test_metric_summaries_stay_current_across_batches(store: Store) -> None:
    batch = _start(store, metrics={"loss": _columns([(0, 5.0), (1, 4.0)], t0=100.0)})
    store.apply(_next(batch, metrics={"loss": _columns([(2, 6.0), (3, 0.5), (4, 2.0)], t0=200.0)}))
    loss = _record(store, batch).metrics["loss"]
    assert (loss.last, loss.last_step, loss.min, loss.max, loss.count) == (2.0, 4, 0.5, 6.0, 5)


def test_out_of_order_and_repeated_steps_are_kept(store: Store) -> None:
    points = [(5, 1.0), (2, 2.0), (2, 3.0), (9, 4.0), (0, 5.0)]
    batch = _start(store, metrics={"m": _columns(points)})
    record = _record(store, batch)
    assert record.metrics["m"].last_step == 0  # the last logged, not the largest
    history = store.get_history(record.info.number, "m")
    assert history.steps == [5, 2, 2, 9, 0]
    assert history.values == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_history_bytes_round_trip(store: Store) -> None:
    values = [NAN, -0.0, 5e-324, 1.7976931348623157e308, -INF, 0.1]
    points = [(i * 3 - 2**40, v) for i, v in enumerate(values)]
    cols = _columns(points)
    batch = _start(store, metrics={"raw": cols})
    number = _record(store, batch).info.number
    steps, vals, times = store.get_history_bytes(number, "raw")
    assert steps == cols.steps.tobytes()
    assert vals == cols.values.tobytes()  # bit for bit: NaN payload and -0.0 included
    assert times == cols.times.tobytes()


def test_many_points_span_several_chunks(store: Store) -> None:
    n = 70_000
    cols = MetricColumns(
        array("q", range(n)), array("d", (float(i) for i in range(n))), array("d", [1.0] * n)
    )
    batch = _start(store, metrics={"big": cols})
    store.apply(_next(batch, finish=RunFinish("completed", 2.0)))
    record = _record(store, batch)
    assert record.metrics["big"].count == n
    assert (record.metrics["big"].min, record.metrics["big"].max) == (0.0, n - 1.0)
    history = store.get_history(record.info.number, "big")
    assert history.steps == list(range(n))


def test_chunks_of_a_finished_run_read_back_in_order(store: Store) -> None:
    batch = _start(store)
    for i in range(5):
        batch = _next(batch, metrics={"x": _columns([(i * 2, float(i)), (i * 2 + 1, -float(i))])})
        store.apply(batch)
    store.apply(_next(batch, finish=RunFinish("completed", 3.0)))
    history = store.get_history(_record(store, batch).info.number, "x")
    assert history.steps == list(range(10))
    assert history.values == [v for i in range(5) for v in (float(i), -float(i))]


def test_unknown_metric_names_the_known_ones(store: Store) -> None:
    batch = _start(store, metrics={"acc": _columns([(0, 1.0)])})
    number = _record(store, batch).info.number
    with pytest.raises(NotFoundError, match="acc"):
        store.get_history(number, "loss")
    assert store.metric_keys(number) == ["acc"]


def test_artifacts(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(b"weights" * 1000)
    sha, size = store.put_blob(source)
    art = Artifact("models/model.bin", sha, size, "output", 123.0)
    batch = _start(store, artifacts=[art])
    record = _record(store, batch)
    assert record.artifacts == (art,)
    assert store.blob_path(sha).read_bytes() == source.read_bytes()
    with pytest.raises(NotFoundError):
        store.blob_path("0" * 64)


def test_finish(store: Store) -> None:
    batch = _start(store)
    store.apply(_next(batch, finish=RunFinish("failed", 99.5, "Traceback: boom", 3)))
    info = _record(store, batch).info
    assert info.status is RunStatus.FAILED
    assert (info.end_time, info.error, info.exit_code) == (99.5, "Traceback: boom", 3)


def test_heartbeat(store: Store) -> None:
    batch = _start(store)
    later = _next(batch, heartbeat=12345.0)
    store.apply(later)
    assert _record(store, batch).info.heartbeat == 12345.0
    # A heartbeat-only batch at an already applied position still moves the heartbeat.
    store.apply(WriteBatch(batch.run_uuid, batch.writer, later.position, heartbeat=23456.0))
    assert _record(store, batch).info.heartbeat == 23456.0


def test_batch_for_an_unknown_run_is_refused(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.apply(WriteBatch(str(uuid_mod.uuid4()), "w", 5, notes="x"))


def test_apply_many_writes_each_batch_as_apply_would_and_only_once(store: Store) -> None:
    experiment = _experiment()
    parent, child = str(uuid_mod.uuid4()), str(uuid_mod.uuid4())
    batches = [
        WriteBatch(
            run_uuid=run_uuid,
            writer=f"import-{run_uuid}",
            position=1,
            start=RunStart(
                uuid=run_uuid,
                experiment=experiment,
                name=name,
                start_time=1000.0 + i,
                parent_uuid=parent if run_uuid == child else None,
            ),
            params={"i": i},
            metrics={"loss": _columns([(0, 1.0 - i), (1, 0.5 - i)])},
            finish=RunFinish("completed", 1010.0 + i),
        )
        for i, (run_uuid, name) in enumerate([(parent, "outer"), (child, "inner")])
    ]
    numbers = store.apply_many(batches)
    assert numbers == [store.resolve_run(parent).number, store.resolve_run(child).number]
    records = store.get_records(numbers)
    assert [r.params for r in records] == [{"i": 0}, {"i": 1}]
    assert records[1].info.parent_uuid == parent
    assert list(store.get_history(numbers[1], "loss").values) == [0.0, -0.5]
    assert store.apply_many(batches) == numbers  # again: already there, nothing new
    assert store.get_records(numbers)[1].metrics["loss"].count == 2
    assert store.apply_many([]) == []


# -- exactly once ----------------------------------------------------------------------


def test_the_same_batch_applied_twice_counts_once(store: Store) -> None:
    batch = _start(store)
    metrics = _next(batch, metrics={"x": _columns([(0, 1.0), (1, 2.0)])}, tags_added=["t"])
    store.apply(metrics)
    store.apply(metrics)
    old = WriteBatch(batch.run_uuid, batch.writer, metrics.position - 5, metrics=metrics.metrics)
    store.apply(old)  # an older position of the same writer: already in the store
    record = _record(store, batch)
    assert record.metrics["x"].count == 2
    assert store.get_history(record.info.number, "x").steps == [0, 1]
    assert store.journal_position(batch.writer) == metrics.position


def test_creating_batch_applied_twice_makes_one_run(store: Store) -> None:
    experiment = _experiment()
    batch = _start(store, experiment=experiment)
    store.apply(batch)
    assert len(store.list_runs(experiment)) == 1


def test_two_writers_to_one_run_merge(store: Store) -> None:
    first = _start(store, metrics={"loss": _columns([(0, 4.0), (1, 3.0)], t0=100.0)})
    second = WriteBatch(
        first.run_uuid,
        f"{first.run_uuid}.other",
        position=7,
        metrics={"loss": _columns([(0, 9.0), (1, 0.5)], t0=150.0), "aux": _columns([(0, 1.0)])},
        summary={"from": "second"},
    )
    store.apply(second)
    # The first writer's later points win "last"; a writer's older points do not.
    store.apply(_next(first, metrics={"loss": _columns([(2, 2.0)], t0=200.0)}))
    store.apply(_next(second, metrics={"loss": _columns([(5, 7.0)], t0=120.0)}))
    record = _record(store, first)
    loss = record.metrics["loss"]
    assert (loss.count, loss.min, loss.max) == (6, 0.5, 9.0)
    assert (loss.last, loss.last_step, loss.last_time) == (2.0, 2, 200.0)
    assert record.metrics["aux"].count == 1
    assert record.summary == {"from": "second"}
    assert sorted(store.get_history(record.info.number, "loss").values) == [
        0.5,
        2.0,
        3.0,
        4.0,
        7.0,
        9.0,
    ]
    assert store.journal_position(first.writer) == 20
    assert store.journal_position(second.writer) == 17
    assert store.journal_position("never-seen") == 0


# -- resolving and listing -------------------------------------------------------------


def test_resolve_run_by_number_name_uuid_and_last(store: Store) -> None:
    name = f"named-{secrets.token_hex(4)}"
    batch = _start(store, name=name)
    info = store.resolve_run(batch.run_uuid)
    assert store.resolve_run(info.number).uuid == batch.run_uuid
    assert store.resolve_run(str(info.number)).uuid == batch.run_uuid
    assert store.resolve_run(name).uuid == batch.run_uuid
    assert store.resolve_run(batch.run_uuid[:8]).uuid == batch.run_uuid
    assert store.resolve_run(batch.run_uuid[:8].upper()).uuid == batch.run_uuid
    assert store.resolve_run("last").uuid == batch.run_uuid
    newer = _start(store)
    assert store.resolve_run("last").uuid == newer.run_uuid


def test_resolve_last_skips_deleted_runs(store: Store) -> None:
    older = _start(store)
    newer = _start(store)
    store.set_deleted([store.resolve_run(newer.run_uuid).number], True)
    assert store.resolve_run("last").uuid == older.run_uuid


def test_ambiguous_refs(store: Store) -> None:
    name = f"twin-{secrets.token_hex(4)}"
    _start(store, name=name)
    _start(store, name=name)
    with pytest.raises(AmbiguousRefError, match="use a number"):
        store.resolve_run(name)
    prefix = secrets.token_hex(4)
    for _ in range(2):
        _start(store, run_uuid=prefix + str(uuid_mod.uuid4())[8:])
    with pytest.raises(AmbiguousRefError, match="type more"):
        store.resolve_run(prefix)


def test_unknown_ref(store: Store) -> None:
    _start(store)
    with pytest.raises(NotFoundError) as info:
        store.resolve_run("no-such-run-anywhere")
    assert "no-such-run-anywhere" in str(info.value)
    with pytest.raises(NotFoundError):
        store.resolve_run(10**9)
    with pytest.raises(NotFoundError):
        store.resolve_run("ffffffff-ffff")


def test_list_runs_filters_by_experiment_newest_first(store: Store) -> None:
    mine, other = _experiment(), _experiment()
    a = _start(store, experiment=mine)
    _start(store, experiment=other)
    b = _start(store, experiment=mine)
    c = _start(store, experiment=mine)
    assert [r.uuid for r in store.list_runs(mine)] == [c.run_uuid, b.run_uuid, a.run_uuid]
    assert [r.uuid for r in store.list_runs(mine, limit=2)] == [c.run_uuid, b.run_uuid]
    assert [r.uuid for r in store.list_runs(mine, limit=2, offset=1)] == [b.run_uuid, a.run_uuid]
    assert len(store.list_runs(other)) == 1
    everything = [r.uuid for r in store.list_runs()]
    assert everything.index(c.run_uuid) < everything.index(a.run_uuid)
    assert store.list_runs(f"missing-{secrets.token_hex(3)}") == []


def test_list_runs_by_parent(store: Store) -> None:
    parent = _start(store)
    experiment = _experiment()
    child_uuid = str(uuid_mod.uuid4())
    child = WriteBatch(
        child_uuid,
        f"{child_uuid}.w",
        5,
        start=RunStart(child_uuid, experiment, "", 1.0, parent_uuid=parent.run_uuid),
    )
    store.apply(child)
    _start(store, experiment=experiment)
    assert [r.uuid for r in store.list_runs(parent_uuid=parent.run_uuid)] == [child_uuid]


def test_get_records_in_the_order_asked(store: Store) -> None:
    a = store.resolve_run(_start(store, params={"n": "a"}).run_uuid).number
    b = store.resolve_run(_start(store, params={"n": "b"}).run_uuid).number
    records = store.get_records([b, a, b])
    assert [r.params["n"] for r in records] == ["b", "a", "b"]
    assert store.get_records([]) == []
    with pytest.raises(NotFoundError):
        store.get_records([a, 10**9])


def test_search_runs_in_the_trash(store: Store) -> None:
    experiment = _experiment()
    kept = _start(store, experiment=experiment, params={"lr": 0.1})
    gone = [_start(store, experiment=experiment, params={"lr": lr}) for lr in (0.2, 0.3)]
    numbers = [store.resolve_run(b.run_uuid).number for b in (kept, *gone)]
    store.set_deleted(numbers[1:], True)
    assert store.search_runs(experiment=experiment) == ([numbers[0]], 1)
    trash = store.search_runs("params.lr > 0.1", "params.lr", experiment, deleted_only=True)
    assert trash == (numbers[1:], 2)
    page = store.search_runs(None, "-params.lr", experiment, limit=1, deleted_only=True)
    assert page == ([numbers[2]], 2)
    assert store.search_runs("params.lr < 0.2", None, experiment, deleted_only=True) == ([], 0)


def test_search_numbers_is_the_page_of_search_runs(store: Store) -> None:
    """The page without its total (what ``labkeep.runs`` asks) is the page with one, sorted
    and filtered alike, the trash left out unless asked for."""
    experiment = _experiment()
    batches = [_start(store, experiment=experiment, params={"lr": lr}) for lr in (0.1, 0.2, 0.3)]
    numbers = [store.resolve_run(b.run_uuid).number for b in batches]
    store.set_deleted([numbers[0]], True)
    for where, sort, limit in [
        ("params.lr > 0.05", "-params.lr", 1),
        ("params.lr > 0.05", "params.lr", None),
        (None, None, 5),
    ]:
        page, _ = store.search_runs(where, sort, experiment, limit=limit)
        assert store.search_numbers(where, sort, experiment, limit=limit) == page
    assert store.search_numbers(None, "params.lr", experiment) == numbers[1:]
    assert store.search_numbers(None, "params.lr", experiment, include_deleted=True) == numbers


def test_count_runs_per_experiment_leaves_out_the_trash(store: Store) -> None:
    first, second, empty = _experiment(), _experiment(), _experiment()
    _start(store, experiment=first)
    _start(store, experiment=first)
    _start(store, experiment=second)
    gone = _start(store, experiment=empty)
    store.set_deleted([store.resolve_run(gone.run_uuid).number], True)
    counts = store.count_runs_per_experiment()
    assert [(e, counts[e]) for e in counts if e in (first, second, empty)] == [
        (first, 2),
        (second, 1),
        (empty, 0),
    ]
    assert list(counts) == store.list_experiments()


def test_key_catalog_holds_every_key_of_the_store(store: Store) -> None:
    tag = secrets.token_hex(4)
    batch = _start(
        store,
        params={f"p{tag}": 1, f"nested.q{tag}": "x"},
        summary={f"s{tag}": 2.0},
        metrics={f"m{tag}": _columns([(0, 1.0)])},
    )
    catalog = store.get_key_catalog()
    assert {f"p{tag}", f"nested.q{tag}"} <= catalog.params
    assert f"m{tag}" in catalog.metrics and f"m{tag}" not in catalog.params
    assert f"s{tag}" in catalog.summaries
    store.set_deleted([store.resolve_run(batch.run_uuid).number], True)
    assert f"m{tag}" in store.get_key_catalog().metrics  # runs in the trash keep their keys
    later = _start(store, params={f"late{tag}": 1})
    assert f"late{tag}" in store.get_key_catalog().params  # read afresh, never cached
    assert store.resolve_run(later.run_uuid).experiment in store.count_runs_per_experiment()


# -- editing ---------------------------------------------------------------------------


def test_set_tags_and_notes(store: Store) -> None:
    batch = _start(store, tags_added=["keep", "drop"])
    number = store.resolve_run(batch.run_uuid).number
    store.set_tags(number, add=["new"], remove=["drop"])
    store.set_notes(number, "edited by hand")
    record = store.get_records([number])[0]
    assert record.tags == ("keep", "new")
    assert record.info.notes == "edited by hand"
    with pytest.raises(NotFoundError):
        store.set_tags(10**9, add=["x"])
    with pytest.raises(NotFoundError):
        store.set_notes(10**9, "x")


def test_delete_hides_and_restore_shows(store: Store) -> None:
    experiment = _experiment()
    keep = _start(store, experiment=experiment)
    gone = _start(store, experiment=experiment)
    number = store.resolve_run(gone.run_uuid).number
    store.set_deleted([number], True)
    assert [r.uuid for r in store.list_runs(experiment)] == [keep.run_uuid]
    shown = store.list_runs(experiment, include_deleted=True)
    assert [(r.uuid, r.deleted) for r in shown] == [(gone.run_uuid, True), (keep.run_uuid, False)]
    assert store.resolve_run(number).deleted  # still reachable by reference
    store.set_deleted([number], False)
    assert len(store.list_runs(experiment)) == 2


def _count_files(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root))


def test_purge_removes_only_trashed_runs_and_orphaned_blobs(store: Store, tmp_path: Path) -> None:
    shared_file, own_file = tmp_path / "shared.txt", tmp_path / "own.txt"
    shared_file.write_text(f"shared {secrets.token_hex(8)}")
    own_file.write_text(f"own {secrets.token_hex(8)}")
    shared = store.put_blob(shared_file)
    own = store.put_blob(own_file)
    doomed = _start(
        store,
        artifacts=[Artifact("a", *shared), Artifact("b", *own)],
        metrics={"x": _columns([(0, 1.0)])},
        params={"p": 1},
        tags_added=["t"],
    )
    keeper = _start(store, artifacts=[Artifact("a", *shared)])
    doomed_number = store.resolve_run(doomed.run_uuid).number
    keeper_number = store.resolve_run(keeper.run_uuid).number

    assert store.purge([doomed_number]) == 0  # not in the trash: kept
    assert store.resolve_run(doomed_number).uuid == doomed.run_uuid

    store.set_deleted([doomed_number], True)
    assert store.purge([doomed_number, keeper_number]) == 1
    with pytest.raises(NotFoundError):
        store.resolve_run(doomed.run_uuid)
    assert store.journal_position(doomed.writer) == 0
    with pytest.raises(NotFoundError):
        store.blob_path(own[0])  # only the purged run used it
    assert store.blob_path(shared[0]).exists()  # the keeper still uses it
    assert store.get_records([keeper_number])[0].artifacts[0].sha256 == shared[0]

    store.set_deleted([keeper_number], True)
    assert store.purge([keeper_number]) == 1
    with pytest.raises(NotFoundError):
        store.blob_path(shared[0])


def test_running_runs_and_mark_killed(store: Store) -> None:
    running = _start(store)
    done = _start(store)
    store.apply(_next(done, finish=RunFinish("completed", 50.0)))
    running_number = store.resolve_run(running.run_uuid).number
    done_number = store.resolve_run(done.run_uuid).number
    uuids = {r.uuid for r in store.running_runs()}
    assert running.run_uuid in uuids and done.run_uuid not in uuids
    store.mark_killed([running_number, done_number], [77.0, 88.0])
    killed = store.resolve_run(running_number)
    assert (killed.status, killed.end_time) == (RunStatus.KILLED, 77.0)
    finished = store.resolve_run(done_number)
    assert (finished.status, finished.end_time) == (RunStatus.COMPLETED, 50.0)
    assert running.run_uuid not in {r.uuid for r in store.running_runs()}


def test_blobs_are_stored_once_per_content(store: Store, tmp_path: Path) -> None:
    content = f"same bytes {secrets.token_hex(8)}".encode()
    paths = []
    for i in range(3):
        path = tmp_path / f"copy{i}.bin"
        path.write_bytes(content)
        paths.append(path)
    results = {store.put_blob(p) for p in paths}
    assert len(results) == 1
    sha, size = results.pop()
    assert size == len(content)
    blob = store.blob_path(sha)
    assert [p.name for p in blob.parent.iterdir()] == [blob.name]
    assert blob.read_bytes() == content


def _code_snapshot(store: Store, files: dict[str, Path]) -> dict[str, Any]:
    """A snapshot row as ``store_snapshot`` writes it: code files and their manifest as blobs,
    named only inside the JSON."""
    import json

    entries = []
    for rel, path in sorted(files.items()):
        sha, size = store.put_blob(path)
        entries.append({"path": rel, "sha256": sha, "size": size, "mode": 0o644})
    manifest = json.dumps(entries, sort_keys=True, separators=(",", ":")).encode()
    diff = store.put_bytes(f"diff {secrets.token_hex(8)}".encode())[0]
    return {
        "version": 1,
        "code": {"manifest": store.put_bytes(manifest)[0], "file_count": len(entries)},
        "git": {"diff_blob": diff},
        "environment": {},
    }


def test_purge_keeps_blobs_that_another_runs_snapshot_names(store: Store, tmp_path: Path) -> None:
    """A run that logged its own script as an artifact, purged, leaves the code of every
    other run of that script in place: snapshots' blobs count as references too."""
    script = tmp_path / "train.py"
    script.write_text(f"print('train {secrets.token_hex(8)}')\n")
    sha, size = store.put_blob(script)
    snapshot = _code_snapshot(store, {"train.py": script})
    doomed = _start(store, artifacts=[Artifact("train.py", sha, size)], snapshot=snapshot)
    other = _start(store, snapshot=_code_snapshot(store, {"train.py": script}))
    doomed_number = store.resolve_run(doomed.run_uuid).number
    other_number = store.resolve_run(other.run_uuid).number

    store.set_deleted([doomed_number], True)
    assert store.purge([doomed_number]) == 1
    kept = store.get_snapshot(other_number)
    assert kept is not None
    assert store.blob_path(sha).read_bytes() == script.read_bytes()
    assert store.blob_path(kept["code"]["manifest"]).exists()
    assert store.blob_path(kept["git"]["diff_blob"]).exists()

    # Once no run names it, the code goes with the last one.
    store.set_deleted([other_number], True)
    assert store.purge([other_number]) == 1
    for gone in (sha, kept["code"]["manifest"], kept["git"]["diff_blob"]):
        with pytest.raises(NotFoundError):
            store.blob_path(gone)


# -- run structure: group, job type, resume ----------------------------------------------


def _start_grouped(store: Store, experiment: str, group: str | None, job_type: str | None) -> int:
    run_uuid = str(uuid_mod.uuid4())
    grouped = WriteBatch(
        run_uuid=run_uuid,
        writer=f"{run_uuid}.{secrets.token_hex(6)}",
        position=10,
        start=RunStart(
            uuid=run_uuid,
            experiment=experiment,
            name="",
            start_time=time.time(),
            group=group,
            job_type=job_type,
        ),
    )
    return store.apply(grouped)


def test_group_and_job_type_round_trip(store: Store) -> None:
    experiment = _experiment()
    number = _start_grouped(store, experiment, "cv-5fold", "fold")
    info = store.resolve_run(number)
    assert (info.group, info.job_type) == ("cv-5fold", "fold")
    assert store.get_records([number])[0].info.group == "cv-5fold"
    listed = store.list_runs(experiment)
    assert [(r.group, r.job_type) for r in listed if r.number == number] == [("cv-5fold", "fold")]
    plain = _start(store, experiment=experiment)
    assert (_record(store, plain).info.group, _record(store, plain).info.job_type) == (None, None)


def test_runs_are_found_by_group_and_job_type(store: Store) -> None:
    experiment = _experiment()
    fold = _start_grouped(store, experiment, "cv-5fold", "fold")
    summary = _start_grouped(store, experiment, "cv-5fold", "summary")
    other = _start_grouped(store, experiment, "ablation", "fold")
    plain = store.resolve_run(_start(store, experiment=experiment).run_uuid).number

    def found(where: str) -> list[int]:
        return sorted(store.search_runs(where, experiment=experiment)[0])

    assert found("group == 'cv-5fold' and job_type == 'fold'") == [fold]
    assert found("group == 'cv-5fold'") == sorted([fold, summary])
    assert found("job_type != 'fold'") == [summary]  # a run without one matches neither way
    assert found("group == None") == [plain]
    assert found("group in ('ablation', 'cv-5fold')") == sorted([fold, summary, other])
    assert found("group.startswith('cv-')") == sorted([fold, summary])
    numbers, _ = store.search_runs(None, sort="group", experiment=experiment)
    assert numbers[-1] == plain  # runs without a group sort last
    assert numbers[0] == other


def test_a_resumed_run_runs_again_with_its_points_kept(store: Store) -> None:
    from labkeep.store._base import RunResume

    batch = _start(store, metrics={"x": _columns([(0, 1.0), (1, 2.0)])})
    store.apply(_next(batch, finish=RunFinish("failed", 50.0, "boom", 1)))
    writer = f"{batch.run_uuid}.{secrets.token_hex(6)}"
    resumed = WriteBatch(
        batch.run_uuid,
        writer,
        10,
        resume=RunResume(pid=777, host="other", time=60.0),
        metrics={"x": _columns([(2, 3.0)], t0=2000.0)},
    )
    store.apply(resumed)
    info = _record(store, batch).info
    assert info.status is RunStatus.RUNNING
    assert (info.end_time, info.error, info.exit_code) == (None, None, None)
    assert (info.pid, info.host) == (777, "other")
    store.apply(WriteBatch(batch.run_uuid, writer, 20, finish=RunFinish("completed", 70.0)))
    record = _record(store, batch)
    assert record.info.status is RunStatus.COMPLETED
    assert (record.metrics["x"].count, record.metrics["x"].last_step) == (3, 2)


# -- media -----------------------------------------------------------------------------


def _media(store: Store, key: str, step: int, kind: str = "image", n: int = 1) -> list[Any]:
    from labkeep.entities import MediaEntry

    entries = []
    for index in range(n):
        sha, size = store.put_bytes(f"{kind} {key} {step} {index} {secrets.token_hex(4)}".encode())
        entries.append(
            MediaEntry(key, step, index, kind, sha, size, 1000.0 + step, {"caption": f"s{step}"})
        )
    return entries


def test_media_by_key_and_step(store: Store) -> None:
    first = _media(store, "samples", 0, n=2) + _media(store, "w", 0, "histogram")
    batch = _start(store, media=first)
    number = store.resolve_run(batch.run_uuid).number
    later = _media(store, "samples", 1) + _media(store, "preds", 1, "table")
    store.apply(_next(batch, media=later))
    assert store.media_keys(number) == {"preds": "table", "samples": "image", "w": "histogram"}
    samples = store.list_media(number, "samples")
    assert [(m.step, m.index) for m in samples] == [(0, 0), (0, 1), (1, 0)]
    assert samples == [*first[:2], later[0]]
    assert store.blob_path(samples[2].sha256).read_bytes().startswith(b"image samples 1 0")
    assert store.list_media(number, "samples", step=1) == [later[0]]
    assert store.list_media(number, "samples", step=5) == []
    with pytest.raises(NotFoundError, match="its media: preds, samples, w"):
        store.list_media(number, "nope")
    # A step logged again holds what was logged last, the items of a longer list gone too.
    again = _media(store, "samples", 0)
    store.apply(_next(_next(batch), media=again))
    assert store.list_media(number, "samples", step=0) == again
    plain = _start(store)
    assert store.media_keys(store.resolve_run(plain.run_uuid).number) == {}


def test_purge_removes_a_runs_media_and_blobs_no_other_run_names(store: Store) -> None:
    own = _media(store, "samples", 0)
    shared = _media(store, "samples", 1)
    doomed = _start(store, media=own + shared)
    keeper = _start(store, media=shared)
    doomed_number = store.resolve_run(doomed.run_uuid).number
    store.set_deleted([doomed_number], True)
    assert store.purge([doomed_number]) == 1
    with pytest.raises(NotFoundError):
        store.blob_path(own[0].sha256)
    assert store.blob_path(shared[0].sha256).exists()
    keeper_number = store.resolve_run(keeper.run_uuid).number
    assert store.list_media(keeper_number, "samples") == shared


def _run_number(store: Store, batch: WriteBatch) -> int:
    return store.resolve_run(batch.run_uuid).number


def _start_child(store: Store, experiment: str, parent_uuid: str | None) -> WriteBatch:
    run_uuid = str(uuid_mod.uuid4())
    batch = WriteBatch(
        run_uuid=run_uuid,
        writer=f"{run_uuid}.{secrets.token_hex(6)}",
        position=10,
        start=RunStart(
            uuid=run_uuid,
            experiment=experiment,
            name="",
            start_time=time.time(),
            parent_uuid=parent_uuid,
        ),
    )
    store.apply(batch)
    return batch


def test_children_are_counted_by_status_and_top_level_runs_found(store: Store) -> None:
    experiment = _experiment()
    parent = _start_child(store, experiment, None)
    plain = _start_child(store, experiment, None)
    kids = [_start_child(store, experiment, parent.run_uuid) for _ in range(4)]
    grandkid = _start_child(store, experiment, kids[0].run_uuid)
    store.apply(_next(kids[0], finish=RunFinish("completed", time.time(), None, 0)))
    store.apply(_next(kids[1], finish=RunFinish("completed", time.time(), None, 0)))
    store.apply(_next(kids[2], finish=RunFinish("failed", time.time(), "boom", 1)))
    store.set_deleted([_run_number(store, kids[3])], True)  # the trash does not count
    counts = store.count_children([parent.run_uuid, plain.run_uuid, kids[0].run_uuid])
    assert counts == {
        parent.run_uuid: {"completed": 2, "failed": 1},
        kids[0].run_uuid: {"running": 1},
    }
    assert store.count_children([]) == {}
    top, _ = store.search_runs("parent == None", experiment=experiment, sort="number")
    assert top == [_run_number(store, parent), _run_number(store, plain)]
    found, _ = store.search_runs(f"parent == '{kids[0].run_uuid}'", experiment=experiment)
    assert found == [_run_number(store, grandkid)]
