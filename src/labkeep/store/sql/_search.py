"""``search_runs`` for SQL stores: the query language compiled to SQL, with the store's key
catalog kept briefly.

A page and the total are separate statements, so that a page costs what it shows:

* A limited page sorted by a key with an index (a metric's last value, a param or summary's
  number) walks that index in order, joins each run and tests the query with one primary-key
  probe per key (``EXISTS``), and stops at the page's end. The walk is bounded to the first
  :data:`WALK_ROWS` index entries (plus the page): a query that few runs match would make
  an unbounded walk probe most of the store. A limited page in the default order (newest
  first) walks the run numbers down in the same way.
* Otherwise (the bounded walk came up short, no limit, other sort keys) one statement filters
  with ``IN`` lists built from the covering indexes, then sorts.
* The total is one ``count(*)`` with ``IN`` lists, read only when asked for (or implied by a
  short page); :func:`count_runs_within` gives up past a budget of SQLite steps, for listings
  that show a total only when it is cheap.

Every statement is SQL text with bound parameters (:mod:`._compile_query`), run on the
store's DB-API :class:`~labkeep.store.sql._connect.Connection`: no SQLAlchemy at query time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from labkeep.errors import InvalidInputError
from labkeep.query import (
    Field,
    KeyCatalog,
    Query,
    QueryError,
    SortSpec,
    parse_query,
    parse_sort,
)
from labkeep.store._base import implied_total
from labkeep.store.sql._compile_query import (
    Sql,
    compile_query,
    dialect_of,
    fetch_all,
    fmt,
    join,
    load_catalog,
    sort_clause,
)

T = TypeVar("T")

#: How long a loaded catalog is reused. A stale one cannot give wrong answers (see
#: :meth:`CatalogCache.get`); this only bounds how long a new key waits to be suggested.
CATALOG_TTL_S = 5.0
_ACCESSORS = ("last", "min", "max", "count", "step")
#: How many index entries past the page a walk may test before the filtering plan takes over.
WALK_ROWS = 2_000


class CatalogCache:
    """The param, metric and summary keys of one store, reloaded when they may have changed.

    A cached catalog can only be wrong by missing keys added since it was read. Explicit keys
    it misses raise an "unknown key" QueryError, upon which the search reloads and retries
    once; a bare name could resolve differently (a param ``loss`` added beside the metric
    ``loss``), so before bare names are resolved each key they could mean that the cache
    lacks is looked up with one index seek.
    """

    def __init__(self, ttl: float = CATALOG_TTL_S) -> None:
        self.ttl = ttl
        self._catalog: KeyCatalog | None = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def get(self, conn: Any, bare_names: set[str]) -> tuple[KeyCatalog, bool]:
        """(catalog, whether it was read just now)."""
        with self._lock:
            catalog, loaded_at = self._catalog, self._loaded_at
        if catalog is None or time.monotonic() - loaded_at > self.ttl:
            return self.reload(conn), True
        if bare_names and _keys_added(conn, catalog, bare_names):
            return self.reload(conn), True
        return catalog, False

    def reload(self, conn: Any) -> KeyCatalog:
        catalog = load_catalog(conn)
        with self._lock:
            self._catalog, self._loaded_at = catalog, time.monotonic()
        return catalog

    def clear(self) -> None:
        with self._lock:
            self._catalog = None


def _keys_added(conn: Any, catalog: KeyCatalog, names: set[str]) -> bool:
    """Whether a param or metric that one of the bare ``names`` could mean exists in the
    store but not in ``catalog``."""
    wanted: set[tuple[str, str]] = set()
    for name in names:
        wanted.update({("param", name), ("metric", name)})
        head, _, tail = name.rpartition(".")
        if head and tail in _ACCESSORS:
            wanted.update({("param", head), ("metric", head)})
    for source, key in sorted(wanted):
        known = catalog.params if source == "param" else catalog.metrics
        if key in known:
            continue
        table = "params" if source == "param" else "metrics"
        if fetch_all(conn, Sql(f"SELECT run_number FROM {table} WHERE key = ? LIMIT 1", (key,))):
            return True
    return False


def bare_names(query: Query | None, spec: SortSpec | None) -> set[str]:
    """The bare names (``loss``, not ``metrics.loss``) of a query and a sort."""
    fields = query.fields() if query is not None else []
    if spec is not None:
        fields.extend(k.field for k in spec.keys)
    return {f.key for f in fields if f.source == "name"}


def parse_search(
    where: str | None, sort: str | Sequence[str] | None
) -> tuple[Query | None, SortSpec | None]:
    """The parsed query and sort; empty text means none."""
    query = parse_query(where) if where is not None and where.strip() else None
    if isinstance(sort, str):
        spec = parse_sort(sort) if sort.strip() else None
    elif sort:
        items = [s for s in sort if s.strip()]
        spec = parse_sort(items) if items else None
    else:
        spec = None
    return query, spec


@dataclass(frozen=True, slots=True)
class RunSearch:
    """What a search asks for: the query ``where``, the ``sort``, one page of it
    (``limit``, ``offset``), and which runs it looks among (an experiment's, a parent's
    children, runs in the trash too with ``include_deleted``, only those with
    ``deleted_only``)."""

    where: str | None = None
    sort: str | Sequence[str] | None = None
    experiment: str | None = None
    limit: int | None = None
    offset: int = 0
    include_deleted: bool = False
    parent_uuid: str | None = None
    deleted_only: bool = False

    def filters(self) -> list[Sql]:
        """The conditions on ``runs`` that pick the runs searched among."""
        filters: list[Sql] = []
        if self.deleted_only:
            filters.append(Sql("runs.deleted"))
        elif not self.include_deleted:
            filters.append(Sql("NOT runs.deleted"))
        if self.experiment is not None:
            filters.append(
                Sql(
                    "runs.experiment_id IN (SELECT experiments.id FROM experiments "
                    "WHERE experiments.name = ?)",
                    (self.experiment,),
                )
            )
        if self.parent_uuid is not None:
            filters.append(Sql("runs.parent_uuid = ?", (self.parent_uuid,)))
        return filters


def search_runs(conn: Any, cache: CatalogCache, search: RunSearch) -> tuple[list[int], int]:
    """One page of matching run numbers, in order, and how many match in all."""
    numbers = search_page(conn, cache, search)
    total = implied_total(numbers, search.limit, search.offset)
    if total is None:
        total = count_runs(conn, cache, search)
    return numbers, total


def search_page(conn: Any, cache: CatalogCache, search: RunSearch) -> list[int]:
    """One page of matching run numbers, in order."""
    limit, offset = search.limit, search.offset
    if limit is not None and limit < 0:
        raise InvalidInputError(f"limit must be 0 or more, not {limit}")
    if offset < 0:
        raise InvalidInputError(f"offset must be 0 or more, not {offset}")
    query, spec = parse_search(search.where, search.sort)
    filters = search.filters()

    def page(catalog: KeyCatalog | None) -> list[int]:
        return _page(conn, query, spec, catalog, filters, limit, offset)

    return _with_catalog(conn, cache, query, spec, page)


def count_runs(conn: Any, cache: CatalogCache, search: RunSearch) -> int:
    """How many runs match (the page and the sort are not looked at)."""
    query, _ = parse_search(search.where, None)
    filters = search.filters()

    def count(catalog: KeyCatalog | None) -> int:
        return _count(conn, query, catalog, filters)

    return _with_catalog(conn, cache, query, None, count)


def count_runs_within(conn: Any, cache: CatalogCache, search: RunSearch, steps: int) -> int | None:
    """How many runs match, or None when SQLite would take more than ``steps`` virtual
    machine steps to count them (other databases always count)."""
    query, _ = parse_search(search.where, None)
    filters = search.filters()

    def count(catalog: KeyCatalog | None) -> int | None:
        if dialect_of(conn) != "sqlite":
            return _count(conn, query, catalog, filters)
        return _count_within(conn, query, catalog, filters, steps)

    return _with_catalog(conn, cache, query, None, count)


#: How many SQLite virtual machine steps pass between checks of a step budget.
_STEP_GRAIN = 1_000


def _count_within(
    conn: Any, query: Query | None, catalog: KeyCatalog | None, filters: list[Sql], steps: int
) -> int | None:
    import sqlite3

    raw = conn.raw.sqlite
    checks = [0]

    def over_budget() -> int:
        checks[0] += 1
        return int(checks[0] * _STEP_GRAIN > steps)

    raw.set_progress_handler(over_budget, _STEP_GRAIN)
    try:
        return _count(conn, query, catalog, filters)
    except sqlite3.OperationalError:  # "interrupted"
        if checks[0] * _STEP_GRAIN > steps:
            return None
        raise
    finally:
        raw.set_progress_handler(None, 0)


def _with_catalog(
    conn: Any,
    cache: CatalogCache,
    query: Query | None,
    spec: SortSpec | None,
    work: Callable[[KeyCatalog | None], T],
) -> T:
    """``work(catalog)``, retried once with a fresh catalog if a cached one missed a key."""
    if query is None and spec is None:
        return work(None)
    catalog, fresh = cache.get(conn, bare_names(query, spec))
    try:
        return work(catalog)
    except QueryError:
        if fresh:
            raise
        return work(cache.reload(conn))


def _where(conditions: list[Sql]) -> Sql:
    return fmt(" WHERE {}", join(" AND ", conditions)) if conditions else Sql("")


def _paged(conn: Any, statement: Sql, limit: int | None, offset: int) -> Sql:
    """``statement`` with LIMIT and OFFSET (SQLite needs a LIMIT before an OFFSET)."""
    if limit is not None:
        statement = Sql(statement.text + " LIMIT ?", (*statement.params, limit))
    elif offset and dialect_of(conn) == "sqlite":
        statement = Sql(statement.text + " LIMIT -1", statement.params)
    if offset:
        statement = Sql(statement.text + " OFFSET ?", (*statement.params, offset))
    return statement


def _page(
    conn: Any,
    query: Query | None,
    spec: SortSpec | None,
    catalog: KeyCatalog | None,
    filters: list[Sql],
    limit: int | None,
    offset: int,
) -> list[int]:
    dialect = dialect_of(conn)
    if limit == 0:  # nothing to read, but a wrong query or sort is still an error
        if query is not None:
            compile_query(query, catalog)
        if spec is not None:
            sort_clause(spec, catalog)
        return []
    if limit is not None:
        walked = _walk(conn, query, spec, catalog, filters, limit, offset)
        if walked is not None:
            return walked
    conditions = list(filters)
    if query is not None:
        conditions.append(compile_query(query, catalog).sql(dialect))
    order = [c.sql(dialect) for c in sort_clause(spec, catalog)] if spec is not None else []
    order.append(Sql("runs.number DESC"))
    statement = fmt(
        "SELECT runs.number FROM runs{} ORDER BY {}", _where(conditions), join(", ", order)
    )
    return [row[0] for row in fetch_all(conn, _paged(conn, statement, limit, offset))]


def _walk(
    conn: Any,
    query: Query | None,
    spec: SortSpec | None,
    catalog: KeyCatalog | None,
    filters: list[Sql],
    limit: int,
    offset: int,
) -> list[int] | None:
    """The page from a bounded walk in sort order (see the module's docstring), or None when
    the walk cannot tell it: no index for the first sort key, or fewer than ``limit`` runs
    matched among the entries walked (the page may lie beyond them, or among runs without
    the key, which sort last)."""
    from labkeep.query._resolve import resolve_sort

    dialect = dialect_of(conn)
    window = WALK_ROWS + offset + limit
    conditions = list(filters)
    if query is not None:
        conditions.append(compile_query(query, catalog, probe=True).sql(dialect))
    if spec is None:
        # Newest first: the runs above the window-th newest number.
        floor = fetch_all(
            conn,
            Sql("SELECT number FROM runs ORDER BY number DESC LIMIT 1 OFFSET ?", (window - 1,)),
        )
        if floor:
            conditions.append(Sql("runs.number > ?", (floor[0][0],)))
        statement = fmt(
            "SELECT runs.number FROM runs{} ORDER BY runs.number DESC", _where(conditions)
        )
    else:
        resolved = resolve_sort(spec, catalog)
        first = resolved.keys[0]
        indexed = _indexed_value(first.field)
        if indexed is None:
            return None
        # Aliased, so that the tests' own subqueries on the same table stay their own.
        table, column = indexed
        value = f"walked.{column}"
        present = [Sql("walked.key = ?", (first.field.key,)), Sql(f"{value} IS NOT NULL")]
        ordered = f"{value} DESC" if first.descending else f"{value} ASC"
        # Entries strictly before the window-th are walked: ties at the edge all or none.
        edge = fetch_all(
            conn,
            _paged(
                conn,
                fmt(
                    f"SELECT {value} FROM {table} AS walked{{}} ORDER BY {ordered}", _where(present)
                ),
                1,
                window - 1,
            ),
        )
        if edge:
            sign = ">" if first.descending else "<"
            present.append(Sql(f"{value} {sign} ?", (edge[0][0],)))
        rest = SortSpec(spec.text, resolved.keys[1:])
        order = [Sql(ordered), *(c.sql(dialect) for c in sort_clause(rest, catalog))]
        order.append(Sql("runs.number DESC"))
        statement = fmt(
            f"SELECT runs.number FROM {table} AS walked "
            "JOIN runs ON runs.number = walked.run_number{} ORDER BY {}",
            _where(present + conditions),
            join(", ", order),
        )
    found = [row[0] for row in fetch_all(conn, _paged(conn, statement, limit, offset))]
    return found if len(found) == limit else None


def _indexed_value(field: Field) -> tuple[str, str] | None:
    """The table and column whose ``(key, column, run_number)`` index orders runs by
    ``field`` (its first sort value), if there is one."""
    if field.source == "metric" and field.accessor == "last":
        return "metrics", "last"
    if field.source == "param":
        return "params", "num"
    if field.source == "summary":
        return "summaries", "num"
    return None


def _count(conn: Any, query: Query | None, catalog: KeyCatalog | None, filters: list[Sql]) -> int:
    conditions = list(filters)
    if query is not None:
        conditions.append(compile_query(query, catalog).sql(dialect_of(conn)))
    rows = fetch_all(conn, fmt("SELECT count(*) FROM runs{}", _where(conditions)))
    return int(rows[0][0] or 0)
