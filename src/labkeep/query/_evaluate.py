"""The query semantics in plain Python: what :func:`compile_query` does in SQL, answer for
answer (the property tests hold the two together).

Every test is true or false, never unknown: a comparison on a key the run lacks is false
(``!=`` and ``not in`` included), ``not`` negates the whole test, so ``not (lr > 0.1)`` holds
for a run without ``lr``. Numbers compare with numbers (bools as 1 and 0, as in Python),
strings with strings in code point order; a value of another type never matches, except
that ``!=`` holds for any present value that is not equal. NaN (a metric's ``last``, a param)
equals nothing.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any, TypeVar

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
    RunRecordLike,
    Scalar,
    SortSpec,
    snapshot_path,
)
from labkeep.query._parse import parse_sort
from labkeep.query._patterns import like_regex, match_like
from labkeep.query._resolve import resolve, resolve_sort

R = TypeVar("R", bound=RunRecordLike)

#: Sources whose values are typed (numbers, strings, bools, None, lists).
_TYPED = ("param", "summary", "snapshot")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

_ORDER: dict[CompareOp, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def evaluate(query: Query, run: RunRecordLike, *, catalog: KeyCatalog | None = None) -> bool:
    """Whether ``run`` matches ``query``. Bare names resolve against ``catalog`` (the store's
    keys, as :func:`compile_query` does); without one, against the run's own keys, and
    explicit keys the run lacks simply do not match.

    >>> evaluate(parse_query("params.lr < 0.1 and 'baseline' in tags"), run_record)
    True
    """
    if catalog is None:
        resolved = resolve(query, KeyCatalog.from_records([run]), check_keys=False)
    else:
        resolved = resolve(query, catalog)
    return _test(resolved.root, run)


def filter_records(
    query: Query, records: Iterable[R], *, catalog: KeyCatalog | None = None
) -> list[R]:
    """The records that match ``query``, in order; bare names resolve against ``catalog``,
    or else against the keys of all ``records``."""
    runs = list(records)
    if catalog is None:
        resolved = resolve(query, KeyCatalog.from_records(runs), check_keys=False)
    else:
        resolved = resolve(query, catalog)
    return [r for r in runs if _test(resolved.root, r)]


def sort_records(
    records: Iterable[R],
    spec: str | Sequence[str] | SortSpec,
    *,
    catalog: KeyCatalog | None = None,
) -> list[R]:
    """``records`` ordered as :func:`sort_clause` orders rows: per key numbers, then strings,
    then runs without a comparable value, which come last in both directions."""
    runs = list(records)
    parsed = spec if isinstance(spec, SortSpec) else parse_sort(_as_list(spec))
    if catalog is None:
        resolved = resolve_sort(parsed, KeyCatalog.from_records(runs), check_keys=False)
    else:
        resolved = resolve_sort(parsed, catalog)
    for key in reversed(resolved.keys):
        present = [(r, _sort_value(key.field, r)) for r in runs]
        ranked = sorted(present, key=lambda p: p[1][0])
        groups: list[list[tuple[R, tuple[int, Any]]]] = [[], [], []]
        for item in ranked:
            groups[item[1][0]].append(item)
        runs = []
        for rank, group in enumerate(groups):
            if rank < 2:
                group.sort(key=lambda p: p[1][1], reverse=key.descending)
            runs.extend(r for r, _ in group)
    return runs


def _as_list(spec: str | Sequence[str]) -> str | list[str]:
    return spec if isinstance(spec, str) else list(spec)


# -- values ----------------------------------------------------------------------------------


def field_value(field: Field, run: RunRecordLike) -> Any:
    """The value a resolved field reads from ``run``: the typed value, a float (NaN for a
    metric's NaN ``last`` or empty ``min``/``max``), or :data:`MISSING`."""
    if field.source == "param":
        return run.params.get(field.key, MISSING)
    if field.source == "summary":
        return run.summary.get(field.key, MISSING)
    if field.source == "snapshot":
        return _snapshot_value(run, field.key)
    if field.source == "metric":
        summary = run.metrics.get(field.key)
        if summary is None:
            return MISSING
        if field.accessor == "count":
            return summary.count
        if field.accessor == "step":
            return summary.last_step
        value = {"last": summary.last, "min": summary.min, "max": summary.max}[field.accessor]
        return math.nan if value is None else float(value)
    info = run.info
    key = field.key
    if key == "status":
        return str(info.status)
    if key == "started":
        return info.start_time
    if key == "ended":
        return info.end_time
    if key == "duration":
        return info.duration
    if key in ("group", "job_type"):
        return getattr(info, key, None)
    if key == "parent":
        return getattr(info, "parent_uuid", None)
    if key in ("experiment", "name", "number", "user", "host"):
        return getattr(info, key)
    raise ValueError(f"unknown attribute {key!r}")


def _snapshot_value(run: RunRecordLike, key: str) -> Any:
    """A path such as ``git.commit`` into the record's ``snapshot`` mapping (records without
    one, like :class:`labkeep.entities.RunRecord`, have nothing there)."""
    node: Any = getattr(run, "snapshot", None)
    for part in snapshot_path(key):
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


def as_number(value: object) -> float | None:
    """A typed value as the ``num`` column holds it: int, float and bool as float, NaN as
    None (SQL NULL), anything else None."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    if isinstance(value, float):
        return None if math.isnan(value) else value
    return None


def _equal(field: Field, value: Any, literal: Scalar) -> bool:
    """``value == literal`` for a present value."""
    if field.source in _TYPED:
        if literal is None:
            return value is None
        if isinstance(literal, str):
            return isinstance(value, str) and value == literal
        number = as_number(value)
        return number is not None and number == float(literal)
    if literal is None:
        return value is None
    if value is None:
        return False
    if field.source == "metric" and field.accessor not in ("count", "step"):
        return bool(value == float(literal))
    return bool(value == literal)


def _compare(field: Field, value: Any, op: CompareOp, literal: Scalar) -> bool:
    if value is MISSING:
        return False
    if field.source == "attr" and value is None:
        # An empty attribute (a running run's end) is a missing value, except for == None.
        return op == "==" and literal is None
    if op == "==":
        return _equal(field, value, literal)
    if op == "!=":
        return not _equal(field, value, literal)
    order = _ORDER[op]
    if field.source in _TYPED:
        if isinstance(literal, str):
            return isinstance(value, str) and order(value, literal)
        number = as_number(value)
        return number is not None and order(number, float(literal))  # type: ignore[arg-type]
    if field.source == "metric" and field.accessor not in ("count", "step"):
        return bool(order(value, float(literal)))  # type: ignore[arg-type]
    return bool(order(value, literal))


def _string_test(kind: str, pattern: str, value: str) -> bool:
    if kind == "regex":
        return _regex(pattern).search(value) is not None
    return like_regex(match_like(kind, pattern)).fullmatch(value) is not None


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _test(node: Node, run: RunRecordLike) -> bool:
    if isinstance(node, And):
        return all(_test(i, run) for i in node.items)
    if isinstance(node, Or):
        return any(_test(i, run) for i in node.items)
    if isinstance(node, Not):
        return not _test(node.item, run)
    if isinstance(node, HasTag):
        return (node.tag in run.tags) != node.negated
    if isinstance(node, HasKey):
        keys = {"param": run.params, "metric": run.metrics, "summary": run.summary}[node.source]
        return (node.key in keys) != node.negated
    value = field_value(node.field, run)
    if isinstance(node, Compare):
        return _compare(node.field, value, node.op, node.value)
    if isinstance(node, In):
        if node.negated:
            return all(_compare(node.field, value, "!=", v) for v in node.values)
        return any(_compare(node.field, value, "==", v) for v in node.values)
    if isinstance(node, Match):
        if not isinstance(value, str):
            return False
        return _string_test(node.kind, node.pattern, value) != node.negated
    raise AssertionError(node)


# -- sorting -----------------------------------------------------------------------------------


def _sort_value(field: Field, run: RunRecordLike) -> tuple[int, Any]:
    """(rank, value): rank 0 numbers, 1 strings, 2 nothing comparable (sorts last)."""
    value = field_value(field, run)
    if value is MISSING or value is None:
        return (2, None)
    if field.source in _TYPED:
        number = as_number(value)
        if number is not None:
            return (0, number)
        return (1, value) if isinstance(value, str) else (2, None)
    if isinstance(value, float) and math.isnan(value):
        return (2, None)
    return (1, value) if isinstance(value, str) else (0, value)
