"""A :class:`Query` to a SQLAlchemy Core boolean over the store's tables, for SQLite and
PostgreSQL alike, with the semantics of :mod:`labkeep.query._evaluate`.

Every param or metric test becomes ``runs.number IN (SELECT run_number FROM params WHERE
key = :k AND num < :v)``: the inner query walks the ``(key, num)`` / ``(key, last)`` index once
and every test is plainly true or false (never NULL), so ``not`` needs no care. Whatever the
user typed reaches the database as bound parameters only.

With ``probe=True`` the same test is ``EXISTS (SELECT 1 FROM params WHERE run_number =
runs.number AND key = :k AND num < :v)``: one primary-key probe per run tested, for statements
that test few runs (a sorted page walked in index order) where building the whole IN list
would cost more than the walk.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, TypeDecorator, and_, case, exists, func, not_, or_, select
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlalchemy.sql.expression import bindparam
from sqlalchemy.sql.visitors import InternalTraversal, _TraverseInternalsType

from labkeep.query._errors import QueryError
from labkeep.query._nodes import (
    And,
    Compare,
    CompareOp,
    Field,
    HasKey,
    HasTag,
    In,
    KeyCatalog,
    Match,
    Node,
    Not,
    Or,
    Query,
    Scalar,
    SortSpec,
    snapshot_path,
)
from labkeep.query._parse import parse_sort
from labkeep.query._patterns import like_to_glob, match_like
from labkeep.query._resolve import resolve, resolve_sort
from labkeep.store.sql._schema import (
    experiments,
    metrics,
    params,
    runs,
    snapshots,
    summaries,
    tags,
)

_ACCESSOR_COLUMNS = {
    "last": "last",
    "min": "min",
    "max": "max",
    "count": "count",
    "step": "last_step",
}


# -- dialect-specific pieces ----------------------------------------------------------------


class _CodePointOrder(ColumnElement[str]):
    """Text ordered by code point on every backend: SQLite's default BINARY collation does,
    PostgreSQL needs ``COLLATE "C"`` (its default follows the locale)."""

    __visit_name__ = "labkeep_code_point_order"
    _traverse_internals: _TraverseInternalsType = [("expr", InternalTraversal.dp_clauseelement)]  # noqa: RUF012
    inherit_cache = True

    def __init__(self, expr: ColumnElement[Any]) -> None:
        self.expr = expr
        self.type = expr.type

    @property
    def _from_objects(self) -> list[Any]:
        return self.expr._from_objects


@compiles(_CodePointOrder)
def _code_point_order(element: _CodePointOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.expr, **kw)


@compiles(_CodePointOrder, "postgresql")
def _code_point_order_pg(element: _CodePointOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return f'({compiler.process(element.expr, **kw)}) COLLATE "C"'


class _LikePattern(TypeDecorator[str]):
    """A canonical LIKE pattern, sent as SQLite ``GLOB`` syntax where the operator is GLOB."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or dialect.name != "sqlite":
            return value
        return like_to_glob(value)


class _CaseSensitiveLike(ColumnElement[bool]):
    """``expr LIKE pattern``, case-sensitive everywhere: PostgreSQL's LIKE is; on SQLite
    (whose LIKE folds ASCII case) it is GLOB with the translated pattern."""

    __visit_name__ = "labkeep_case_sensitive_like"
    _traverse_internals: _TraverseInternalsType = [  # noqa: RUF012
        ("expr", InternalTraversal.dp_clauseelement),
        ("pattern", InternalTraversal.dp_clauseelement),
    ]
    inherit_cache = True

    def __init__(self, expr: ColumnElement[Any], pattern: str) -> None:
        from sqlalchemy import Boolean

        self.expr = expr
        self.pattern: BindParameter[str] = bindparam(None, pattern, type_=_LikePattern())
        self.type = Boolean()

    @property
    def _from_objects(self) -> list[Any]:
        return self.expr._from_objects


@compiles(_CaseSensitiveLike)
def _like(element: _CaseSensitiveLike, compiler: SQLCompiler, **kw: Any) -> str:
    return (
        f"({compiler.process(element.expr, **kw)} LIKE {compiler.process(element.pattern, **kw)})"
    )


