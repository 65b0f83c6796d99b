"""A borderless text table that fits the terminal: what ``labkeep runs`` prints.

Listing runs is the command people type most, so it renders with the standard library only:
laying out fifty rows with rich costs more (~80 ms with its import) than finding them.
Columns are separated by two spaces; when the table is wider than the terminal, the columns
that may shrink lose width, widest first, and end in ``…``. Colour (ANSI) only on a terminal,
as rich decides it: ``NO_COLOR`` turns it off, ``FORCE_COLOR`` on.
"""

from __future__ import annotations

import os
import shutil
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, TextIO

_SGR = {
    "bold": "1",
    "dim": "2",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "magenta": "35",
    "cyan": "36",
}
_GAP = "  "


def terminal_width() -> int:
    """``COLUMNS`` if set, else the terminal's width, else 80."""
    return shutil.get_terminal_size((80, 24)).columns


def use_color(stream: TextIO | None = None) -> bool:
    """Whether to colour output to ``stream`` (stdout by default)."""
    if os.environ.get("FORCE_COLOR"):
        return True
    if "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    stream = sys.stdout if stream is None else stream
    return bool(getattr(stream, "isatty", lambda: False)())


def styled(text: str, style: str, color: bool) -> str:
    """``text`` in ``style`` (``"bold red"``; words from :data:`_SGR`), if ``color``."""
    codes = [_SGR[word] for word in style.split() if word in _SGR]
    if not color or not codes:
        return text
    return f"\x1b[{';'.join(codes)}m{text}\x1b[0m"


def printable(text: str) -> str:
    """``text`` on one line with control characters escaped: a value cannot move the
    cursor, clear the screen or break the table's lines."""
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() else " " if ch in "\t\n\r" else ascii(ch)[1:-1] for ch in text
    )


def cell_width(text: str) -> int:
    """Terminal cells ``text`` takes: East Asian wide characters take two, combining and
    zero-width ones none."""
    if text.isascii():
        return len(text)
    width = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def truncate(text: str, width: int) -> str:
    """``text`` cut to ``width`` cells, ending in ``…`` when cut."""
    if cell_width(text) <= width:
        return text
    if width <= 0:
        return ""
    out: list[str] = []
    used = 0
    for ch in text:
        w = cell_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


@dataclass(slots=True)
class Column:
    """A column: its header, alignment, style, and whether and how far it may shrink."""

    header: str
    justify: Literal["left", "right"] = "left"
    style: str = ""
    shrink: bool = False
    min_width: int = 1


@dataclass(slots=True)
class TextTable:
    """Rows of text cells under headers; each cell may carry its own style.

    >>> table = TextTable([Column("#", justify="right"), Column("name", shrink=True)])
    >>> table.add_row(["1", "resnet"])
    >>> print("\\n".join(table.render(80, color=False)))
    #  name
    1  resnet
    """

    columns: list[Column]
    rows: list[list[tuple[str, str]]] = field(default_factory=list)
    #: Lines between rows that span the columns from one on: (rows above, column, text, style).
    notes: list[tuple[int, int, str, str]] = field(default_factory=list)

    def add_row(self, cells: Sequence[str], styles: Sequence[str] = ()) -> None:
        """A row of cells; ``styles`` (by position) overrides the column's style."""
        padded = list(styles) + [""] * (len(cells) - len(styles))
        self.rows.append(
            [
                (printable(c), s or col.style)
                for c, s, col in zip(cells, padded, self.columns, strict=False)
            ]
        )

    def add_note(self, text: str, column: int, style: str = "dim") -> None:
        """A line under the rows so far that starts where ``column`` does and runs to the
        edge of the terminal (cut there): it takes no part in the columns' widths."""
        self.notes.append((len(self.rows), column, printable(text), style))

    def value_widths(self) -> list[int]:
        """Each column's widest cell, header aside."""
        return [
            max([0] + [cell_width(row[i][0]) for row in self.rows])
            for i in range(len(self.columns))
        ]

    def fits(self, width: int, floors: Sequence[int]) -> bool:
        """Whether the table fits ``width`` with every column at least ``floors`` wide (or
        its natural width, if less)."""
        natural = [
            max(cell_width(printable(c.header)), v)
            for c, v in zip(self.columns, self.value_widths(), strict=True)
        ]
        widths = self.widths(width)
        total = sum(widths) + len(_GAP) * (len(widths) - 1)
        return total <= width and all(
            w >= min(n, f) for w, n, f in zip(widths, natural, floors, strict=True)
        )

    def widths(self, width: int) -> list[int]:
        """Each column's width: as wide as its widest cell, shrunk to fit ``width``."""
        headers = [printable(c.header) for c in self.columns]
        natural = [
            max([cell_width(h)] + [cell_width(row[i][0]) for row in self.rows])
            for i, h in enumerate(headers)
        ]
        values = self.value_widths()
        widths = list(natural)
        excess = sum(widths) + len(_GAP) * (len(widths) - 1) - width
        # Headers wider than their values give way first, then the widest values.
        for floors in (values, [0] * len(widths)):
            while excess > 0:
                candidates = [
                    i
                    for i, col in enumerate(self.columns)
                    if col.shrink and widths[i] > max(col.min_width, floors[i], 1)
                ]
                if not candidates:
                    break
                widest = max(candidates, key=lambda i: widths[i])
                widths[widest] -= 1
                excess -= 1
        return widths

    def render(self, width: int, *, color: bool) -> list[str]:
        """The table's lines (no trailing spaces) for a terminal ``width`` cells wide."""
        widths = self.widths(width)
        header = [(printable(c.header), "bold") for c in self.columns]
        lines = [self._line(cells, widths, color) for cells in [header, *self.rows]]
        for above, column, text, style in reversed(self.notes):
            indent = sum(widths[:column]) + len(_GAP) * column
            note = truncate(text, width - indent)
            lines.insert(1 + above, " " * indent + styled(note, style, color))
        return lines

    def _line(self, cells: list[tuple[str, str]], widths: list[int], color: bool) -> str:
        parts = []
        for (text, style), col, width in zip(cells, self.columns, widths, strict=True):
            text = truncate(text, width)
            pad = " " * (width - cell_width(text))
            aligned = styled(text, style, color)
            parts.append(pad + aligned if col.justify == "right" else aligned + pad)
        return _GAP.join(parts).rstrip()
