"""Console output as the lines a user finally saw, each with the time it was completed.

Progress bars (tqdm, Keras) redraw one line with ``\\r`` thousands of times; storing every
redraw would bloat the log, so a ``\\r`` followed by new text replaces the line, and only the
line's last state is kept. ``"\\r"`` right before ``"\\n"`` (Windows line ends, tqdm's close)
erases nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple


class ConsoleLine(NamedTuple):
    """One finished console line and the wall time (seconds since the epoch) it ended."""

    time: float
    text: str


class ConsoleLog:
    """Collapse a stream of output chunks into finished :class:`ConsoleLine` s.

    Use one per stream (stdout, stderr). ``clock`` gives the timestamps (``time.time``).

    >>> log = ConsoleLog(clock=lambda: 0.0)
    >>> log.feed("epoch 1\\n 10%\\r 50%\\r100%")
    [ConsoleLine(time=0.0, text='epoch 1')]
    >>> log.feed("\\ndone\\n")
    [ConsoleLine(time=0.0, text='100%'), ConsoleLine(time=0.0, text='done')]
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._line = ""
        self._pending_cr = False

    @property
    def current(self) -> str:
        """The unfinished line as it shows now (a live progress bar, say)."""
        return self._line

    def feed(self, chunk: str) -> list[ConsoleLine]:
        """The lines that ``chunk`` finished; the rest waits for its newline."""
        now, texts = self.feed_texts(chunk)
        return [ConsoleLine(now, text) for text in texts]

    def feed_texts(self, chunk: str) -> tuple[float, list[str]]:
        """:meth:`feed` as the time the lines ended and their texts, without an object per
        line (what the runner journals: one script may print 100,000 lines a second)."""
        segments = chunk.split("\n")
        last = segments.pop()
        if not segments:
            if last:
                self._write(last)
            return 0.0, segments
        now = self._clock()
        first = segments[0]
        if first:
            self._write(first)
        segments[0] = self._line
        if "\r" in chunk:
            segments[1:] = [_shown(text) if "\r" in text else text for text in segments[1:]]
        self._line = ""
        self._pending_cr = False
        if last:
            self._write(last)
        return now, segments

    def _write(self, segment: str) -> None:
        if "\r" not in segment:
            self._line = segment if self._pending_cr else self._line + segment
            self._pending_cr = False
            return
        parts = segment.split("\r")
        head = parts[0]
        if head:
            self._line = head if self._pending_cr else self._line + head
        shown = _shown(segment[len(head) :])
        if shown:
            self._line = shown
        # A trailing ``\r`` erases only once new text arrives.
        self._pending_cr = not parts[-1]

    def close(self) -> list[ConsoleLine]:
        """The last line when the stream ended without a newline (empty list otherwise)."""
        if not self._line:
            return []
        line = ConsoleLine(self._clock(), self._line)
        self._line = ""
        self._pending_cr = False
        return [line]


def _shown(segment: str) -> str:
    """What a run of ``\r``-separated redraws finally shows: the last one with text."""
    return next((part for part in reversed(segment.split("\r")) if part), "")
