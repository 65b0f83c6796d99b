"""Pages of runs for the read API: filtered and sorted by the query language, counted, and
turned into JSON rows.

Everything goes through the Store interface, so the runs page works the same on every
backend: the store's own search (on SQL stores filter and order run in the database, the
total counted only when the page does not imply it), one ``get_records`` of those numbers
(the first page of 10,000 runs reads 50 runs, not 10,000) and the store's key catalog for
the column picker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labkeep._json import record_as_dict
from labkeep._values import MISSING, differing_keys
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
    #: Each listed run's children by status (runs without children left out): what the
    #: runs table's tree shows beside a parent it can expand.
    children: dict[str, dict[str, int]] = field(default_factory=dict)


def search_runs(
    store: Store,
    *,
    experiment: str | None = None,
    where: str = "",
    sort: str = "",
    limit: int = 50,
    offset: int = 0,
    deleted: bool = False,
    top: bool = False,
    parent_uuid: str | None = None,
) -> RunPage:
    """One page of the runs that match ``where`` (the query language), ordered by ``sort``
    (``"-metrics.loss, params.lr"``; newest first when empty), with the total that match.
    ``top`` keeps the top-level runs (those without a parent); ``parent_uuid`` the children
    of that run. Each run's children are counted by status.

    Raises :class:`labkeep.query.QueryError` for a malformed or unknown filter or sort.
    """
    from labkeep.query import KeyCatalog, parse_query, parse_sort

    if where.strip():
        parse_query(where)  # a malformed filter or sort is an error even with no runs
    if sort.strip():
        parse_sort(sort)
    if not store.exists():
        return RunPage(0, [], KeyCatalog())
    catalog = store.get_key_catalog()  # read first: the search below reuses it
    if top:
        where = f"({where}) and parent == None" if where.strip() else "parent == None"
    numbers, total = store.search_runs(
        where, sort, experiment or None, limit, offset, parent_uuid=parent_uuid,
        deleted_only=deleted,
    )  # fmt: skip
    records = store.get_records(numbers) if numbers else []
    children = store.count_children([r.info.uuid for r in records]) if records else {}
    return RunPage(total, records, catalog, children)


def experiment_counts(store: Store) -> list[dict[str, Any]]:
    """Experiments, oldest first, with how many runs (not in the trash) each has."""
    if not store.exists():
        return []
    return [{"name": n, "runs": count} for n, count in store.count_runs_per_experiment().items()]


def compare_records(records: list[RunRecord], metric_keys: list[str] | None) -> dict[str, Any]:
    """What the compare page shows: the runs, every param key with those whose values differ
    between the runs (a run without the key differs), and the metric keys."""
    param_keys = sorted({k for rec in records for k in rec.params})
    differ = differing_keys(
        {k: [rec.params.get(k, MISSING) for rec in records] for k in param_keys}
    )
    all_metrics = sorted({k for rec in records for k in rec.metrics})
    if metric_keys:
        wanted = set(metric_keys)
        all_metrics = [k for k in all_metrics if k in wanted]
    return {
        "runs": [record_as_dict(rec) for rec in records],
        "params": {"keys": param_keys, "differ": differ},
        "metrics": {"keys": all_metrics},
    }