@compiles(_CaseSensitiveLike, "sqlite")
def _like_sqlite(element: _CaseSensitiveLike, compiler: SQLCompiler, **kw: Any) -> str:
    return (
        f"({compiler.process(element.expr, **kw)} GLOB {compiler.process(element.pattern, **kw)})"
    )


class _SnapshotValue(ColumnElement[Any]):
    """One face of a value at a path in ``snapshots.data`` (JSON text), typed as params are:
    ``vtype`` ('null' for JSON null, NULL when the path is absent), ``num`` (numbers and
    bools) or ``text`` (strings). The path's parts are identifiers (:func:`snapshot_path`),
    so they are written into the SQL as literals."""

    __visit_name__ = "labkeep_snapshot_value"
    _traverse_internals: _TraverseInternalsType = [  # noqa: RUF012
        ("path", InternalTraversal.dp_string_list),
        ("part", InternalTraversal.dp_string),
    ]
    inherit_cache = True

    def __init__(self, key: str, part: str) -> None:
        from sqlalchemy import Float, Text

        self.path = list(snapshot_path(key))
        self.part = part
        self.type = Float() if part == "num" else Text()

    @property
    def _from_objects(self) -> list[Any]:
        return [snapshots]


@compiles(_SnapshotValue)
def _snapshot_sqlite(element: _SnapshotValue, compiler: SQLCompiler, **kw: Any) -> str:
    data = compiler.process(snapshots.c.data, **kw)
    path = "'$." + ".".join(element.path) + "'"
    kind = f"json_type({data}, {path})"
    if element.part == "vtype":
        return kind
    if element.part == "num":
        return (
            f"(CASE WHEN {kind} IN ('integer', 'real', 'true', 'false') "
            f"THEN CAST(json_extract({data}, {path}) AS REAL) END)"
        )
    return f"(CASE WHEN {kind} = 'text' THEN json_extract({data}, {path}) END)"


@compiles(_SnapshotValue, "postgresql")
def _snapshot_pg(element: _SnapshotValue, compiler: SQLCompiler, **kw: Any) -> str:
    data = compiler.process(snapshots.c.data, **kw)
    path = "'{" + ",".join(element.path) + "}'"
    node = f"(CAST({data} AS json) #> {path})"
    text = f"(CAST({data} AS json) #>> {path})"
    kind = f"json_typeof({node})"
    if element.part == "vtype":
        return kind
    if element.part == "num":
        return (
            f"(CASE {kind} WHEN 'number' THEN CAST({text} AS double precision) "
            f"WHEN 'boolean' THEN (CASE WHEN {text} = 'true' THEN 1.0 ELSE 0.0 END) END)"
        )
    return f"(CASE WHEN {kind} = 'string' THEN {text} END)"


def _snapshot_columns(key: str) -> _Columns:
    return _Columns(
        num=_SnapshotValue(key, "num"),
        text=_SnapshotValue(key, "text"),
        vtype=_SnapshotValue(key, "vtype"),
    )


# -- public ----------------------------------------------------------------------------------


def compile_query(
    query: Query, catalog: KeyCatalog | None = None, *, probe: bool = False
) -> ColumnElement[bool]:
    """The query as a boolean over ``runs``, for ``select(...).where(...)``.

    Bare names resolve against ``catalog`` (see :func:`load_catalog`); explicit keys that it
    does not know raise :class:`QueryError` with a suggestion. ``probe=True`` tests keys with
    a correlated EXISTS per run instead of an IN list (see the module's docstring).

    >>> where = compile_query(parse_query("metrics.loss < 0.2"), catalog)
    >>> connection.execute(select(runs.c.number).where(where)).all()
    """
    resolved = resolve(query, catalog)
    return _node(resolved.root, probe)


