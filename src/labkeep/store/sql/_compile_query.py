"""A :class:`Query` to SQL text with bound parameters over the store's tables, for SQLite and
PostgreSQL alike, with the semantics of :mod:`labkeep.query._evaluate`.

The text is run on the store's DB-API connection (``sqlite3`` or ``psycopg``): a query costs
no SQLAlchemy import, which alone takes longer than the query. Whatever the user typed reaches
the database as bound parameters only; keys, values and patterns never become SQL text.

Every param or metric test becomes ``runs.number IN (SELECT run_number FROM params WHERE
key = ? AND num < ?)``: the inner query walks the ``(key, num)`` / ``(key, last)`` index once
and every test is plainly true or false (never NULL), so ``not`` needs no care.

With ``probe=True`` the same test is ``EXISTS (SELECT 1 FROM params WHERE run_number =
runs.number AND key = ? AND num < ?)``: one primary-key probe per run tested, for statements
that test few runs (a sorted page walked in index order) where building the whole IN list
would cost more than the walk.

:func:`compile_query` and :func:`sort_clause` return :class:`Clause` objects: ``.sql(dialect)``
gives the text for one database, and SQLAlchemy Core accepts them as they are
(``select(runs.c.number).where(clause)``), rendering the same text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

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

Dialect = str  # "sqlite" or "postgresql"

_ACCESSOR_COLUMNS = {
    "last": "last",
    "min": "min",
    "max": "max",
    "count": "count",
    "step": "last_step",
}
#: The tables whose rows hold a run's typed values, by the source a field names.
_VALUE_TABLES = {"param": "params", "summary": "summaries", "metric": "metrics"}
#: Run attributes stored in a column of ``runs``; ``number`` is the one integer column.
_RUN_COLUMNS = {
    "status": "runs.status",
    "name": "runs.name",
    "number": "runs.number",
    "user": "runs.username",
    "host": "runs.host",
    "started": "runs.start_time",
    "ended": "runs.end_time",
    "group": "runs.run_group",
    "job_type": "runs.job_type",
    "parent": "runs.parent_uuid",
}
#: Text attributes a run may lack (NULL): they never match a comparison but ``== None``.
_NULLABLE_TEXT = frozenset({"group", "job_type", "parent"})
_INTEGER_COLUMNS = frozenset({"runs.number", "metrics.count", "metrics.last_step"})
_DURATION = (
    "(CASE WHEN coalesce(runs.end_time, runs.heartbeat) - runs.start_time < 0.0 THEN 0.0 "
    "ELSE coalesce(runs.end_time, runs.heartbeat) - runs.start_time END)"
)


class Sql(NamedTuple):
    """SQL text with ``?`` placeholders and the values bound to them, in order."""

    text: str
    params: tuple[Any, ...] = ()

    def for_driver(self, dialect: Dialect) -> str:
        """The text in the driver's paramstyle: ``?`` for sqlite3, ``%s`` for psycopg."""
        if dialect == "sqlite":
            return self.text
        # Nothing but placeholders may look like one to psycopg.
        assert "%" not in self.text, self.text
        return self.text.replace("?", "%s")


def join(separator: str, parts: Sequence[Sql]) -> Sql:
    """The parts' texts joined by ``separator``, their parameters in the same order."""
    return Sql(separator.join(p.text for p in parts), tuple(v for p in parts for v in p.params))


def fmt(template: str, *parts: Sql) -> Sql:
    """``template`` with each ``{}`` replaced by a part's text, parameters in order."""
    return Sql(template.format(*(p.text for p in parts)), tuple(v for p in parts for v in p.params))


def placeholders(values: Sequence[Any]) -> Sql:
    """``?, ?, ?`` for an IN list of ``values``."""
    return Sql(", ".join("?" * len(values)), tuple(values))


class Clause:
    """A compiled condition or sort term, rendered for a dialect on demand: ``.sql(dialect)``
    for the DB-API connection; SQLAlchemy Core takes it as a clause (see
    :meth:`__clause_element__`)."""

    def __init__(self, build: Callable[[_Compiler], Sql]) -> None:
        self._build = build

    def sql(self, dialect: Dialect) -> Sql:
        return self._build(_Compiler(dialect))

    def __clause_element__(self) -> Any:
        from labkeep.store.sql._core_clause import core_clause

        return core_clause(self)


# -- public ----------------------------------------------------------------------------------


