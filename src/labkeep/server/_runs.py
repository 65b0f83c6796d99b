"""Pages of runs for the read API: filtered and sorted by the query language, counted, and
turned into JSON rows.

On a SQL store the page is the store's own search (filter and order run in the database,
the total counted only when the page does not imply it) and one ``get_records`` of those
numbers, so the first page of 10,000 runs reads 50 runs, not 10,000. Other stores are filtered in Python with the same semantics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labkeep._json import record_as_dict
from labkeep.entities import RunRecord

if TYPE_CHECKING:
    from labkeep.query import KeyCatalog
    from labkeep.store._base import Store

DEFAULT_SORT = "-number"


@dataclass(frozen=True, slots=True)
class RunPage:
    total: int
    records: list[RunRecord]
    catalog: KeyCatalog


def search_runs(
    store: Store,
    *,
    experiment: str | None = None,
    where: str = "",
    sort: str = "",
    limit: int = 50,
    offset: int = 0,
    deleted: bool = False,
) -> RunPage:
    """One page of the runs that match ``where`` (the query language), ordered by ``sort``
    (``"-metrics.loss, params.lr"``; newest first when empty), with the total that match.

    Raises :class:`labkeep.query.QueryError` for a malformed or unknown filter or sort.
    """
    from labkeep.query import KeyCatalog, parse_query, parse_sort

    query = parse_query(where) if where.strip() else None
    sort_spec = parse_sort(sort) if sort.strip() else None
    if not store.exists():
        return RunPage(0, [], KeyCatalog(frozenset(), frozenset(), frozenset()))
    from labkeep.store.sql import SqlStore

    if isinstance(store, SqlStore):
        numbers, total, catalog = store.search_with_keys(
            where, sort, experiment or None, limit, offset, deleted_only=deleted
        )
        return RunPage(total, store.get_records(numbers) if numbers else [], catalog)
    return _search_python(store, experiment, query, sort_spec, limit, offset, deleted)


def _search_python(
    store: Store,
    experiment: str | None,
    query: Any,
    sort_spec: Any,
    limit: int,
    offset: int,
    deleted: bool,
) -> RunPage:
    from labkeep.query import KeyCatalog, filter_records, sort_records

    infos = store.list_runs(experiment, deleted_only=deleted)
    records = store.get_records([i.number for i in infos])
    catalog = KeyCatalog.from_records(records)
    if query is not None:
        records = filter_records(query, records, catalog=catalog)
    if sort_spec is not None:
        records = sort_records(records, sort_spec, catalog=catalog)
    return RunPage(len(records), records[offset : offset + limit], catalog)


def experiment_counts(store: Store) -> list[dict[str, Any]]:
    """Experiments, oldest first, with how many runs (not in the trash) each has."""
    if not store.exists():
        return []
    from labkeep.store.sql import SqlStore

    if isinstance(store, SqlStore):
        from sqlalchemy import func, select

        from labkeep.store.sql._schema import experiments, runs

        query = (
            select(experiments.c.name, func.count(runs.c.number))
            .select_from(experiments)
            .outerjoin(runs, (runs.c.experiment_id == experiments.c.id) & runs.c.deleted.is_(False))
            .group_by(experiments.c.id, experiments.c.name)
            .order_by(experiments.c.id)
        )
        with store.engine.connect() as conn:
            return [{"name": name, "runs": int(count)} for name, count in conn.execute(query)]
    counts: dict[str, int] = dict.fromkeys(store.list_experiments(), 0)
    for info in store.list_runs():
        counts[info.experiment] = counts.get(info.experiment, 0) + 1
    return [{"name": name, "runs": count} for name, count in counts.items()]


def compare_records(records: list[RunRecord], metric_keys: list[str] | None) -> dict[str, Any]:
    """What the compare page shows: the runs, every param key with those whose values differ
    between the runs (a run without the key differs), and the metric keys."""
    param_keys = sorted({k for rec in records for k in rec.params})
    differ = []
    for key in param_keys:
        seen = {
            json.dumps(rec.params[key], sort_keys=True) if key in rec.params else "\0missing"
            for rec in records
        }
        if len(seen) > 1:
            differ.append(key)
    all_metrics = sorted({k for rec in records for k in rec.metrics})
    if metric_keys:
        wanted = set(metric_keys)
        all_metrics = [k for k in all_metrics if k in wanted]
    return {
        "runs": [record_as_dict(rec) for rec in records],
        "params": {"keys": param_keys, "differ": differ},
        "metrics": {"keys": all_metrics},
    }