def sort_clause(
    spec: str | Sequence[str] | SortSpec, catalog: KeyCatalog | None = None
) -> list[ColumnElement[Any]]:
    """ORDER BY expressions for ``spec`` (``"-loss, params.lr"``, ``["metrics.loss.min"]``):
    per key, runs with a number first, then runs with a string, then runs without a value,
    which come last in both directions. Add a tie-breaker (``runs.c.number``) yourself.

    >>> select(runs.c.number).order_by(*sort_clause("-metrics.acc", catalog)).limit(50)
    """
    parsed = (
        spec
        if isinstance(spec, SortSpec)
        else parse_sort(spec if isinstance(spec, str) else list(spec))
    )
    resolved = resolve_sort(parsed, catalog)
    clauses: list[ColumnElement[Any]] = []
    for key in resolved.keys:
        for value, nullable in _sort_values(key.field):
            ordered = value.desc() if key.descending else value.asc()
            # NULLS LAST (SQLite >= 3.30, PostgreSQL) evaluates a subquery once per row.
            clauses.append(ordered.nulls_last() if nullable else ordered)
    return clauses


def load_catalog(connection: Connection) -> KeyCatalog:
    """The param, metric and summary keys in the store (deleted runs included), read with
    one index seek per distinct key."""
    return KeyCatalog(
        params=frozenset(_distinct_keys(connection, params)),
        metrics=frozenset(_distinct_keys(connection, metrics)),
        summaries=frozenset(_distinct_keys(connection, summaries)),
    )


def _distinct_keys(connection: Connection, table: Any) -> list[str]:
    # A recursive skip scan: SELECT DISTINCT would read every row of the key index.
    first = select(func.min(table.c.key).label("key"))
    seen = first.cte("seen_keys", recursive=True)
    following = select(table.c.key).where(table.c.key > seen.c.key).order_by(table.c.key).limit(1)
    seen = seen.union_all(
        select(following.scalar_subquery().label("key")).where(seen.c.key.is_not(None))
    )
    rows = connection.execute(select(seen.c.key).where(seen.c.key.is_not(None)))
    return [row[0] for row in rows]


# -- tests -----------------------------------------------------------------------------------


def _node(node: Node, probe: bool) -> ColumnElement[bool]:
    if isinstance(node, And):
        return and_(*(_node(i, probe) for i in node.items))
    if isinstance(node, Or):
        return or_(*(_node(i, probe) for i in node.items))
    if isinstance(node, Not):
        return not_(_node(node.item, probe))
    if isinstance(node, HasTag):
        return _membership(tags.c.run_number, [tags.c.tag == node.tag], probe, node.negated)
    if isinstance(node, HasKey):
        table = _value_table(node.source)
        return _membership(table.c.run_number, [table.c.key == node.key], probe, node.negated)
    if isinstance(node, Compare):
        return _where_field(
            node.field, lambda col, kind: _compare(col, kind, node.op, node.value), probe
        )
    if isinstance(node, In):
        return _where_field(
            node.field, lambda col, kind: _in(col, kind, node.values, node.negated), probe
        )
    if isinstance(node, Match):
        return _where_field(node.field, lambda col, kind: _match(col, kind, node), probe)
    raise AssertionError(node)


def _membership(
    run_number: Any, conditions: list[Any], probe: bool, negated: bool = False
) -> ColumnElement[bool]:
    """Whether the run has a row of ``run_number``'s table meeting ``conditions``: an IN list,
    or with ``probe`` a correlated EXISTS. Never NULL, so ``not`` is plain negation."""
    if probe:
        found = exists().where(run_number == runs.c.number, *conditions)
        return not_(found) if negated else found
    inner = select(run_number).where(*conditions)
    return runs.c.number.not_in(inner) if negated else runs.c.number.in_(inner)


def _value_table(source: str) -> Any:
    return {"param": params, "summary": summaries, "metric": metrics}[source]


class _Columns:
    """The columns a typed value lives in: ``num``/``text``/``vtype`` for params and
    summaries, one column for metrics and attributes."""

    def __init__(
        self,
        value: ColumnElement[Any] | None = None,
        *,
        num: ColumnElement[Any] | None = None,
        text: ColumnElement[Any] | None = None,
        vtype: ColumnElement[Any] | None = None,
    ) -> None:
        self.value = value
        self.num = num
        self.text = text
        self.vtype = vtype


