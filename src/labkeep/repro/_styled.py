"""Text with a tone: what the views of :mod:`labkeep.repro` are made of.

A view says *what* a line means (``good``, ``bad``…), never how it looks: the command line
maps tones to terminal styles, a web page could map them to CSS classes. Text is what a run
recorded, never markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: ``strong`` names a heading, ``dim`` is secondary, ``good``/``warn``/``bad`` judge.
Tone = Literal["plain", "strong", "dim", "good", "warn", "bad"]


@dataclass(frozen=True, slots=True)
class Span:
    """A piece of a line, in one tone."""

    text: str
    tone: Tone = "plain"


#: One line of a view: its spans, in order.
Line = tuple[Span, ...]


def plain_text(line: Line) -> str:
    """A line without its tones.

    >>> plain_text((Span("code", "strong"), Span(": "), Span("the same", "good")))
    'code: the same'
    """
    return "".join(span.text for span in line)
