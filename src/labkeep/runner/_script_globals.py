"""Flags from a script's module-level literal assignments, read with :mod:`ast` (never run)."""

from __future__ import annotations

import ast

from labkeep.runner._bootstrap import first_assignments
from labkeep.runner._flag import Flag, FlagValue, type_of

_NOT_LITERAL = object()


def literal_value(node: ast.expr) -> object:
    """The value of a literal flag expression, or ``_NOT_LITERAL``.

    Literals are numbers (negative too), strings, booleans, ``None`` and lists of those.
    """
    if isinstance(node, ast.Constant):
        value = node.value
        if value is None or isinstance(value, bool | int | float | str):
            return value
        return _NOT_LITERAL
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = node.operand
        if (
            isinstance(operand, ast.Constant)
            and isinstance(operand.value, int | float)
            and not isinstance(operand.value, bool)
        ):
            return -operand.value if isinstance(node.op, ast.USub) else operand.value
        return _NOT_LITERAL
    if isinstance(node, ast.List):
        items = [literal_value(elt) for elt in node.elts]
        if any(item is _NOT_LITERAL for item in items):
            return _NOT_LITERAL
        return items
    return _NOT_LITERAL


def global_flags(tree: ast.Module, source_lines: list[str] | None = None) -> list[Flag]:
    """One flag per name whose first module-level assignment is a literal.

    Names starting with ``_`` are private and skipped; so are names first bound by tuple
    unpacking. A trailing ``# comment`` on the assignment's last line becomes the flag's help.
    """
    flags: list[Flag] = []
    for name, stmt in first_assignments(tree).items():
        if name.startswith("_"):
            continue
        if isinstance(stmt, ast.Assign):
            if not any(isinstance(t, ast.Name) and t.id == name for t in stmt.targets):
                continue
            value_node = stmt.value
        else:
            assert stmt.value is not None
            value_node = stmt.value
        value = literal_value(value_node)
        if value is _NOT_LITERAL:
            continue
        default: FlagValue = value  # type: ignore[assignment]
        flags.append(
            Flag(
                name=name,
                kind="global",
                type=type_of(default),
                default=default,
                help=_trailing_comment(stmt, source_lines),
                line=stmt.lineno,
            )
        )
    return flags


def _trailing_comment(stmt: ast.stmt, lines: list[str] | None) -> str:
    if lines is None or stmt.end_lineno is None or stmt.end_col_offset is None:
        return ""
    try:
        line = lines[stmt.end_lineno - 1]
    except IndexError:
        return ""
    rest = line.encode()[stmt.end_col_offset :].decode(errors="replace").strip()
    if rest.startswith("#"):
        return rest.lstrip("#").strip()
    return ""