def compile_query(
    query: Query, catalog: KeyCatalog | None = None, *, probe: bool = False
) -> Clause:
    """The query as a boolean over ``runs`` (``SELECT … FROM runs WHERE <clause>``).

    Bare names resolve against ``catalog`` (see :func:`load_catalog`); explicit keys that it
    does not know raise :class:`QueryError` with a suggestion. ``probe=True`` tests keys with
    a correlated EXISTS per run instead of an IN list (see the module's docstring).

    >>> where = compile_query(parse_query("metrics.loss < 0.2"), catalog).sql("sqlite")
    >>> cursor.execute("SELECT number FROM runs WHERE " + where.text, where.params)
    """
    root = resolve(query, catalog).root
    return Clause(lambda c: c.node(root, probe))


def sort_clause(
    spec: str | Sequence[str] | SortSpec, catalog: KeyCatalog | None = None
) -> list[Clause]:
    """ORDER BY terms for ``spec`` (``"-loss, params.lr"``, ``["metrics.loss.min"]``): per
    key, runs with a number first, then runs with a string, then runs without a value, which
    come last in both directions. Add a tie-breaker (``runs.number``) yourself.

    >>> order = [c.sql("sqlite") for c in sort_clause("-metrics.acc", catalog)]
    """
    parsed = (
        spec
        if isinstance(spec, SortSpec)
        else parse_sort(spec if isinstance(spec, str) else list(spec))
    )
    clauses: list[Clause] = []
    for key in resolve_sort(parsed, catalog).keys:
        field = key.field
        order = " DESC" if key.descending else " ASC"
        if field.source not in ("param", "summary", "snapshot", "metric", "attr"):
            raise QueryError(f"cannot sort by {field.describe()}")
        for index in range(2 if field.source in ("param", "summary", "snapshot") else 1):

            def term(
                c: _Compiler, field: Field = field, index: int = index, order: str = order
            ) -> Sql:
                value, nullable = c.sort_values(field)[index]
                # NULLS LAST (SQLite >= 3.30, PostgreSQL) evaluates a subquery once per row.
                return fmt("{}" + order + (" NULLS LAST" if nullable else ""), value)

            clauses.append(Clause(term))
    return clauses


def load_catalog(conn: Any) -> KeyCatalog:
    """The param, metric and summary keys in the store (deleted runs included), read with
    one index seek per distinct key. ``conn`` is the store's DB-API :class:`Connection`, or a
    SQLAlchemy connection."""
    return KeyCatalog(
        params=frozenset(_distinct_keys(conn, "params")),
        metrics=frozenset(_distinct_keys(conn, "metrics")),
        summaries=frozenset(_distinct_keys(conn, "summaries")),
    )


def dialect_of(conn: Any) -> Dialect:
    """``"sqlite"`` or ``"postgresql"``: the database behind the store's DB-API
    :class:`Connection` (or a SQLAlchemy one)."""
    dialect = conn.dialect
    return dialect if isinstance(dialect, str) else str(dialect.name)


