"""The Store contract through the REST backend: a RestStore talking to a real ``labkeep
server`` (uvicorn on 127.0.0.1, a temporary SQLite store) must answer as SqlStore does.

Every test of the shared contract suite (``test_store_contract.py``) runs here again with
``store`` a RestStore. The checks below cover every
Store method on both backends side by side.
"""

from __future__ import annotations

import math
import secrets
import time
import uuid as uuid_mod
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labkeep_server import ServerProcess, isolated
from test_store_contract import *  # type: ignore[import-not-found,unused-ignore]  # noqa: F403

from labkeep.entities import Artifact, RunStatus
from labkeep.errors import AmbiguousRefError, NotFoundError
from labkeep.store import Store, locate_store, open_store
from labkeep.store._base import MetricColumns, RunFinish, RunStart, WriteBatch
from labkeep.store.rest import RestStore

__all__ = ["isolated"]


@pytest.fixture(scope="module")
def rest_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(str(tmp_path_factory.mktemp("rest") / "store")).start()
    yield proc
    proc.kill()


@pytest.fixture
def store(rest_server: ServerProcess, isolated: None) -> Iterator[Store]:
    """What the shared contract suite runs against: a RestStore on the module's server."""
    opened = open_store(locate_store(rest_server.url))
    assert isinstance(opened, RestStore)
    yield opened
    opened.close()


