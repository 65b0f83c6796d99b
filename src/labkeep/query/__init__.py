"""The query language shared by the CLI, the Python API, the server and the UI.

A query is a Python-style expression, parsed with :mod:`ast` (never evaluated)::

    metrics.loss < 0.2 and params.lr >= 1e-3
    status == 'failed' or 'baseline' in tags
    loss < 0.2 and optimizer == 'adam'          # bare names: a param, else a metric
    0.1 < params.lr <= 1 and name.startswith('res')
    metrics['val/loss'].min < 0.3 and started > '2h ago'

:func:`parse_query` gives a :class:`Query`; :func:`filter_records` answers it for runs in
Python and :func:`sort_records` orders them. The SQL stores compile the same :class:`Query` to SQL
(``labkeep.store.sql._compile_query``) with the same semantics: this package knows no
database, so the store layer can depend on it.
"""

from __future__ import annotations

from labkeep.query._errors import QueryError, suggest
from labkeep.query._evaluate import filter_records, sort_records
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
from labkeep.query._parse import parse_query, parse_sort
from labkeep.query._patterns import like_to_glob, match_like, sqlite_regexp
from labkeep.query._resolve import resolve, resolve_sort

# What the layers above use (the SQL stores compile the tree of nodes); a test pins it
# (tests/unit/test_public_names.py).
__all__ = [
    "And",
    "Compare",
    "CompareOp",
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
    "Scalar",
    "SortSpec",
    "filter_records",
    "like_to_glob",
    "match_like",
    "parse_query",
    "parse_sort",
    "resolve",
    "resolve_sort",
    "snapshot_path",
    "sort_records",
    "sqlite_regexp",
    "suggest",
]
