"""Console output as the lines a user finally saw, each with the time it was completed.

Progress bars (tqdm, Keras) redraw one line with ``\\r`` thousands of times; storing every
redraw would bloat the log, so a ``\\r`` followed by new text replaces the line, and only the
line's last state is kept. ``"\\r"`` right before ``"\\n"`` (Windows line ends, tqdm's close)
erases nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConsoleLine:
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
        segments = chunk.split("\n")
        lines: list[ConsoleLine] = []
        now: float | None = None
        for index, segment in enumerate(segments):
            if index:
                if now is None:
                    now = self._clock()
                lines.append(ConsoleLine(now, self._line))
                self._line = ""
                self._pending_cr = False
            if segment:
                self._write(segment)
        return lines

    def _write(self, segment: str) -> None:
        parts = segment.split("\r")
        for index, part in enumerate(parts):
            if index:
                self._pending_cr = True
            if part:
                if self._pending_cr:
                    self._line = part
                    self._pending_cr = False
                else:
                    self._line += part

    def close(self) -> list[ConsoleLine]:
        """The last line when the stream ended without a newline (empty list otherwise)."""
        if not self._line:
            return []
        line = ConsoleLine(self._clock(), self._line)
        self._line = ""
        self._pending_cr = False
        return [line]
