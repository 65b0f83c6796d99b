"""``search_runs`` for SQL stores: the query language compiled to one statement that returns a
page of run numbers and the total count, with the store's key catalog kept briefly."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from labkeep.errors import InvalidInputError
from labkeep.query import (
    KeyCatalog,
    Query,
    QueryError,
    SortSpec,
    parse_query,
    parse_sort,
)

#: How long a loaded catalog is reused. A stale one cannot give wrong answers (see
#: :meth:`CatalogCache.get`); this only bounds how long a new key waits to be suggested.
CATALOG_TTL_S = 5.0
_ACCESSORS = ("last", "min", "max", "count", "step")


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
        from labkeep.query import load_catalog

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
    from sqlalchemy import select

    from labkeep.store.sql._schema import metrics, params

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
        table = params if source == "param" else metrics
        if conn.execute(select(table.c.run_number).where(table.c.key == key).limit(1)).first():
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


def search_runs(
    conn: Any,
    cache: CatalogCache,
    where: str | None,
    sort: str | Sequence[str] | None,
    experiment: str | None,
    limit: int | None,
    offset: int,
    include_deleted: bool,
    parent_uuid: str | None,
) -> tuple[list[int], int]:
    """One page of matching run numbers, in order, and how many match in all."""
    if limit is not None and limit < 0:
        raise InvalidInputError(f"limit must be 0 or more, not {limit}")
    if offset < 0:
        raise InvalidInputError(f"offset must be 0 or more, not {offset}")
    query, spec = parse_search(where, sort)
    prepare_read(conn)
    filters = _filters(experiment, include_deleted, parent_uuid)
    catalog: KeyCatalog | None = None
    fresh = True
    if query is not None or spec is not None:
        catalog, fresh = cache.get(conn, bare_names(query, spec))
    try:
        statement = _statement(query, spec, catalog, filters, limit, offset)
    except QueryError:
        if fresh:
            raise
        statement = _statement(query, spec, cache.reload(conn), filters, limit, offset)
    rows = conn.execute(statement).all()
    if rows:
        return [row[0] for row in rows], int(rows[0][1])
    if offset == 0 and limit != 0:
        return [], 0  # nothing matches
    # A page past the end, or limit 0: the count on its own.
    return [], _count(conn, query, catalog, filters)


#: Reads of large stores touch pages all over the file: mapped, they cost no system call.
SQLITE_MMAP_BYTES = 1 << 30


def prepare_read(conn: Any) -> None:
    """Per-connection settings for large reads (SQLite: memory-mapped I/O)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA mmap_size = {SQLITE_MMAP_BYTES}")


def _filters(experiment: str | None, include_deleted: bool, parent_uuid: str | None) -> list[Any]:
    from sqlalchemy import select

    from labkeep.store.sql._schema import experiments, runs

    filters: list[Any] = []
    if not include_deleted:
        filters.append(runs.c.deleted.is_(False))
    if experiment is not None:
        ids = select(experiments.c.id).where(experiments.c.name == experiment)
        filters.append(runs.c.experiment_id.in_(ids))
    if parent_uuid is not None:
        filters.append(runs.c.parent_uuid == parent_uuid)
    return filters


def _statement(
    query: Query | None,
    spec: SortSpec | None,
    catalog: KeyCatalog | None,
    filters: list[Any],
    limit: int | None,
    offset: int,
) -> Any:
    from sqlalchemy import func, select

    from labkeep.query import compile_query, sort_clause
    from labkeep.store.sql._schema import runs

    conditions = list(filters)
    if query is not None:
        conditions.append(compile_query(query, catalog))
    order = [*sort_clause(spec, catalog)] if spec is not None else []
    order.append(runs.c.number.desc())
    # The total rides along as a window count: the filter runs once for page and count.
    statement = (
        select(runs.c.number, func.count().over().label("total"))
        .where(*conditions)
        .order_by(*order)
    )
    if offset:
        statement = statement.offset(offset)
    if limit is not None:
        statement = statement.limit(limit)
    return statement


def _count(conn: Any, query: Query | None, catalog: KeyCatalog | None, filters: list[Any]) -> int:
    from sqlalchemy import func, select

    from labkeep.query import compile_query
    from labkeep.store.sql._schema import runs

    conditions = list(filters)
    if query is not None:
        conditions.append(compile_query(query, catalog))
    total = conn.execute(select(func.count()).select_from(runs).where(*conditions)).scalar()
    return int(total or 0)
