"""Random queries over random runs: the SQL answer (SQLite and PostgreSQL) equals the Python
evaluator's, for filters and for sorts."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_query_sql import BACKENDS, insert_records, make_engine, record

from labkeep.entities import RunRecord
from labkeep.query import KeyCatalog, parse_query, resolve, sort_records
from labkeep.query._evaluate import evaluate
from labkeep.store.sql import _schema as schema
from labkeep.store.sql._compile_query import compile_query, sort_clause

NOW = 10_000.0
INF = math.inf
NUMBERS: list[Any] = [0, 1, -1, 0.5, 2.5, 1e-3, 100, -0.0, INF, -INF, 3]
STRINGS = [
    "",
    "a",
    "ab",
    "abc",
    "B",
    "b",
    "é",
    "x y",
    "%",
    "_",
    "a_b",
    "a%b",
    "it's",
    "\\",
    "10",
    "日本",
    "😀a",
]
PARAM_KEYS = ["a", "b", "c", "opt.lr", "x y"]
METRIC_KEYS = ["loss", "acc", "val/loss"]
TAGS = ["t1", "t2", "日本", "it's"]
STATUSES = ["running", "completed", "failed", "interrupted", "killed"]
LIKES = ["a%", "%b", "_", "%\\_%", "a\\%b", "%", "", "a_b", "日%", "%a%"]
REGEXES = ["^a", "b$", "a.b", "[ab]", "a|b", "^$", "[0-9]", "x y", "日", "^.$"]


def _random_value(rnd: random.Random) -> Any:
    return rnd.choice(
        [
            *NUMBERS,
            *STRINGS,
            True,
            False,
            None,
            math.nan,
            [1],
            {"a": 1},
        ]
    )


def _random_runs(seed: int, count: int) -> list[RunRecord]:
    rnd = random.Random(seed)
    runs = []
    for number in range(1, count + 1):
        params = {k: _random_value(rnd) for k in PARAM_KEYS if rnd.random() < 0.75}
        metrics = {}
        for key in METRIC_KEYS:
            if rnd.random() < 0.7:
                last = rnd.choice([math.nan, 0.0, 0.5, 1.0, -1.0, 2.5, INF])
                low = rnd.choice([None, 0.0, -1.0, 0.5])
                high = rnd.choice([None, 1.0, 2.5, INF])
                metrics[key] = (last, low, high, rnd.randint(0, 5), rnd.randint(0, 5))
        start = rnd.choice([100.0, 200.0, 300.0])
        end = rnd.choice([None, start, start + 50, start + 100])
        runs.append(
            record(
                number,
                rnd.choice(STRINGS),
                experiment=rnd.choice(["e1", "e2", "é"]),
                status=rnd.choice(STATUSES),
                start=start,
                end=end,
                heartbeat=rnd.choice([None, start + 10, start - 10]),
                user=rnd.choice(STRINGS),
                host=rnd.choice(["h1", "h2"]),
                params=params,
                metrics=metrics,
                summary={"s": _random_value(rnd)} if rnd.random() < 0.6 else {},
                tags=tuple(t for t in TAGS if rnd.random() < 0.4),
            )
        )
    return runs


RUNS = _random_runs(seed=20240501, count=60)
CATALOG = KeyCatalog.from_records(RUNS)
assert CATALOG.params == frozenset(PARAM_KEYS) and CATALOG.metrics == frozenset(METRIC_KEYS)


@pytest.fixture(scope="module", params=BACKENDS)
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sa.Engine]:
    for engine in make_engine(request.param, tmp_path_factory.mktemp("props")):
        with engine.begin() as conn:
            insert_records(conn, RUNS)
        yield engine


# -- query strategies -----------------------------------------------------------------------


def lit(value: Any) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "1e999" if value > 0 else "-1e999"
    return repr(value)


typed_fields = st.sampled_from(
    [
        "params.a",
        "params.b",
        "params.c",
        "a",
        "b",
        "params.opt.lr",
        "params['x y']",
        "summary.s",
    ]
)
metric_fields = st.sampled_from(
    [
        "metrics.loss",
        "loss",
        "metrics.acc.min",
        "acc.max",
        "metrics['val/loss']",
        "metrics['val/loss'].last",
        "metrics.loss.count",
        "metrics.acc.step",
    ]
)
text_attrs = st.sampled_from(["name", "user", "host", "experiment"])
ops = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
numbers = st.sampled_from(NUMBERS)
strings = st.sampled_from(STRINGS)
scalars = st.one_of(numbers, strings, st.sampled_from([True, False]))


@st.composite
def comparisons(draw: st.DrawFn) -> str:
    kind = draw(
        st.sampled_from(["typed", "metric", "text", "status", "number", "time", "duration"])
    )
    op = draw(ops)
    if kind == "typed":
        field = draw(typed_fields)
        if draw(st.booleans()) and op in ("==", "!="):
            return f"{field} {op} None"
        value = draw(scalars)
    elif kind == "metric":
        field, value = draw(metric_fields), draw(numbers)
    elif kind == "text":
        field, value = draw(text_attrs), draw(strings)
    elif kind == "status":
        field, value = "status", draw(st.sampled_from(STATUSES))
        op = draw(st.sampled_from(["==", "!="]))
    elif kind == "number":
        field, value = "number", draw(st.integers(-1, 70))
    elif kind == "time":
        field = draw(st.sampled_from(["started", "ended"]))
        value = draw(st.sampled_from([100.0, 150, 200.0, 300, 350.0]))
        if field == "ended" and op in ("==", "!=") and draw(st.booleans()):
            value = None
    else:
        field = "duration"
        value = draw(st.sampled_from([0, 10, 50, 100.0, "1m", "100s"]))
        if op in ("==", "!=") and draw(st.booleans()):
            value = None
    if draw(st.booleans()) and value is not None:
        flipped = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}[op]
        return f"{lit(value)} {flipped} {field}"
    return f"{field} {op} {lit(value)}"


@st.composite
def memberships(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["typed", "metric", "text", "status", "tags", "keys"]))
    neg = draw(st.sampled_from(["in", "not in"]))
    if kind == "tags":
        return f"{lit(draw(st.sampled_from([*TAGS, 'zz'])))} {neg} tags"
    if kind == "keys":
        container = draw(st.sampled_from(["params", "metrics", "summary"]))
        key = draw(st.sampled_from([*PARAM_KEYS, *METRIC_KEYS, "s"]))
        return f"{lit(key)} {neg} {container}"
    if kind == "typed":
        field, pool = draw(typed_fields), st.one_of(scalars, st.none())
    elif kind == "metric":
        field, pool = draw(metric_fields), numbers
    elif kind == "text":
        field, pool = draw(text_attrs), strings
    else:
        field, pool = "status", st.sampled_from(STATUSES)
    values = draw(st.lists(pool, min_size=1, max_size=4))
    return f"{field} {neg} [{', '.join(lit(v) for v in values)}]"


@st.composite
def string_tests(draw: st.DrawFn) -> str:
    field = draw(st.one_of(typed_fields, text_attrs, st.just("status")))
    test = draw(
        st.sampled_from(["startswith", "endswith", "contains", "like", "matches", "in", "not in"])
    )
    if test == "like":
        return f"{field}.like({lit(draw(st.sampled_from(LIKES)))})"
    if test == "matches":
        return f"{field}.matches({lit(draw(st.sampled_from(REGEXES)))})"
    pattern = lit(draw(strings))
    if test in ("in", "not in"):
        return f"{pattern} {test} {field}"
    return f"{field}.{test}({pattern})"


@st.composite
def chains(draw: st.DrawFn) -> str:
    field = draw(st.one_of(typed_fields, metric_fields))
    low, high = sorted([draw(numbers), draw(numbers)])
    return f"{lit(low)} {draw(st.sampled_from(['<', '<=']))} {field} {draw(st.sampled_from(['<', '<=']))} {lit(high)}"


atoms = st.one_of(comparisons(), memberships(), string_tests(), chains())
queries = st.recursive(
    atoms,
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"({a}) and ({b})", inner, inner),
        st.builds(lambda a, b: f"({a}) or ({b})", inner, inner),
        st.builds(lambda a: f"not ({a})", inner),
    ),
    max_leaves=6,
)


# -- the properties ---------------------------------------------------------------------------

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(text=queries)
# Found by this test: PostgreSQL cast a float in an IN list to the integer column's type.
@example(text="metrics.loss.count in [0, 2.5]")
def test_sql_and_python_agree_on_filters(db: sa.Engine, text: str) -> None:
    query = resolve(parse_query(text, now=NOW), CATALOG)
    where = compile_query(query, CATALOG)
    probed = compile_query(query, CATALOG, probe=True)  # EXISTS per run instead of IN lists
    with db.connect() as conn:
        got = {n for (n,) in conn.execute(sa.select(schema.runs.c.number).where(where))}
        got_probed = {n for (n,) in conn.execute(sa.select(schema.runs.c.number).where(probed))}
    expected = {r.info.number for r in RUNS if evaluate(query, r, catalog=CATALOG)}
    assert got == expected, text
    assert got_probed == expected, text


sort_fields = st.one_of(
    typed_fields,
    metric_fields,
    st.sampled_from(
        ["name", "user", "experiment", "status", "started", "ended", "duration", "number"]
    ),
)


@SETTINGS
@given(keys=st.lists(st.tuples(sort_fields, st.booleans()), min_size=1, max_size=3))
def test_sql_and_python_agree_on_sorts(db: sa.Engine, keys: list[tuple[str, bool]]) -> None:
    spec = [("-" if desc else "") + field for field, desc in keys]
    query = sa.select(schema.runs.c.number).order_by(
        *sort_clause(spec, CATALOG), schema.runs.c.number
    )
    with db.connect() as conn:
        got = [n for (n,) in conn.execute(query)]
    assert got == [r.info.number for r in sort_records(RUNS, spec, catalog=CATALOG)], spec
