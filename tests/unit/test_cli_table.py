"""The plain table ``labkeep runs`` prints: widths, shrinking to the terminal, alignment,
escaped control characters, wide characters and colour."""

from __future__ import annotations

import io

import pytest

from labkeep.cli._table import Column, TextTable, cell_width, printable, truncate, use_color


def table() -> TextTable:
    t = TextTable(
        [
            Column("#", justify="right", style="cyan"),
            Column("name", shrink=True, min_width=4),
            Column("status"),
            Column("batch_size", shrink=True, min_width=2),
            Column("loss", justify="right", shrink=True, min_width=4),
        ]
    )
    t.add_row(["9", "resnet-long-name", "completed", "16", "0.00316251"], ["", "", "green"])
    t.add_row(["10", "vit", "failed", "256", "0.5"], ["", "", "bold red"])
    return t


def test_columns_are_as_wide_as_their_widest_cell_and_aligned() -> None:
    lines = table().render(200, color=False)
    assert lines == [
        " #  name              status     batch_size        loss",
        " 9  resnet-long-name  completed  16          0.00316251",
        "10  vit               failed     256                0.5",
    ]


def test_a_narrow_terminal_shrinks_headers_first_then_the_widest_values() -> None:
    full = len(table().render(200, color=False)[0])
    lines = table().render(full - 7, color=False)
    assert all(cell_width(line) <= full - 7 for line in lines)
    assert lines[0].split()[3] == "ba…"  # the header gave way to its widest value, "256"
    assert "resnet-long-name" in lines[1] and "0.00316251" in lines[1]
    narrow = table().render(40, color=False)
    assert all(cell_width(line) <= 40 for line in narrow)
    assert narrow[1].split()[1].endswith("…")
    # Columns that may not shrink keep their text even when nothing else fits.
    assert "completed" in table().render(10, color=False)[1]


def test_control_characters_are_escaped_and_cannot_break_lines() -> None:
    t = TextTable([Column("name"), Column("v")])
    t.add_row(["a\nb", "\x1b[2Jx\ttab"])
    lines = t.render(80, color=False)
    assert len(lines) == 2
    assert "\x1b" not in lines[1] and "\\x1b[2Jx tab" in lines[1]
    assert printable("ok") == "ok" and printable("\u2028") == "\\u2028"


def test_wide_characters_take_two_cells() -> None:
    assert cell_width("日本") == 4 and cell_width("e\u0301") == 1
    assert truncate("日本語テキスト", 5) == "日本…"
    t = TextTable([Column("k"), Column("v")])
    t.add_row(["日本", "x"])
    t.add_row(["ab", "y"])
    lines = t.render(80, color=False)
    assert cell_width(lines[1].split("x")[0]) == cell_width(lines[2].split("y")[0])


def test_colour_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    for name in ("NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)
    assert use_color(Tty()) and not use_color(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_color(Tty())
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert use_color(io.StringIO())
    coloured = table().render(200, color=True)
    assert "\x1b[1;31mfailed\x1b[0m" in coloured[2] and "\x1b[1m#\x1b[0m" in coloured[0]
    assert all("\x1b" not in line for line in table().render(200, color=False))
