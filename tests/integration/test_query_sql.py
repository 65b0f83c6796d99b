"""Each query construct against real SQLite and PostgreSQL databases: the runs it returns,
and the same answer from the Python evaluator.

The helpers at the top (``make_engine``, ``insert_records``, ``record``) are shared with
``test_query_properties.py`` and ``test_query_injection.py``.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import BACKENDS, PG_SERVER, drop_pg_schema, new_pg_schema
from labkeep.entities import MetricSummary, RunInfo, RunRecord, RunStatus
from labkeep.query import KeyCatalog, QueryError, parse_query, sort_records
from labkeep.query._evaluate import evaluate
from labkeep.store.sql import _schema as schema
from labkeep.store.sql._compile_query import compile_query, load_catalog, sort_clause

NOW = 1_700_000_000.0


# -- shared helpers --------------------------------------------------------------------------


def make_engine(backend: str, tmp: Path) -> Iterator[sa.Engine]:
    """A fresh database with the store's tables: a SQLite file, or a PostgreSQL schema of
    its own that is dropped afterwards."""
    if backend == "sqlite":
        engine = sa.create_engine(f"sqlite:///{tmp / 'query.db'}")
        schema.metadata.create_all(engine)
        yield engine
        engine.dispose()
        return
    name, _ = new_pg_schema()
    engine = sa.create_engine(
        PG_SERVER.replace("postgresql://", "postgresql+psycopg://", 1),
        connect_args={"options": f"-csearch_path={name}"},
    )
    try:
        schema.metadata.create_all(engine)
        yield engine
    finally:
        engine.dispose()
        drop_pg_schema(name)


def encode_value(value: Any) -> dict[str, Any]:
    """A typed value as the store writes it (NaN in ``num`` is NULL, as SQLite stores it)."""
    if isinstance(value, bool):
        return {"vtype": "bool", "num": float(value), "text": None, "json": json.dumps(value)}
    if isinstance(value, int):
        return {"vtype": "int", "num": float(value), "text": None, "json": json.dumps(value)}
    if isinstance(value, float):
        num = None if math.isnan(value) else value
        return {"vtype": "float", "num": num, "text": None, "json": json.dumps(value)}
    if isinstance(value, str):
        return {"vtype": "str", "num": None, "text": value, "json": json.dumps(value)}
    if value is None:
        return {"vtype": "null", "num": None, "text": None, "json": "null"}
    kind = "list" if isinstance(value, list) else "dict"
    return {"vtype": kind, "num": None, "text": None, "json": json.dumps(value)}


def _none_if_nan(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


@dataclass(frozen=True, slots=True)
class SnapshotRecord(RunRecord):
    """A record with its snapshot (the evaluator reads ``git.commit`` from it)."""

    snapshot: dict[str, Any] | None = None


def insert_records(conn: sa.Connection, records: list[RunRecord]) -> None:
    """Write ``records`` straight into the tables with Core inserts."""
    names = sorted({r.info.experiment for r in records})
    existing = dict(
        conn.execute(sa.select(schema.experiments.c.name, schema.experiments.c.id)).all()
    )
    for name in names:
        if name not in existing:
            existing[name] = conn.execute(
                sa.insert(schema.experiments).values(name=name, created=0.0)
            ).inserted_primary_key[0]
    run_rows, param_rows, summary_rows, metric_rows, tag_rows = [], [], [], [], []
    snapshot_rows: list[dict[str, Any]] = []
    for r in records:
        i = r.info
        run_rows.append(
            {
                "number": i.number,
                "uuid": i.uuid,
                "experiment_id": existing[i.experiment],
                "name": i.name,
                "status": str(i.status),
                "start_time": i.start_time,
                "end_time": i.end_time,
                "heartbeat": i.heartbeat,
                "username": i.user,
                "host": i.host,
            }
        )
        for key, value in r.params.items():
            param_rows.append({"run_number": i.number, "key": key, **encode_value(value)})
        for key, value in r.summary.items():
            summary_rows.append({"run_number": i.number, "key": key, **encode_value(value)})
        for key, m in r.metrics.items():
            metric_rows.append(
                {
                    "run_number": i.number,
                    "key": key,
                    "last": _none_if_nan(m.last),
                    "last_step": m.last_step,
                    "last_time": m.last_time,
                    "min": _none_if_nan(m.min),
                    "max": _none_if_nan(m.max),
                    "count": m.count,
                }
            )
        tag_rows.extend({"run_number": i.number, "tag": t} for t in r.tags)
        snapshot = getattr(r, "snapshot", None)
        if snapshot is not None:
            snapshot_rows.append({"run_number": i.number, "data": json.dumps(snapshot)})
    conn.execute(sa.insert(schema.runs), run_rows)
    for table, rows in (
        (schema.params, param_rows),
        (schema.summaries, summary_rows),
        (schema.metrics, metric_rows),
        (schema.tags, tag_rows),
        (schema.snapshots, snapshot_rows),
    ):
        if rows:
            conn.execute(sa.insert(table), rows)


def clear_tables(conn: sa.Connection) -> None:
    for table in (
        schema.snapshots,
        schema.tags,
        schema.metrics,
        schema.summaries,
        schema.params,
        schema.runs,
    ):
        conn.execute(sa.delete(table))


def record(
    number: int,
    name: str,
    *,
    experiment: str = "mnist",
    status: str = "completed",
    start: float = NOW - 3600,
    end: float | None = None,
    heartbeat: float | None = None,
    user: str = "ann",
    host: str = "h1",
    params: dict[str, Any] | None = None,
    metrics: dict[str, tuple[float, float | None, float | None, int, int]] | None = None,
    summary: dict[str, Any] | None = None,
    tags: tuple[str, ...] = (),
    snapshot: dict[str, Any] | None = None,
) -> RunRecord:
    """A run record; each metric is (last, min, max, count, last_step)."""
    info = RunInfo(
        number=number,
        uuid=str(uuid.UUID(int=number)),
        experiment=experiment,
        name=name,
        status=RunStatus(status),
        start_time=start,
        end_time=end,
        heartbeat=heartbeat,
        user=user,
        host=host,
    )
    summaries = {
        k: MetricSummary(k, last, step, start + 1, lo, hi, count)
        for k, (last, lo, hi, count, step) in (metrics or {}).items()
    }
    parts = (info, dict(params or {}), summaries, dict(summary or {}), tuple(tags))
    if snapshot is not None:
        return SnapshotRecord(*parts, snapshot=snapshot)
    return RunRecord(*parts)


def select_numbers(
    conn: sa.Connection, text: str, catalog: KeyCatalog | None, *, now: float = NOW
) -> set[int]:
    where = compile_query(parse_query(text, now=now), catalog)
    return {n for (n,) in conn.execute(sa.select(schema.runs.c.number).where(where))}


# -- the data these tests query --------------------------------------------------------------

RECORDS = [
    record(
        1,
        "resnet-a",
        end=NOW - 3000,
        params={
            "lr": 0.1,
            "optimizer": "adam",
            "layers": [64, 64],
            "flag": True,
            "my key": "x y",
            "optimizer.lr": 0.01,
        },
        metrics={"loss": (0.15, 0.1, 0.9, 10, 9), "val/loss": (0.3, 0.25, 1.0, 10, 9)},
        summary={"acc": 0.9},
        tags=("baseline",),
        snapshot={"git": {"commit": "abc123", "branch": "main", "dirty": True}},
    ),
    record(
        2,
        "resnet-b",
        status="failed",
        end=NOW - 1800,
        user="bob",
        params={"lr": 0.01, "optimizer": "sgd", "flag": 1},
        metrics={"loss": (math.nan, 0.2, 0.8, 5, 4)},
        snapshot={"git": {"commit": "def456", "branch": None, "dirty": False}},
    ),
    record(
        3,
        "vgg",
        experiment="cifar",
        status="running",
        start=NOW - 600,
        heartbeat=NOW - 60,
        host="h2",
        params={"lr": "0.1", "optimizer": None},
        snapshot={"git": {"error": "not a git repository"}},
        metrics={"acc": (0.5, 0.1, 0.5, 3, 2)},
        tags=("baseline", "x"),
    ),
    record(
        4,
        "ResNet-c",
        experiment="cifar",
        status="killed",
        start=NOW - 86400 * 3,
        end=NOW - 86400 * 3 + 30,
        params={"lr": 1, "name": "p"},
        tags=("prod",),
    ),
    record(
        5,
        "res_net%",
        end=NOW - 7200 + 120,
        start=NOW - 7200,
        params={"lr": 0.001, "flag": False, "optimizer": "Adam"},
        metrics={"loss": (0.05, 0.05, 0.05, 1, 0)},
    ),
]
CATALOG = KeyCatalog.from_records(RECORDS)


@pytest.fixture(scope="module", params=BACKENDS)
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sa.Engine]:
    for engine in make_engine(request.param, tmp_path_factory.mktemp("query")):
        with engine.begin() as conn:
            insert_records(conn, RECORDS)
        yield engine


CASES = [
    # params, metrics, summaries
    ("params.lr > 0.05", {1, 4}),
    ("params.lr >= 1e-3", {1, 2, 4, 5}),
    ("0.005 < params.lr <= 0.1", {1, 2}),
    ("params.lr == 1", {4}),
    ("params.lr == '0.1'", {3}),
    ("params.lr != 0.1", {2, 3, 4, 5}),
    ("not params.lr > 0.05", {2, 3, 5}),
    ("params.flag == True", {1, 2}),
    ("params.flag == 0", {5}),
    ("params.optimizer == None", {3}),
    ("params.optimizer is not None", {1, 2, 5}),
    ("params.optimizer != 'adam'", {2, 3, 5}),
    ("params.optimizer in ['adam', 'sgd']", {1, 2}),
    ("params.optimizer not in ['adam', 'sgd']", {3, 5}),
    ("params.lr in [1, '0.1', None]", {3, 4}),
    ("params['my key'] == 'x y'", {1}),
    ("params.optimizer.lr < 0.05", {1}),
    ("params.layers == 1", set()),
    ("params.layers != 1", {1}),
    ("'flag' in params", {1, 2, 5}),
    ("'flag' not in params", {3, 4}),
    ("metrics.loss < 0.2", {1, 5}),
    ("metrics.loss != 0.15", {2, 5}),
    ("not metrics.loss < 0.2", {2, 3, 4}),
    ("metrics.loss.min <= 0.1", {1, 5}),
    ("metrics.loss.max > 0.85", {1}),
    ("metrics.loss.count >= 5", {1, 2}),
    ("metrics.loss.step == 4", {2}),
    ("metrics['val/loss'] < 0.5", {1}),
    ("'acc' in metrics", {3}),
    ("summary.acc > 0.5", {1}),
    ("git.commit == 'abc123'", {1}),
    ("git.commit.startswith('de')", {2}),
    ("git.commit != 'abc123'", {2}),
    ("git.branch == None", {2}),
    ("git.branch != 'main'", {2}),
    ("git.dirty == True", {1}),
    ("not git.dirty == True", {2, 3, 4, 5}),
    ("git.dirty == 0", {2}),
    # bare names
    ("lr < 0.05 and optimizer == 'sgd'", {2}),
    ("loss < 0.2", {1, 5}),
    ("loss.min < 0.1", {5}),
    # attributes
    ("status == 'failed' or 'baseline' in tags", {1, 2, 3}),
    ("status in ['running', 'killed']", {3, 4}),
    ("status != 'completed'", {2, 3, 4}),
    ("experiment == 'mnist'", {1, 2, 5}),
    ("experiment != 'mnist'", {3, 4}),
    ("experiment.startswith('ci')", {3, 4}),
    ("number >= 4", {4, 5}),
    ("number in [1, 3]", {1, 3}),
    ("user == 'bob'", {2}),
    ("host == 'h2'", {3}),
    ("started > '2h ago'", {1, 2, 3}),
    ("started < '1 day ago'", {4}),
    (f"started >= {NOW - 3600}", {1, 2, 3}),
    ("ended == None", {3}),
    ("ended != None", {1, 2, 4, 5}),
    ("ended > '1h ago'", {1, 2}),
    ("not ended > '1h ago'", {3, 4, 5}),
    ("duration > '10m'", {2}),
    ("duration >= '10m'", {1, 2}),
    ("duration <= 60", {4}),
    ("duration < 1000 and status == 'running'", {3}),
    ("'x' not in tags", {1, 2, 4, 5}),
    ("'prod' in tags and not 'baseline' in tags", {4}),
    # strings
    ("name.startswith('res')", {1, 2, 5}),
    ("name.startswith('Res')", {4}),
    ("name.endswith('-b')", {2}),
    ("name.contains('net-')", {1, 2}),
    ("'net' in name", {1, 2, 5}),
    ("'net' not in name", {3, 4}),
    ("name.like('res%')", {1, 2, 5}),
    ("name.like('res_net%')", {5}),
    ("name.like('res_et%')", {1, 2}),
    ("name.like('res\\\\_net\\\\%')", {5}),
    ("name.like('%-_')", {1, 2, 4}),
    ("name.matches('^res.*-[ab]$')", {1, 2}),
    ("not name.matches('net')", {3, 4}),
    ("params.optimizer.startswith('a')", {1}),
    ("'a' not in params.optimizer", {2}),
    ("not params.optimizer.startswith('a')", {2, 3, 4, 5}),
    ("name > 'r'", {1, 2, 5, 3}),
    ("name < 'resnet-b'", {1, 4, 5}),
    ("params.optimizer >= 'a'", {1, 2}),
    # logic
    ("(status == 'failed' or number == 1) and not loss > 0.1", {2}),
    ("not (lr > 0.05 or 'baseline' in tags)", {2, 5}),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_construct_selects_the_right_runs(
    db: sa.Engine, text: str, expected: set[int]
) -> None:
    with db.connect() as conn:
        assert select_numbers(conn, text, CATALOG) == expected
    query = parse_query(text, now=NOW)
    assert {r.info.number for r in RECORDS if evaluate(query, r, catalog=CATALOG)} == expected


SORTS = [
    ("metrics.loss", [5, 1, 2, 3, 4]),
    ("-metrics.loss", [1, 5, 2, 3, 4]),
    ("-loss.min", [2, 1, 5, 3, 4]),
    ("params.lr", [5, 2, 1, 4, 3]),
    ("-params.lr", [4, 1, 2, 5, 3]),
    ("params.optimizer desc", [2, 1, 5, 3, 4]),
    ("name", [4, 5, 1, 2, 3]),
    ("-name", [3, 2, 1, 5, 4]),
    ("experiment, -number", [4, 3, 5, 2, 1]),
    ("-ended", [2, 1, 5, 4, 3]),
    ("duration", [4, 5, 3, 1, 2]),
    ("-started", [3, 1, 2, 5, 4]),
    (["status", "-user", "number"], [1, 5, 2, 4, 3]),
    ("-git.commit", [2, 1, 3, 4, 5]),
]


@pytest.mark.parametrize(("spec", "expected"), SORTS, ids=[str(s[0]) for s in SORTS])
def test_sorting_puts_runs_without_the_key_last(
    db: sa.Engine, spec: Any, expected: list[int]
) -> None:
    # Ties are broken by number, as the Python sort (stable, over runs in number order) does.
    query = sa.select(schema.runs.c.number).order_by(
        *sort_clause(spec, CATALOG), schema.runs.c.number
    )
    with db.connect() as conn:
        assert [n for (n,) in conn.execute(query)] == expected
    assert [r.info.number for r in sort_records(RECORDS, spec, catalog=CATALOG)] == expected


def test_filter_and_sort_together_with_a_limit(db: sa.Engine) -> None:
    where = compile_query(parse_query("metrics.loss < 0.2 and params.lr > 0.0001"), CATALOG)
    query = (
        sa.select(schema.runs.c.number)
        .where(where)
        .order_by(*sort_clause("metrics.loss", CATALOG))
        .limit(1)
    )
    with db.connect() as conn:
        assert conn.execute(query).scalars().all() == [5]


def test_cached_statements_bind_each_pattern_afresh(db: sa.Engine) -> None:
    # The same query shape twice: SQLAlchemy's statement cache must not reuse the old pattern.
    with db.connect() as conn:
        assert select_numbers(conn, "name.like('vg%')", CATALOG) == {3}
        assert select_numbers(conn, "name.like('Res%')", CATALOG) == {4}
        assert select_numbers(conn, "name > 'vgh'", CATALOG) == set()
        assert select_numbers(conn, "name > 'v'", CATALOG) == {3}


def test_load_catalog_reads_every_key(db: sa.Engine) -> None:
    with db.connect() as conn:
        assert load_catalog(conn) == CATALOG


def test_unknown_explicit_keys_are_reported_with_a_suggestion(db: sa.Engine) -> None:
    with pytest.raises(QueryError, match=r"unknown metric 'los'; did you mean metrics.loss\?"):
        compile_query(parse_query("metrics.los < 1"), CATALOG)
    with pytest.raises(QueryError, match="both a param and a metric"):
        compile_query(parse_query("lr < 1"), KeyCatalog.of(["lr"], ["lr"]))


def test_sqlite_filter_uses_the_key_indexes(tmp_path: Path) -> None:
    for engine in make_engine("sqlite", tmp_path):
        where = compile_query(parse_query("metrics.loss < 0.1 and params.lr > 0.01"), CATALOG)
        query = sa.select(schema.runs.c.number).where(where)
        sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
        with engine.connect() as conn:
            plan = " ".join(row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
        assert "ix_metrics_key_last" in plan
        assert "ix_params_key_num" in plan
