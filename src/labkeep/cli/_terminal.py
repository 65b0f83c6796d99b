"""What labkeep writes to the terminal besides tables of runs: a script's own output passed
through, labkeep's one-line messages, and :mod:`labkeep.repro`'s styled lines in rich."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from labkeep.repro import Line

#: The terminal style of each tone of :class:`labkeep.repro.Span`.
TONE_STYLES = {"plain": "", "strong": "bold", "dim": "dim", "good": "green", "warn": "yellow",
               "bad": "red"}  # fmt: skip


def console(stderr: bool = False) -> Console:
    """A console that leaves what runs recorded unhighlighted (numbers, paths)."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def write_output(stream: str, data: bytes) -> None:
    """The script's bytes, unchanged, to our own stdout/stderr, as they arrive."""
    out = sys.stdout if stream == "stdout" else sys.stderr
    out.buffer.write(data)
    out.buffer.flush()


def message(text: str) -> None:
    """A note from labkeep itself, on stderr, beside the script's output."""
    click.secho(f"labkeep: {text}", fg="yellow", err=True)


def markup(line: Line) -> str:
    """A styled line as rich markup; its text is what a run recorded, never markup itself."""
    from rich.markup import escape

    parts = []
    for span in line:
        style = TONE_STYLES[span.tone]
        parts.append(f"[{style}]{escape(span.text)}[/]" if style else escape(span.text))
    return "".join(parts)


def styled(line: Line) -> Text:
    """A styled line as rich text, for table cells: no markup, no emoji codes."""
    from rich.text import Text

    text = Text()
    for span in line:
        text.append(span.text, TONE_STYLES[span.tone] or None)
    return text


def diff_syntax(text: str) -> object:
    """A unified diff, coloured as one."""
    from rich.syntax import Syntax

    return Syntax(text.rstrip("\n"), "diff", theme="ansi_dark", background_color="default")