def _where_field(field: Field, predicate: Any, probe: bool) -> ColumnElement[bool]:
    """``predicate(columns, kind)`` placed where the field lives: inside an IN-subquery for
    params, summaries, metrics and the experiment name, on ``runs`` for the rest."""
    if field.source in ("param", "summary"):
        table = _value_table(field.source)
        cols = _Columns(num=table.c.num, text=table.c.text, vtype=table.c.vtype)
        return _membership(
            table.c.run_number, [table.c.key == field.key, predicate(cols, "typed")], probe
        )
    if field.source == "snapshot":
        cols = _snapshot_columns(field.key)
        assert cols.vtype is not None
        # A snapshot without the path is a run without the value: present rows only.
        return _membership(
            snapshots.c.run_number, [cols.vtype.is_not(None), predicate(cols, "typed")], probe
        )
    if field.source == "metric":
        column = metrics.c[_ACCESSOR_COLUMNS[field.accessor]]
        kind = "plain" if field.accessor in ("count", "step") else "float"
        return _membership(
            metrics.c.run_number,
            [metrics.c.key == field.key, predicate(_Columns(column), kind)],
            probe,
        )
    key = field.key
    if key == "experiment":
        inner = select(experiments.c.id).where(predicate(_Columns(experiments.c.name), "plain"))
        return runs.c.experiment_id.in_(inner)
    if key in ("ended", "duration"):
        nullable = runs.c.end_time if key == "ended" else _duration()
        return predicate(_Columns(nullable), "nullable")  # type: ignore[no-any-return]
    column = {
        "status": runs.c.status,
        "name": runs.c.name,
        "number": runs.c.number,
        "user": runs.c.username,
        "host": runs.c.host,
        "started": runs.c.start_time,
    }[key]
    return predicate(_Columns(column), "plain")  # type: ignore[no-any-return]


def _duration() -> ColumnElement[Any]:
    end = func.coalesce(runs.c.end_time, runs.c.heartbeat)
    elapsed = end - runs.c.start_time
    return case((elapsed < 0.0, 0.0), else_=elapsed)


def _bind(kind: str, literal: Scalar) -> Any:
    """The literal as bound for a column of ``kind``: floats for float columns (so that an
    int literal compares as the evaluator's float), as typed elsewhere."""
    if kind in ("typed", "float", "nullable") and isinstance(literal, int | float):
        return float(literal)
    return literal


def _widened(column: ColumnElement[Any] | None, literals: Sequence[Scalar]) -> ColumnElement[Any]:
    """An integer column compared with a float literal, as a float: bound parameters take the
    column's type, and PostgreSQL would round ``2.5`` to a bigint (``count <= 2.5`` would
    match 3) where Python compares exactly."""
    from sqlalchemy import Float, Integer, cast

    assert column is not None
    if isinstance(column.type, Integer) and any(
        isinstance(v, float) for v in literals if not isinstance(v, bool)
    ):
        return cast(column, Float)
    return column


def _ordered(column: ColumnElement[Any], literal: Scalar) -> ColumnElement[Any]:
    return _CodePointOrder(column) if isinstance(literal, str) else column


_OPERATORS: dict[CompareOp, Any] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _compare(cols: _Columns, kind: str, op: CompareOp, literal: Scalar) -> ColumnElement[bool]:
    if kind == "typed":
        assert cols.num is not None and cols.text is not None and cols.vtype is not None
        if literal is None:
            return cols.vtype == "null" if op == "==" else cols.vtype != "null"
        column = cols.text if isinstance(literal, str) else cols.num
        value = _bind(kind, literal)
        if op == "==":
            return column == value  # type: ignore[no-any-return]
        if op == "!=":
            return or_(column.is_(None), column != value)
        return _OPERATORS[op](_ordered(column, literal), value)  # type: ignore[no-any-return]
    plain = _widened(cols.value, (literal,))
    if literal is None:  # only nullable attributes get here
        return plain.is_(None) if op == "==" else plain.is_not(None)
    value = _bind(kind, literal)
    if op == "==":
        test: ColumnElement[bool] = plain == value
    elif op == "!=":
        if kind == "float":  # a metric's NaN last or empty min/max: present, not equal
            return or_(plain.is_(None), plain != value)
        test = plain != value
    else:
        test = _OPERATORS[op](_ordered(plain, literal), value)
    return and_(plain.is_not(None), test) if kind == "nullable" else test


