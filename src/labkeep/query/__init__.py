"""The query language shared by the CLI, the Python API, the server and the UI.

A query is a Python-style expression, parsed with :mod:`ast` (never evaluated)::

    metrics.loss < 0.2 and params.lr >= 1e-3
    status == 'failed' or 'baseline' in tags
    loss < 0.2 and optimizer == 'adam'          # bare names: a param, else a metric
    0.1 < params.lr <= 1 and name.startswith('res')
    metrics['val/loss'].min < 0.3 and started > '2h ago'

:func:`parse_query` gives a :class:`Query`; :func:`compile_query` turns it into a SQLAlchemy
boolean for SQLite and PostgreSQL; :func:`evaluate` answers it for one run in Python with the
same semantics; :func:`sort_clause` and :func:`sort_records` order runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labkeep.query._dates import parse_duration, parse_relative_time, parse_time
from labkeep.query._errors import QueryError
from labkeep.query._evaluate import evaluate, filter_records, sort_records
from labkeep.query._nodes import (
    ATTRIBUTES,
    And,
    AttributeSpec,
    Compare,
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
    SortKey,
    SortSpec,
    Span,
    alias_attribute,
)
from labkeep.query._parse import parse_query, parse_sort
from labkeep.query._patterns import sqlite_regexp
from labkeep.query._resolve import resolve

if TYPE_CHECKING:
    from labkeep.query._compile_sql import compile_query, load_catalog, sort_clause

__all__ = [
    "ATTRIBUTES",
    "And",
    "AttributeSpec",
    "Compare",
    "Field",
    "HasKey",
    "HasTag",
    "In",
    "KeyCatalog",
    "Match",
    "Node",
    "Not",
    "Or",
    "Query",
    "QueryError",
    "RunRecordLike",
    "SortKey",
    "SortSpec",
    "Span",
    "alias_attribute",
    "compile_query",
    "evaluate",
    "filter_records",
    "load_catalog",
    "parse_duration",
    "parse_query",
    "parse_relative_time",
    "parse_sort",
    "parse_time",
    "resolve",
    "sort_clause",
    "sort_records",
    "sqlite_regexp",
]

# The SQL compiler imports SQLAlchemy; load it on first use so that parsing stays light.
_LAZY = {"compile_query", "load_catalog", "sort_clause"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from labkeep.query import _compile_sql

        return getattr(_compile_sql, name)
    raise AttributeError(f"module 'labkeep.query' has no attribute {name!r}")
