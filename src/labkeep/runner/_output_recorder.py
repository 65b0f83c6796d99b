"""What a launched script prints, recorded into its run: console lines and output scalars.

Bytes arrive per stream as the child writes them; they are decoded incrementally (a UTF-8
character split across two reads stays whole), collapsed into finished lines by
:class:`ConsoleLog` and journalled in batches as ``T_OUTPUT`` records, while stdout also goes
through :class:`OutputScalarParser`, whose points become metrics of the run.
"""

from __future__ import annotations

import codecs
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from labkeep import _journal as j
from labkeep.runner._console_log import ConsoleLine, ConsoleLog
from labkeep.runner._scalars import OutputScalarParser, ScalarPoint

if TYPE_CHECKING:
    from labkeep._run import Run

#: Lines of stderr kept as a failed run's error text.
ERROR_TAIL_LINES = 50
#: A batch of console lines is journalled when it has this many lines or is this old.
BATCH_LINES = 2000
BATCH_SECONDS = 0.5


class OutputRecorder:
    """Feed it a child's output; it journals lines and scalars into ``run``.

    Not thread-safe: one thread feeds it, and :meth:`close` is called after that thread ends.
    """

    def __init__(self, run: Run, parser: OutputScalarParser | None) -> None:
        self._run = run
        self._parser = parser
        self._logs = {"stdout": ConsoleLog(), "stderr": ConsoleLog()}
        self._decoders = {
            name: codecs.getincrementaldecoder("utf-8")("replace") for name in self._logs
        }
        self._pending: list[list[Any]] = []
        self._oldest = 0.0
        self.stderr_tail: deque[str] = deque(maxlen=ERROR_TAIL_LINES)
        self.scalar_count = 0
        self.line_count = 0

    def feed(self, stream: str, data: bytes) -> None:
        """Record ``data`` that the child wrote to ``stream`` (``stdout`` or ``stderr``)."""
        self.feed_text(stream, self._decoders[stream].decode(data))

    def feed_text(self, stream: str, text: str) -> None:
        """Record already decoded output (a notebook kernel's stream messages)."""
        if not text:
            return
        self._add_lines(stream, self._logs[stream].feed(text))
        if stream == "stdout" and self._parser is not None:
            self._log_points(self._parser.feed(text))
        if self._pending and (
            len(self._pending) >= BATCH_LINES or time.time() - self._oldest >= BATCH_SECONDS
        ):
            self.flush()

    def _add_lines(self, stream: str, lines: list[ConsoleLine]) -> None:
        if not lines:
            return
        if not self._pending:
            self._oldest = time.time()
        self._pending.extend([stream, t, text] for t, text in lines)
        self.line_count += len(lines)
        if stream == "stderr":
            self.stderr_tail.extend(text for _t, text in lines)

    def _log_points(self, points: list[ScalarPoint]) -> None:
        if not points:
            return
        self.scalar_count += len(points)
        log = self._run.log
        group: dict[str, float] = {}
        step = points[0].step
        for key, value, point_step in points:
            if point_step != step or key in group:
                log(group, step)
                group = {}
                step = point_step
            group[key] = value
        log(group, step)

    def flush(self) -> None:
        """Journal the console lines gathered so far."""
        if self._pending:
            self._run._write_json(j.T_OUTPUT, self._pending)
            self._pending = []

    def close(self) -> None:
        """The streams ended: record unfinished last lines and scalars, and flush."""
        for stream, log in self._logs.items():
            rest = self._decoders[stream].decode(b"", final=True)
            if rest:
                self.feed_text(stream, rest)
            self._add_lines(stream, log.close())
        if self._parser is not None:
            self._log_points(self._parser.close())
        self.flush()
