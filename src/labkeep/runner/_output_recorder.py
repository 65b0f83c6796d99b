"""What a launched script prints, recorded into its run: console lines and output scalars.

Bytes arrive per stream as the child writes them; they are decoded incrementally (a UTF-8
character split across two reads stays whole), collapsed into finished lines by
:class:`ConsoleLog` and journalled in batches as ``T_OUTPUT`` records (the lines one chunk
finished share a timestamp and are stored as one group), while stdout also goes through
:class:`OutputScalarParser`, whose points become metrics of the run, many steps per journal
call. Nothing here is per-line Python work beyond what cannot be avoided: a script printing
100,000 lines a second is recorded as fast as it prints.
"""

from __future__ import annotations

import codecs
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from labkeep.runner._console_log import ConsoleLog
from labkeep.runner._scalars import OutputScalarParser, StepGroup

if TYPE_CHECKING:
    from labkeep._run import Run

#: Lines of stderr kept as a failed run's error text.
ERROR_TAIL_LINES = 50
#: A batch of console lines is journalled when it has this many lines or is this old.
BATCH_LINES = 10_000
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
        self._pending: list[list[Any]] = []  # [stream, time, [text, ...]] groups
        self._pending_lines = 0
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
        now, lines = self._logs[stream].feed_texts(text)
        if lines:
            self._add_lines(stream, now, lines)
        if stream == "stdout" and self._parser is not None:
            self._log_groups(self._parser.feed_groups(text))
        if self._pending and (
            self._pending_lines >= BATCH_LINES or time.time() - self._oldest >= BATCH_SECONDS
        ):
            self.flush()

    def _add_lines(self, stream: str, now: float, lines: list[str]) -> None:
        if not self._pending:
            self._oldest = time.time()
        self._pending.append([stream, now, lines])
        self._pending_lines += len(lines)
        self.line_count += len(lines)
        if stream == "stderr":
            self.stderr_tail.extend(lines)

    def _log_groups(self, groups: list[StepGroup]) -> None:
        """Log each line's scalars at its step (one journal record per line, all in one call)."""
        if groups:
            self.scalar_count += sum([len(scalars) for _step, scalars in groups])
            self._run.log_rows(groups)

    def flush(self) -> None:
        """Journal the console lines gathered so far."""
        if self._pending:
            self._run.log_output(self._pending)
            self._pending = []
            self._pending_lines = 0

    def close(self) -> None:
        """The streams ended: record unfinished last lines and scalars, and flush."""
        for stream, log in self._logs.items():
            rest = self._decoders[stream].decode(b"", final=True)
            if rest:
                self.feed_text(stream, rest)
            for line in log.close():
                self._add_lines(stream, line.time, [line.text])
        if self._parser is not None:
            self._log_groups(self._parser.close_groups())
        self.flush()
