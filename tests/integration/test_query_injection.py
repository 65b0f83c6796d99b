"""Hostile strings in values, keys, tags and patterns reach the database only as bound
parameters: on both backends the tables stay intact and the answers stay right."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from test_query_sql import BACKENDS, insert_records, make_engine, record

from labkeep.query import KeyCatalog, QueryError, parse_query, sort_records
from labkeep.query._evaluate import evaluate
from labkeep.store.sql import _schema as schema
from labkeep.store.sql._compile_query import compile_query, sort_clause

HOSTILE = [
    "'; DROP TABLE runs; --",
    '"; DROP TABLE runs; --',
    "Robert'); DROP TABLE params;--",
    "' OR '1'='1",
    "') OR 1=1 --",
    "\\",
    "\\'",
    "\\\\%",
    "%",
    "_",
    "%_%",
    "a%b_c",
    "[*?]",
    "*",
    "' || (SELECT count(*) FROM runs) || '",
    'x" COLLATE "C',
    "$1",
    "%(key)s",
    "%s",
    ":key",
    "?",
    "\n",
    "\t\r",
    "日本語",
    "😀",
    "\u210c\u200bzero-width",
    "\u2028line separator",
    "NULL",
]
RUNS = [
    record(
        i + 1,
        h,
        params={h: h, "plain": h},
        metrics={h: (float(i), 0.0, float(i), 1, 0)},
        summary={h: i},
        tags=(h,),
    )
    for i, h in enumerate(HOSTILE)
]
CATALOG = KeyCatalog.from_records(RUNS)


@pytest.fixture(scope="module", params=BACKENDS)
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sa.Engine]:
    for engine in make_engine(request.param, tmp_path_factory.mktemp("inject")):
        with engine.begin() as conn:
            insert_records(conn, RUNS)
        yield engine
        with engine.connect() as conn:
            counts = {
                t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
                for t in (schema.runs, schema.params, schema.metrics, schema.summaries, schema.tags)
            }
        assert counts == {
            "runs": len(HOSTILE),
            "params": 2 * len(HOSTILE),
            "metrics": len(HOSTILE),
            "summaries": len(HOSTILE),
            "tags": len(HOSTILE),
        }


def numbers(engine: sa.Engine, text: str) -> set[int]:
    query = parse_query(text)
    where = compile_query(query, CATALOG)
    with engine.connect() as conn:
        got = {n for (n,) in conn.execute(sa.select(schema.runs.c.number).where(where))}
    # The evaluator is the reference for every answer.
    assert got == {r.info.number for r in RUNS if evaluate(query, r, catalog=CATALOG)}, text
    return got


@pytest.mark.parametrize("index", range(len(HOSTILE)), ids=[repr(h) for h in HOSTILE])
def test_hostile_strings_are_only_ever_values(db: sa.Engine, index: int) -> None:
    h = HOSTILE[index]
    q = repr(h)
    me = {index + 1}
    assert numbers(db, f"name == {q}") == me
    assert numbers(db, f"name != {q}") == set(range(1, len(HOSTILE) + 1)) - me
    assert numbers(db, f"params[{q}] == {q}") == me
    assert numbers(db, f"params.plain in [{q}, 'nothing']") == me
    assert numbers(db, f"metrics[{q}] >= 0") == me
    assert numbers(db, f"summary[{q}] == {index}") == me
    assert numbers(db, f"{q} in tags") == me
    assert numbers(db, f"{q} in params and {q} in metrics") == me
    assert numbers(db, f"experiment == {q}") == set()
    # Patterns: % and _ in startswith/contains are literal; like() treats them as wildcards.
    assert me <= numbers(db, f"name.startswith({q})")
    assert me <= numbers(db, f"name.endswith({q})")
    assert me <= numbers(db, f"{q} in params.plain")
    numbers(db, f"name.like({q})")
    numbers(db, f"not params.plain.like({q}) and {q} not in name")


def test_wildcards_in_plain_string_tests_are_literal(db: sa.Engine) -> None:
    percent = HOSTILE.index("%") + 1
    starts = {i + 1 for i, h in enumerate(HOSTILE) if h.startswith("%")}
    assert len(starts) > 1
    assert numbers(db, "name.startswith('%')") == starts
    assert numbers(db, "name == '%'") == {percent}
    assert numbers(db, "name.like('%')") == set(range(1, len(HOSTILE) + 1))


def test_sorting_by_hostile_keys(db: sa.Engine) -> None:
    spec = [f"-params[{HOSTILE[0]!r}]", f"metrics[{HOSTILE[2]!r}]", "-params.plain"]
    query = sa.select(schema.runs.c.number).order_by(
        *sort_clause(spec, CATALOG), schema.runs.c.number
    )
    with db.connect() as conn:
        got = [n for (n,) in conn.execute(query)]
    assert got == [r.info.number for r in sort_records(RUNS, spec, catalog=CATALOG)]


@pytest.mark.parametrize(
    "text",
    [
        "name == '\x00'",
        "name == '\\x00'",
        "params['a\\x00'] == 1",
        "'\\0' in tags",
        "name.like('a\\x00%')",
        "name == 'a' \x00",
    ],
)
def test_nul_is_rejected_before_any_sql(text: str) -> None:
    with pytest.raises(QueryError, match="NUL"):
        parse_query(text)


def test_sql_text_is_not_syntax(db: sa.Engine) -> None:
    for text in ["1; DROP TABLE runs", "name == 'a' -- comment", "name == 'a'; DROP TABLE runs"]:
        with pytest.raises(QueryError):
            parse_query(text)
    with db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.runs)).scalar() == len(
            HOSTILE
        )