@pytest.fixture(params=["sqlite", "rest"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, rest_server: ServerProcess, isolated: None
) -> Iterator[Store]:
    """Each check below runs on a local SqlStore and on the RestStore."""
    uri = str(tmp_path / "local") if request.param == "sqlite" else rest_server.url
    opened = open_store(locate_store(uri))
    yield opened
    opened.close()


def _start(store: Store, experiment: str | None = None, **fields: Any) -> WriteBatch:
    run_uuid = str(uuid_mod.uuid4())
    batch = WriteBatch(
        run_uuid=run_uuid,
        writer=f"{run_uuid}.{secrets.token_hex(6)}",
        position=10,
        start=RunStart(
            run_uuid, experiment or f"exp-{secrets.token_hex(4)}", "", time.time(), "ann", "h", 7
        ),
        **fields,
    )
    store.apply(batch)
    return batch


def _next(batch: WriteBatch, **fields: Any) -> WriteBatch:
    return WriteBatch(batch.run_uuid, batch.writer, batch.position + 10, **fields)


def _cols(values: list[float], first_step: int = 0) -> MetricColumns:
    n = len(values)
    return MetricColumns(
        array("q", range(first_step, first_step + n)),
        array("d", values),
        array("d", [1000.0 + first_step + i for i in range(n)]),
    )


def _number(store: Store, batch: WriteBatch) -> int:
    return store.resolve_run(batch.run_uuid).number


def test_apply_params_summary_tags_notes_snapshot_output(backend: Store) -> None:
    params = {"lr": 0.1, "big": 2**70, "on": True, "name": "adam", "none": None, "list": [1, "a"]}
    params["nan"] = math.nan
    batch = _start(
        backend,
        params=params,
        summary={"best": -math.inf},
        tags_added=["a", "b"],
        notes="first",
        snapshot={"git": {"commit": "abc"}, "seed": 3},
        output=[("stdout", 1.5, "hello"), ("stderr", 2.5, "ünïcode")],
    )
    number = backend.apply(_next(batch, tags_removed=["a"], notes="second"))
    record = backend.get_records([number])[0]
    assert record.params.keys() == params.keys()
    assert math.isnan(record.params.pop("nan"))
    assert record.params == {k: v for k, v in params.items() if k != "nan"}
    assert record.summary == {"best": -math.inf}
    assert record.tags == ("b",)
    assert record.info.notes == "second"
    assert backend.get_snapshot(number) == {"git": {"commit": "abc"}, "seed": 3}
    lines = backend.get_output(number)
    assert [(line.stream, line.time, line.text) for line in lines] == [
        ("stdout", 1.5, "hello"),
        ("stderr", 2.5, "ünïcode"),
    ]
    assert backend.get_output(number, after=lines[0].id) == lines[1:]
    assert backend.get_output(number, limit=1) == lines[:1]
    assert backend.get_snapshot(_number(backend, _start(backend))) is None


def test_metrics_history_and_summaries(backend: Store) -> None:
    values = [3.0, math.nan, math.inf, -1.5, 2.0]
    batch = _start(backend, metrics={"loss": _cols(values), "sys/cpu percent": _cols([1.0])})
    number = backend.apply(_next(batch, metrics={"loss": _cols([0.5], first_step=9)}))
    summary = backend.get_records([number])[0].metrics["loss"]
    assert (summary.count, summary.min, summary.max, summary.last, summary.last_step) == (
        6,
        -1.5,
        math.inf,
        0.5,
        9,
    )
    history = backend.get_history(number, "loss")
    assert history.steps == [0, 1, 2, 3, 4, 9]
    assert history.values[0] == 3.0 and math.isnan(history.values[1])
    assert history.values[2:] == [math.inf, -1.5, 2.0, 0.5]
    steps, vals, times = backend.get_history_bytes(number, "sys/cpu percent")
    assert (len(steps), len(vals), len(times)) == (8, 8, 8)
    assert backend.metric_keys(number) == ["loss", "sys/cpu percent"]
    with pytest.raises(NotFoundError, match="loss"):
        backend.get_history(number, "missing")


def test_large_batch_round_trips(backend: Store) -> None:
    n = 200_000
    cols = MetricColumns(
        array("q", range(n)), array("d", [i * 0.5 for i in range(n)]), array("d", [1.0] * n)
    )
    number = _number(backend, _start(backend, metrics={"x": cols}))
    history = backend.get_history_bytes(number, "x")
    assert history == (cols.steps.tobytes(), cols.values.tobytes(), cols.times.tobytes())


def test_apply_is_idempotent_per_writer_and_position(backend: Store) -> None:
    batch = _start(backend)
    again = _next(batch, metrics={"x": _cols([1.0, 2.0])})
    backend.apply(again)
    backend.apply(again)
    backend.apply(WriteBatch(batch.run_uuid, batch.writer, 15, metrics={"x": _cols([9.0])}))
    number = _number(backend, batch)
    assert backend.get_records([number])[0].metrics["x"].count == 2
    assert backend.journal_position(batch.writer) == 20
    assert backend.journal_position(f"unknown-{secrets.token_hex(4)}") == 0
    backend.apply(batch)  # the creating batch again: still one run
    assert len(backend.list_runs(backend.resolve_run(number).experiment)) == 1
    with pytest.raises(NotFoundError):
        backend.apply(WriteBatch(str(uuid_mod.uuid4()), "w", 1, notes="x"))


def test_finish_heartbeat_running_and_mark_killed(backend: Store) -> None:
    running = _start(backend)
    done = _start(backend)
    backend.apply(_next(running, heartbeat=4242.0))
    backend.apply(_next(done, finish=RunFinish("failed", 99.5, "boom", 3)))
    info = backend.resolve_run(done.run_uuid)
    assert (info.status, info.end_time, info.error, info.exit_code) == (
        RunStatus.FAILED,
        99.5,
        "boom",
        3,
    )
    assert backend.resolve_run(running.run_uuid).heartbeat == 4242.0
    uuids = {r.uuid for r in backend.running_runs()}
    assert running.run_uuid in uuids and done.run_uuid not in uuids
    numbers = [_number(backend, running), _number(backend, done)]
    backend.mark_killed(numbers, [77.0, 88.0])
    assert backend.resolve_run(numbers[0]).status is RunStatus.KILLED
    assert backend.resolve_run(numbers[1]).end_time == 99.5


def test_resolve_and_list(backend: Store) -> None:
    experiment = f"exp-{secrets.token_hex(4)}"
    a = _start(backend, experiment)
    b = _start(backend, experiment)
    info = backend.resolve_run(b.run_uuid)
    assert backend.resolve_run(info.number) == info
    assert backend.resolve_run(str(info.number)) == info
    assert backend.resolve_run(info.name) == info
    assert backend.resolve_run(b.run_uuid[:8]) == info
    assert backend.resolve_run("last") == info
    assert [r.uuid for r in backend.list_runs(experiment)] == [b.run_uuid, a.run_uuid]
    assert [r.uuid for r in backend.list_runs(experiment, limit=1, offset=1)] == [a.run_uuid]
    assert experiment in backend.list_experiments()
    with pytest.raises(NotFoundError, match="no-such"):
        backend.resolve_run("no-such/../run")
    child_uuid = str(uuid_mod.uuid4())
    backend.apply(
        WriteBatch(
            child_uuid,
            "child.w",
            3,
            start=RunStart(child_uuid, experiment, "kid", 1.0, parent_uuid=a.run_uuid),
        )
    )
    assert [r.uuid for r in backend.list_runs(parent_uuid=a.run_uuid)] == [child_uuid]
    twin = f"twin-{secrets.token_hex(3)}"
    for _ in range(2):
        uuid = str(uuid_mod.uuid4())
        backend.apply(WriteBatch(uuid, f"{uuid}.w", 1, start=RunStart(uuid, experiment, twin, 2.0)))
    with pytest.raises(AmbiguousRefError, match="use a number"):
        backend.resolve_run(twin)


def test_records_in_order_and_unknown_numbers(backend: Store) -> None:
    a = _number(backend, _start(backend, params={"n": "a"}))
    b = _number(backend, _start(backend, params={"n": "b"}))
    assert [r.params["n"] for r in backend.get_records([b, a, b])] == ["b", "a", "b"]
    assert backend.get_records([]) == []
    with pytest.raises(NotFoundError):
        backend.get_records([a, 10**9])


def test_edits_delete_restore_purge(backend: Store, tmp_path: Path) -> None:
    experiment = f"exp-{secrets.token_hex(4)}"
    own = tmp_path / "own.bin"
    own.write_bytes(secrets.token_bytes(3000))
    sha, size = backend.put_blob(own)
    keep = _start(backend, experiment)
    gone = _start(backend, experiment, artifacts=[Artifact("model.bin", sha, size, "output", 5.0)])
    number = _number(backend, gone)
    backend.set_tags(number, add=["x", "y"], remove=[])
    backend.set_tags(number, remove=["x"])
    backend.set_notes(number, "by hand")
    record = backend.get_records([number])[0]
    assert (record.tags, record.info.notes) == (("y",), "by hand")
    assert record.artifacts == (Artifact("model.bin", sha, size, "output", 5.0),)
    with pytest.raises(NotFoundError):
        backend.set_tags(10**9, add=["x"])
    assert backend.purge([number]) == 0  # not in the trash
    backend.set_deleted([number], True)
    assert [r.uuid for r in backend.list_runs(experiment)] == [keep.run_uuid]
    assert [r.uuid for r in backend.list_runs(experiment, deleted_only=True)] == [gone.run_uuid]
    assert len(backend.list_runs(experiment, include_deleted=True)) == 2
    assert backend.blob_path(sha).read_bytes() == own.read_bytes()
    assert backend.purge([number]) == 1
    with pytest.raises(NotFoundError):
        backend.resolve_run(gone.run_uuid)
    with pytest.raises(NotFoundError):
        backend.blob_path(sha)  # purged with its only run, even if cached locally


def test_blobs_by_content(backend: Store, tmp_path: Path) -> None:
    data = f"same {secrets.token_hex(8)}".encode()
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"copy{i}")
        paths[-1].write_bytes(data)
    results = {backend.put_blob(p) for p in paths}
    assert results == {backend.put_bytes(data)}
    sha, size = results.pop()
    assert size == len(data)
    assert backend.put_blob(paths[0], sha256=sha) == (sha, size)
    assert backend.blob_path(sha).read_bytes() == data
    with pytest.raises(NotFoundError):
        backend.blob_path("0" * 64)
    with pytest.raises(ValueError, match="not a file"):
        backend.put_blob(tmp_path / "missing")


def test_the_json_form_of_a_batch_is_applied_like_the_binary_one(store: Store) -> None:
    import httpx

    from labkeep.store.rest._codec import encode_batch_json

    batch = _start(store)
    later = _next(batch, metrics={"x": _cols([1.5, math.nan])}, params={"p": [1, 2]})
    response = httpx.post(
        store.uri + "/api/v1/store/apply",
        content=encode_batch_json(later),
        headers={"content-type": "application/json"},
    )
    assert response.json() == {"number": _number(store, batch)}
    record = store.get_records([_number(store, batch)])[0]
    assert record.params == {"p": [1, 2]}
    history = store.get_history(record.info.number, "x")
    assert history.steps == [0, 1] and history.values[0] == 1.5 and math.isnan(history.values[1])


def test_a_bad_filter_raises_the_query_error_on_every_backend(backend: Store) -> None:
    """Callers that expect a filter to fail on a key no run has yet (a sweep asking for
    a trial's attempt) catch QueryError: the server's answer must raise it too."""
    from labkeep.query import QueryError

    _start(backend)
    with pytest.raises(QueryError, match="unknown summary key 'nope'") as raised:
        backend.search_numbers(where="summary['nope'] == 'x'")
    assert str(raised.value).count("unknown summary key") == 1
