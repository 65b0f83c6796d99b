"""The compiled SQL text as the store runs it: on the driver's own DB-API connection
(``sqlite3`` with labkeep's pragmas and ``regexp``, ``psycopg`` with ``%s`` placeholders),
not through SQLAlchemy. Random queries and sorts agree with the Python evaluator, and hostile
strings stay values."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from test_query_injection import HOSTILE
from test_query_injection import RUNS as HOSTILE_RUNS
from test_query_properties import CATALOG, NOW, RUNS, SETTINGS, queries, sort_fields
from test_query_sql import BACKENDS, insert_records, make_engine
from test_search_runs import write_run

from labkeep.entities import RunRecord
from labkeep.query import KeyCatalog, parse_query, resolve, sort_records
from labkeep.query._evaluate import evaluate
from labkeep.store import locate_store, open_store
from labkeep.store.sql._compile_query import Sql, compile_query, fetch_all, fmt, join, sort_clause
from labkeep.store.sql._connect import Connection, configure_sqlite


def dbapi(
    backend: str, tmp: Any, records: list[RunRecord]
) -> Iterator[tuple[Connection, sa.Engine]]:
    for engine in make_engine(backend, tmp):
        with engine.begin() as conn:
            insert_records(conn, records)
        raw = engine.raw_connection()
        driver = raw.driver_connection
        if backend == "sqlite":
            configure_sqlite(driver)  # labkeep's own regexp, as on the store's connection
        yield Connection(driver, "sqlite" if backend == "sqlite" else "postgresql"), engine
        raw.close()


@pytest.fixture(scope="module", params=BACKENDS)
def random_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Connection]:
    for conn, _ in dbapi(request.param, tmp_path_factory.mktemp("dbapi"), RUNS):
        yield conn


@pytest.fixture(scope="module", params=BACKENDS)
def hostile_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Connection]:
    for conn, _ in dbapi(request.param, tmp_path_factory.mktemp("hostile"), HOSTILE_RUNS):
        yield conn


def numbers(conn: Connection, where: Sql) -> set[int]:
    try:
        rows = fetch_all(conn, fmt("SELECT runs.number FROM runs WHERE {}", where))
    finally:
        conn.raw.rollback()
    return {n for (n,) in rows}


@SETTINGS
@given(text=queries)
def test_dbapi_and_python_agree_on_filters(random_db: Connection, text: str) -> None:
    query = resolve(parse_query(text, now=NOW), CATALOG)
    expected = {r.info.number for r in RUNS if evaluate(query, r, catalog=CATALOG)}
    for probe in (False, True):
        where = compile_query(query, CATALOG, probe=probe).sql(random_db.dialect)
        assert numbers(random_db, where) == expected, (text, probe)


def ordered(conn: Connection, spec: list[str], catalog: KeyCatalog) -> list[int]:
    order = [c.sql(conn.dialect) for c in sort_clause(spec, catalog)]
    statement = fmt("SELECT runs.number FROM runs ORDER BY {}, runs.number", join(", ", order))
    try:
        return [n for (n,) in fetch_all(conn, statement)]
    finally:
        conn.raw.rollback()


@SETTINGS
@given(keys=st.lists(st.tuples(sort_fields, st.booleans()), min_size=1, max_size=3))
def test_dbapi_and_python_agree_on_sorts(
    random_db: Connection, keys: list[tuple[str, bool]]
) -> None:
    spec = [("-" if desc else "") + field for field, desc in keys]
    expected = [r.info.number for r in sort_records(RUNS, spec, catalog=CATALOG)]
    assert ordered(random_db, spec, CATALOG) == expected, spec


@pytest.mark.parametrize("index", range(len(HOSTILE)), ids=[repr(h) for h in HOSTILE])
def test_hostile_strings_stay_values(hostile_db: Connection, index: int) -> None:
    catalog = KeyCatalog.from_records(HOSTILE_RUNS)
    q = repr(HOSTILE[index])
    for text in (
        f"name == {q}",
        f"name != {q}",
        f"params[{q}] == {q}",
        f"params.plain in [{q}, 'nothing']",
        f"metrics[{q}] >= 0 and summary[{q}] >= 0",
        f"{q} in tags and {q} in params",
        f"name.like({q}) or {q} in params.plain",
        f"not params.plain.startswith({q}) and not name.endswith({q})",
    ):
        query = parse_query(text)
        where = compile_query(query, catalog).sql(hostile_db.dialect)
        expected = {r.info.number for r in HOSTILE_RUNS if evaluate(query, r, catalog=catalog)}
        assert numbers(hostile_db, where) == expected, text
    spec = [f"-params[{q}]", "-params.plain"]
    expected_order = [r.info.number for r in sort_records(HOSTILE_RUNS, spec, catalog=catalog)]
    assert ordered(hostile_db, spec, catalog) == expected_order
    assert numbers(hostile_db, Sql("1 = 1")) == {r.info.number for r in HOSTILE_RUNS}


def test_a_store_searches_with_regexes_on_its_own_connection(tmp_path: Path) -> None:
    """The store's SQLite connection has ``regexp`` (SQLAlchemy is not there to add it)."""
    store = open_store(locate_store(str(tmp_path / "store")))
    try:
        for i, name in enumerate(["resnet", "vit", "res-2"], start=1):
            write_run(store, i, params={"arch": name})
        assert store.search_runs("params.arch.matches('^res')") == ([3, 1], 2)
        assert store.search_runs("not params.arch.matches('t$')", "params.arch") == ([3], 1)
        assert getattr(store, "_engine", None) is None  # no SQLAlchemy engine made
    finally:
        store.close()