def fetch_all(conn: Any, sql: Sql) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` on the store's DB-API :class:`Connection` (or a SQLAlchemy one)."""
    text = sql.for_driver(dialect_of(conn))
    if hasattr(conn, "exec_driver_sql"):
        return [tuple(row) for row in conn.exec_driver_sql(text, sql.params)]
    cur = conn.raw.cursor()
    try:
        cur.execute(text, sql.params)
        return list(cur.fetchall())
    finally:
        cur.close()


def _distinct_keys(conn: Any, table: str) -> list[str]:
    # A recursive skip scan: SELECT DISTINCT would read every row of the key index.
    sql = (
        f"WITH RECURSIVE seen_keys(key) AS (SELECT min({table}.key) FROM {table} "
        f"UNION ALL SELECT (SELECT {table}.key FROM {table} WHERE {table}.key > seen_keys.key "
        f"ORDER BY {table}.key LIMIT 1) FROM seen_keys WHERE seen_keys.key IS NOT NULL) "
        "SELECT seen_keys.key FROM seen_keys WHERE seen_keys.key IS NOT NULL"
    )
    return [row[0] for row in fetch_all(conn, Sql(sql))]


# -- the compiler ------------------------------------------------------------------------------


class _Column(NamedTuple):
    """A column (or an expression over one row) and whether it holds integers."""

    sql: str
    integer: bool = False


class _Columns(NamedTuple):
    """The columns a typed value lives in: ``num``/``text``/``vtype`` for params, summaries
    and snapshot paths; ``value`` alone for metrics and attributes."""

    value: _Column | None = None
    num: str = ""
    text: str = ""
    vtype: str = ""


Predicate = Callable[[_Columns, str], Sql]


def _bind(kind: str, literal: Scalar) -> Any:
    """The literal as bound for a column of ``kind``: floats for float columns (so that an
    int literal compares as the evaluator's float), as typed elsewhere."""
    if kind in ("typed", "float", "nullable") and isinstance(literal, int | float):
        return float(literal)
    return literal


class _Compiler:
    """Emits the SQL of one dialect; every method returns :class:`Sql`."""

    def __init__(self, dialect: Dialect) -> None:
        if dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"no SQL for a {dialect} database")
        self.sqlite = dialect == "sqlite"

    # -- dialect-specific pieces ----------------------------------------------------------

    def code_point_order(self, expr: str) -> str:
        """Text ordered by code point on every backend: SQLite's default BINARY collation
        does, PostgreSQL needs ``COLLATE "C"`` (its default follows the locale)."""
        return expr if self.sqlite else f'({expr}) COLLATE "C"'

    def like(self, expr: str, pattern: str) -> Sql:
        """``expr LIKE pattern``, case-sensitive everywhere: PostgreSQL's LIKE is; on SQLite
        (whose LIKE folds ASCII case) it is GLOB with the translated pattern."""
        if self.sqlite:
            return Sql(f"({expr} GLOB ?)", (like_to_glob(pattern),))
        return Sql(f"({expr} LIKE ?)", (pattern,))

    def regex(self, expr: str, pattern: str) -> Sql:
        """Python's ``re.search`` on SQLite (the ``regexp`` function every labkeep
        connection installs); PostgreSQL's ``~``."""
        return Sql(f"({expr} {'REGEXP' if self.sqlite else '~'} ?)", (pattern,))

    def snapshot_value(self, key: str, part: str) -> str:
        """One face of a value at a path in ``snapshots.data`` (JSON text), typed as params
        are: ``vtype`` ('null' for JSON null, NULL when the path is absent), ``num`` (numbers
        and bools) or ``text`` (strings). The path's parts are identifiers
        (:func:`snapshot_path`), so they are written into the SQL as literals."""
        path = snapshot_path(key)
        if self.sqlite:
            where = "'$." + ".".join(path) + "'"
            kind = f"json_type(snapshots.data, {where})"
            value = f"json_extract(snapshots.data, {where})"
            if part == "vtype":
                return kind
            if part == "num":
                return (
                    f"(CASE WHEN {kind} IN ('integer', 'real', 'true', 'false') "
                    f"THEN CAST({value} AS REAL) END)"
                )
            return f"(CASE WHEN {kind} = 'text' THEN {value} END)"
        where = "'{" + ",".join(path) + "}'"
        node = f"(CAST(snapshots.data AS json) #> {where})"
        text = f"(CAST(snapshots.data AS json) #>> {where})"
        kind = f"json_typeof({node})"
        if part == "vtype":
            return kind
        if part == "num":
            return (
                f"(CASE {kind} WHEN 'number' THEN CAST({text} AS double precision) "
                f"WHEN 'boolean' THEN (CASE WHEN {text} = 'true' THEN 1.0 ELSE 0.0 END) END)"
            )
        return f"(CASE WHEN {kind} = 'string' THEN {text} END)"

    # -- tests ------------------------------------------------------------------------------

    def node(self, node: Node, probe: bool) -> Sql:
        if isinstance(node, And):
            return fmt("({})", join(" AND ", [self.node(i, probe) for i in node.items]))
        if isinstance(node, Or):
            return fmt("({})", join(" OR ", [self.node(i, probe) for i in node.items]))
        if isinstance(node, Not):
            return fmt("(NOT {})", self.node(node.item, probe))
        if isinstance(node, HasTag):
            return self.membership("tags", [Sql("tags.tag = ?", (node.tag,))], probe, node.negated)
        if isinstance(node, HasKey):
            table = _VALUE_TABLES[node.source]
            key = Sql(f"{table}.key = ?", (node.key,))
            return self.membership(table, [key], probe, node.negated)
        if isinstance(node, Compare):
            return self.where_field(
                node.field, lambda col, kind: self.compare(col, kind, node.op, node.value), probe
            )
        if isinstance(node, In):
            return self.where_field(
                node.field, lambda col, kind: self.in_(col, kind, node.values, node.negated), probe
            )
        if isinstance(node, Match):
            return self.where_field(
                node.field, lambda col, kind: self.match(col, kind, node), probe
            )
        raise AssertionError(node)

    def membership(
        self, table: str, conditions: list[Sql], probe: bool, negated: bool = False
    ) -> Sql:
        """Whether the run has a row of ``table`` meeting ``conditions``: an IN list, or with
        ``probe`` a correlated EXISTS. Never NULL, so ``not`` is plain negation."""
        where = join(" AND ", conditions)
        if probe:
            found = fmt(
                f"EXISTS (SELECT 1 FROM {table} WHERE {table}.run_number = runs.number AND {{}})",
                where,
            )
            return fmt("(NOT {})", found) if negated else found
        test = "NOT IN" if negated else "IN"
        return fmt(f"runs.number {test} (SELECT {table}.run_number FROM {table} WHERE {{}})", where)

    def where_field(self, field: Field, predicate: Predicate, probe: bool) -> Sql:
        """``predicate(columns, kind)`` placed where the field lives: inside an IN-subquery
        for params, summaries, metrics and the experiment name, on ``runs`` for the rest."""
        if field.source in ("param", "summary"):
            table = _VALUE_TABLES[field.source]
            cols = _Columns(num=f"{table}.num", text=f"{table}.text", vtype=f"{table}.vtype")
            key = Sql(f"{table}.key = ?", (field.key,))
            return self.membership(table, [key, predicate(cols, "typed")], probe)
        if field.source == "snapshot":
            cols = _Columns(
                num=self.snapshot_value(field.key, "num"),
                text=self.snapshot_value(field.key, "text"),
                vtype=self.snapshot_value(field.key, "vtype"),
            )
            # A snapshot without the path is a run without the value: present rows only.
            present = Sql(f"{cols.vtype} IS NOT NULL")
            return self.membership("snapshots", [present, predicate(cols, "typed")], probe)
        if field.source == "metric":
            column = "metrics." + _ACCESSOR_COLUMNS[field.accessor]
            plain = field.accessor in ("count", "step")
            cols = _Columns(_Column(column, integer=plain))
            key = Sql("metrics.key = ?", (field.key,))
            return self.membership(
                "metrics", [key, predicate(cols, "plain" if plain else "float")], probe
            )
        key_name = field.key
        if key_name == "experiment":
            test = predicate(_Columns(_Column("experiments.name")), "plain")
            return fmt(
                "runs.experiment_id IN (SELECT experiments.id FROM experiments WHERE {})", test
            )
        if key_name in _NULLABLE_TEXT:
            return predicate(_Columns(_Column(_RUN_COLUMNS[key_name])), "nullable")
        if key_name in ("ended", "duration"):
            nullable = _RUN_COLUMNS["ended"] if key_name == "ended" else _DURATION
            return predicate(_Columns(_Column(nullable)), "nullable")
        column = _RUN_COLUMNS[key_name]
        return predicate(_Columns(_Column(column, integer=column in _INTEGER_COLUMNS)), "plain")

    def compare(self, cols: _Columns, kind: str, op: CompareOp, literal: Scalar) -> Sql:
        if kind == "typed":
            if literal is None:
                return Sql(f"{cols.vtype} {'=' if op == '==' else '!='} ?", ("null",))
            column = cols.text if isinstance(literal, str) else cols.num
            value = _bind(kind, literal)
            if op == "==":
                return Sql(f"{column} = ?", (value,))
            if op == "!=":
                return Sql(f"({column} IS NULL OR {column} != ?)", (value,))
            return Sql(f"{self.ordered(column, literal)} {op} ?", (value,))
        assert cols.value is not None
        plain = self.widened(cols.value, (literal,))
        if literal is None:  # only nullable attributes get here
            return Sql(f"{plain} IS NULL" if op == "==" else f"{plain} IS NOT NULL")
        value = _bind(kind, literal)
        if op == "==":
            test = Sql(f"{plain} = ?", (value,))
        elif op == "!=":
            if kind == "float":  # a metric's NaN last or empty min/max: present, not equal
                return Sql(f"({plain} IS NULL OR {plain} != ?)", (value,))
            test = Sql(f"{plain} != ?", (value,))
        else:
            test = Sql(f"{self.ordered(plain, literal)} {op} ?", (value,))
        return fmt(f"({plain} IS NOT NULL AND {{}})", test) if kind == "nullable" else test

    def in_(self, cols: _Columns, kind: str, values: tuple[Scalar, ...], negated: bool) -> Sql:
        if kind == "typed":
            numbers = [float(v) for v in values if isinstance(v, int | float)]
            strings = [v for v in values if isinstance(v, str)]
            has_none = any(v is None for v in values)
            tests: list[Sql] = []
            if not negated:
                if numbers:
                    tests.append(fmt(f"{cols.num} IN ({{}})", placeholders(numbers)))
                if strings:
                    tests.append(fmt(f"{cols.text} IN ({{}})", placeholders(strings)))
                if has_none:
                    tests.append(Sql(f"{cols.vtype} = ?", ("null",)))
                return fmt("({})", join(" OR ", tests)) if len(tests) > 1 else tests[0]
            if numbers:
                found = placeholders(numbers)
                tests.append(fmt(f"({cols.num} IS NULL OR {cols.num} NOT IN ({{}}))", found))
            if strings:
                found = placeholders(strings)
                tests.append(fmt(f"({cols.text} IS NULL OR {cols.text} NOT IN ({{}}))", found))
            if has_none:
                tests.append(Sql(f"{cols.vtype} != ?", ("null",)))
            return fmt("({})", join(" AND ", tests)) if len(tests) > 1 else tests[0]
        assert cols.value is not None
        column = self.widened(cols.value, values)
        present = [_bind(kind, v) for v in values if v is not None]
        if column != cols.value.sql:  # widened to float: so must every number in the list be
            present = [float(v) if isinstance(v, int | float) else v for v in present]
        has_none = len(present) < len(values)
        if not negated:
            tests = []
            if present:
                tests.append(fmt(f"{column} IN ({{}})", placeholders(present)))
            if has_none:
                tests.append(Sql(f"{column} IS NULL"))
            return fmt("({})", join(" OR ", tests)) if len(tests) > 1 else tests[0]
        if kind == "float":
            return fmt(f"({column} IS NULL OR {column} NOT IN ({{}}))", placeholders(present))
        if not present:
            return Sql(f"{column} IS NOT NULL")
        test = fmt(f"{column} NOT IN ({{}})", placeholders(present))
        return fmt(f"({column} IS NOT NULL AND {{}})", test) if kind == "nullable" else test

    def match(self, cols: _Columns, kind: str, node: Match) -> Sql:
        if kind == "typed":
            column = cols.text
        else:
            assert cols.value is not None
            column = cols.value.sql
        if node.kind == "regex":
            test = self.regex(column, node.pattern)
        else:
            test = self.like(column, match_like(node.kind, node.pattern))
        if node.negated:
            # Only strings take part: a missing or non-string value matches neither way.
            return fmt(f"({column} IS NOT NULL AND NOT {{}})", test)
        return test

    def widened(self, column: _Column, literals: Sequence[Scalar]) -> str:
        """An integer column compared with a float literal, as a float: PostgreSQL would
        round ``2.5`` to an integer (``count <= 2.5`` would match 3) where Python compares
        exactly."""
        if column.integer and any(
            isinstance(v, float) for v in literals if not isinstance(v, bool)
        ):
            return f"CAST({column.sql} AS FLOAT)"
        return column.sql

    def ordered(self, column: str, literal: Scalar) -> str:
        return self.code_point_order(column) if isinstance(literal, str) else column

    # -- sorting ----------------------------------------------------------------------------

    def sort_values(self, field: Field) -> list[tuple[Sql, bool]]:
        """The values a field sorts by, in order of precedence, and whether each can be NULL
        (the run has no value, which sorts last)."""
        if field.source in ("param", "summary", "metric"):
            table = _VALUE_TABLES[field.source]
            columns = (
                [f"metrics.{_ACCESSOR_COLUMNS[field.accessor]}"]
                if field.source == "metric"
                else [f"{table}.num", f"{table}.text"]
            )
            values = [
                Sql(
                    f"(SELECT {column} FROM {table} "
                    f"WHERE {table}.run_number = runs.number AND {table}.key = ?)",
                    (field.key,),
                )
                for column in columns
            ]
            if len(values) == 2:
                values[1] = values[1]._replace(text=self.code_point_order(values[1].text))
            return [(v, True) for v in values]
        if field.source == "snapshot":

            def extract(part: str) -> str:
                value = self.snapshot_value(field.key, part)
                return f"(SELECT {value} FROM snapshots WHERE snapshots.run_number = runs.number)"

            return [
                (Sql(extract("num")), True),
                (Sql(self.code_point_order(extract("text"))), True),
            ]
        key = field.key
        if key == "experiment":
            name = "(SELECT experiments.name FROM experiments WHERE experiments.id = runs.experiment_id)"
            return [(Sql(self.code_point_order(name)), False)]
        if key == "duration":
            return [(Sql(_DURATION), True)]
        column = _RUN_COLUMNS[key]
        if key in ("status", "name", "user", "host"):
            return [(Sql(self.code_point_order(column)), False)]
        if key in _NULLABLE_TEXT:
            return [(Sql(self.code_point_order(column)), True)]
        return [(Sql(column), key == "ended")]
