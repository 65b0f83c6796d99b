"""Compiled query clauses inside SQLAlchemy Core statements: the text that
:mod:`labkeep.store.sql._compile_query` emits for the statement's dialect, its placeholders
turned into SQLAlchemy bind parameters. The store never uses this: it runs that text on its
DB-API connection. It serves code that composes queries with Core
(``select(runs.c.number).where(clause)``): the query tests, which check the compiled SQL
against the models on both databases.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Float, String, bindparam
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement

if TYPE_CHECKING:
    from labkeep.store.sql._compile_query import Clause


class CoreClause(ColumnElement[Any]):
    """A :class:`Clause` as a Core element. Its text depends on the values bound, so it is
    never cached."""

    __visit_name__ = "labkeep_clause"
    inherit_cache = False

    def __init__(self, clause: Clause) -> None:
        self.clause = clause

    @property
    def _from_objects(self) -> list[Any]:
        return []


def core_clause(clause: Clause) -> CoreClause:
    return CoreClause(clause)


def _bind_type(value: Any) -> Any:
    if isinstance(value, float):
        return Float()
    if isinstance(value, int):
        return BigInteger()
    return String()


@compiles(CoreClause)
def _render(element: CoreClause, compiler: SQLCompiler, **kw: Any) -> str:
    sql = element.clause.sql(compiler.dialect.name)
    pieces = sql.text.split("?")
    assert len(pieces) == len(sql.params) + 1, sql.text
    out = [pieces[0]]
    for value, piece in zip(sql.params, pieces[1:], strict=True):
        out.append(compiler.process(bindparam(None, value, type_=_bind_type(value)), **kw))
        out.append(piece)
    return "".join(out)
