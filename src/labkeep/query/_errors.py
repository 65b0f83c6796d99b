"""The one error a query raises: the problem, the expression with a caret under the culprit,
and what to write instead."""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable

from labkeep.errors import InvalidInputError


class QueryError(InvalidInputError):
    """A query that cannot be parsed, resolved or compiled.

    ``str(error)`` is the problem (with the suggestion) on the first line, then the line of the
    expression at fault with carets under the offending part::

        unknown name 'lrr': not a param, metric or attribute; did you mean 'lr'?
          lrr > 0.1
          ^^^
    """

    def __init__(
        self,
        problem: str,
        text: str = "",
        start: int | None = None,
        end: int | None = None,
        *,
        hint: str | None = None,
    ) -> None:
        self.problem = problem
        self.hint = hint
        self.text = text
        self.start = start
        self.end = end
        super().__init__(self._render())

    @property
    def headline(self) -> str:
        """The problem and the suggestion, on one line."""
        return self.problem if not self.hint else f"{self.problem}; {self.hint}"

    def _render(self) -> str:
        if not self.text or self.start is None:
            return self.headline
        start = max(0, min(self.start, len(self.text)))
        end = max(start + 1, self.end if self.end is not None else start + 1)
        line_start = self.text.rfind("\n", 0, start) + 1
        line_end = self.text.find("\n", start)
        if line_end < 0:
            line_end = len(self.text)
        line = self.text[line_start:line_end]
        pad = _width(line[: start - line_start])
        marks = max(1, _width(line[start - line_start : min(end, line_end) - line_start]))
        shown = line.replace("\t", " ")
        return f"{self.headline}\n  {shown}\n  {' ' * pad}{'^' * marks}"


def _width(text: str) -> int:
    """Terminal columns of ``text`` (wide East Asian characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The closest of ``choices`` to ``word``, or None when nothing is close."""
    pool = sorted(set(choices))
    close = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in pool}
        close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
        close = [lowered[c] for c in close]
    return close[0] if close else None