def _in(
    cols: _Columns, kind: str, values: tuple[Scalar, ...], negated: bool
) -> ColumnElement[bool]:
    if kind == "typed":
        assert cols.num is not None and cols.text is not None and cols.vtype is not None
        numbers = [float(v) for v in values if isinstance(v, int | float)]
        strings = [v for v in values if isinstance(v, str)]
        has_none = any(v is None for v in values)
        if not negated:
            tests: list[ColumnElement[bool]] = []
            if numbers:
                tests.append(cols.num.in_(numbers))
            if strings:
                tests.append(cols.text.in_(strings))
            if has_none:
                tests.append(cols.vtype == "null")
            return or_(*tests) if len(tests) > 1 else tests[0]
        tests = []
        if numbers:
            tests.append(or_(cols.num.is_(None), cols.num.not_in(numbers)))
        if strings:
            tests.append(or_(cols.text.is_(None), cols.text.not_in(strings)))
        if has_none:
            tests.append(cols.vtype != "null")
        return and_(*tests) if len(tests) > 1 else tests[0]
    column = _widened(cols.value, values)
    present = [_bind(kind, v) for v in values if v is not None]
    if column is not cols.value:  # widened to float: so must every number in the list be
        from sqlalchemy import Float, literal

        present = [literal(float(v), Float()) if isinstance(v, int | float) else v for v in present]
    has_none = len(present) < len(values)
    if not negated:
        tests = []
        if present:
            tests.append(column.in_(present))
        if has_none:
            tests.append(column.is_(None))
        return or_(*tests) if len(tests) > 1 else tests[0]
    if kind == "float":
        return or_(column.is_(None), column.not_in(present))
    if not present:
        return column.is_not(None)
    test = column.not_in(present)
    return and_(column.is_not(None), test) if kind == "nullable" else test


def _match(cols: _Columns, kind: str, node: Match) -> ColumnElement[bool]:
    column = cols.text if kind == "typed" else cols.value
    assert column is not None
    if node.kind == "regex":
        test: ColumnElement[bool] = column.regexp_match(node.pattern)
    else:
        test = _CaseSensitiveLike(column, match_like(node.kind, node.pattern))
    if node.negated:
        # Only strings take part: a missing or non-string value matches neither way.
        return and_(column.is_not(None), not_(test))
    return test


# -- sorting -----------------------------------------------------------------------------------


def _sort_values(field: Field) -> list[tuple[ColumnElement[Any], bool]]:
    """The values a field sorts by, in order of precedence, and whether each can be NULL
    (the run has no value, which sorts last)."""
    if field.source in ("param", "summary"):
        table = _value_table(field.source)

        def scalar(column: Any) -> ColumnElement[Any]:
            return (
                select(column)
                .where(table.c.run_number == runs.c.number, table.c.key == field.key)
                .scalar_subquery()
            )

        return [(scalar(table.c.num), True), (_CodePointOrder(scalar(table.c.text)), True)]
    if field.source == "snapshot":

        def extract(part: str) -> ColumnElement[Any]:
            value = _SnapshotValue(field.key, part)
            where = snapshots.c.run_number == runs.c.number
            return select(value).where(where).scalar_subquery()

        return [(extract("num"), True), (_CodePointOrder(extract("text")), True)]
    if field.source == "metric":
        column = metrics.c[_ACCESSOR_COLUMNS[field.accessor]]
        value = (
            select(column)
            .where(metrics.c.run_number == runs.c.number, metrics.c.key == field.key)
            .scalar_subquery()
        )
        return [(value, True)]
    if field.source != "attr":
        raise QueryError(f"cannot sort by {field.describe()}")
    key = field.key
    if key == "experiment":
        name = (
            select(experiments.c.name)
            .where(experiments.c.id == runs.c.experiment_id)
            .scalar_subquery()
        )
        return [(_CodePointOrder(name), False)]
    if key == "duration":
        return [(_duration(), True)]
    column = {
        "status": runs.c.status,
        "name": runs.c.name,
        "number": runs.c.number,
        "user": runs.c.username,
        "host": runs.c.host,
        "started": runs.c.start_time,
        "ended": runs.c.end_time,
    }[key]
    if key in ("status", "name", "user", "host"):
        return [(_CodePointOrder(column), False)]
    return [(column, key == "ended")]
