"""The query language shared by the CLI, the Python API, the server and the UI.

A query is a Python-style expression, parsed with :mod:`ast` (never evaluated)::

    metrics.loss < 0.2 and params.lr >= 1e-3
    status == 'failed' or 'baseline' in tags
    loss < 0.2 and optimizer == 'adam'          # bare names: a param, else a metric
    0.1 < params.lr <= 1 and name.startswith('res')
    metrics['val/loss'].min < 0.3 and started > '2h ago'

:func:`parse_query` gives a :class:`Query`; :func:`evaluate` answers it for one run in Python
and :func:`sort_records` orders runs. The SQL stores compile the same :class:`Query` to SQL
(``labkeep.store.sql._compile_query``) with the same semantics: this package knows no
database, so the store layer can depend on it.
"""

from __future__ import annotations

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
    "evaluate",
    "filter_records",
    "parse_duration",
    "parse_query",
    "parse_relative_time",
    "parse_sort",
    "parse_time",
    "resolve",
    "sort_records",
    "sqlite_regexp",
]
