"""String patterns: the LIKE form users type (``%`` any run of characters, ``_`` one,
``\\`` escapes), in the spelling each backend and Python need.

Every pattern is kept in one canonical LIKE spelling; PostgreSQL's case-sensitive ``LIKE``
takes it as is, SQLite gets the equivalent ``GLOB`` pattern (SQLite's ``LIKE`` ignores ASCII
case), and the Python evaluator a regular expression.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

TokenKind = Literal["lit", "any", "one"]


def like_tokens(pattern: str) -> list[tuple[TokenKind, str]]:
    """Split a LIKE pattern into literal text, ``%`` (any) and ``_`` (one)."""
    tokens: list[tuple[TokenKind, str]] = []
    literal: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            literal.append(pattern[i + 1])
            i += 2
            continue
        if ch in "%_":
            if literal:
                tokens.append(("lit", "".join(literal)))
                literal = []
            tokens.append(("any" if ch == "%" else "one", ch))
        else:
            literal.append(ch)
        i += 1
    if literal:
        tokens.append(("lit", "".join(literal)))
    return tokens


def escape_like(text: str) -> str:
    """``text`` as a LIKE pattern that matches exactly it."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def canonical_like(pattern: str) -> str:
    """The pattern re-spelled so that every backend reads it the same way (a trailing lone
    backslash becomes a literal backslash)."""
    out: list[str] = []
    for kind, text in like_tokens(pattern):
        out.append(escape_like(text) if kind == "lit" else text)
    return "".join(out)


def like_to_glob(pattern: str) -> str:
    """The SQLite ``GLOB`` pattern equivalent to a LIKE pattern."""
    out: list[str] = []
    for kind, text in like_tokens(pattern):
        if kind == "any":
            out.append("*")
        elif kind == "one":
            out.append("?")
        else:
            out.append("".join(f"[{c}]" if c in "*?[" else c for c in text))
    return "".join(out)


@lru_cache(maxsize=256)
def like_regex(pattern: str) -> re.Pattern[str]:
    """A compiled regular expression that fully matches what the LIKE pattern matches."""
    parts: list[str] = []
    for kind, text in like_tokens(pattern):
        parts.append(".*" if kind == "any" else "." if kind == "one" else re.escape(text))
    return re.compile("".join(parts), re.DOTALL)


def match_like(kind: str, pattern: str) -> str:
    """The canonical LIKE pattern for a string test (``startswith``, ``endswith``,
    ``contains`` or ``like``)."""
    if kind == "startswith":
        return escape_like(pattern) + "%"
    if kind == "endswith":
        return "%" + escape_like(pattern)
    if kind == "contains":
        return "%" + escape_like(pattern) + "%"
    if kind == "like":
        return canonical_like(pattern)
    raise ValueError(f"not a LIKE test: {kind}")


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def sqlite_regexp(pattern: str | None, value: str | None) -> bool | None:
    """SQLite's ``REGEXP`` function (``value REGEXP pattern`` calls it as
    ``regexp(pattern, value)``): Python's :func:`re.search`, the evaluator's semantics.

    SQLAlchemy's pysqlite dialect installs an equivalent function on every connection it
    opens; install this one on raw connections with
    ``connection.create_function("regexp", 2, sqlite_regexp, deterministic=True)``.

    >>> sqlite_regexp("^res", "resnet")
    True
    """
    if pattern is None or value is None:
        return None
    return _regex(pattern).search(value) is not None
