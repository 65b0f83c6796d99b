"""The launched script's process: started in its own process group, its output pumped live.

The child's stdout and stderr are pipes read by one thread with a selector; every chunk goes
to the terminal callback unchanged (so progress bars redraw as they would) and to the
recorder. Ctrl-C and SIGTERM (what ``labkeep stop`` sends) reach the parent, which stops the
child's whole process group: SIGINT first (Python scripts unwind with ``KeyboardInterrupt``),
then SIGTERM and SIGKILL if it has not ended after the grace period. When stdin is a terminal
and the parent is in the foreground, the child's group gets the terminal, so Ctrl-C reaches the
script exactly as without labkeep (and keyboard input still works).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from labkeep.runner._output_recorder import OutputRecorder

OutputCallback = Callable[[str, bytes], None]
"""Receives ``(stream, bytes)`` as the child writes them: ``"stdout"`` or ``"stderr"``."""

#: Seconds output is still read after the child ended (its own children may hold the pipes).
DRAIN_AFTER_EXIT_S = 2.0
READ_SIZE = 1 << 16
#: Output queued for the recorder before reading waits for it: far more than a script
#: prints while the recorder catches up, so in practice the pipes never wait.
MAX_QUEUED_BYTES = 256 << 20
#: Queued chunks are joined into feeds of at most about this size: parsing one holds the GIL,
#: and the reader needs it to drain the pipes.
COALESCE_BYTES = 1 << 18
#: Pipe capacity asked for (Linux): the script writes on while the reader waits for the GIL.
PIPE_SIZE = 1 << 20

_STAGES = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)


@dataclass(frozen=True)
class ChildOutcome:
    """How the child ended: ``exit_code`` is shell-style (``128 + N`` for death by signal N);
    ``stopped`` is ``"interrupt"`` (Ctrl-C) or ``"terminate"`` (SIGTERM) when labkeep was
    asked to stop it, else ``None``."""

    pid: int
    exit_code: int
    stopped: str | None
    signal: int | None


class ChildProcess:
    """Run ``argv`` in ``cwd`` with ``env``, pump its output, and stop it on request."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: Path,
        recorder: OutputRecorder,
        on_output: OutputCallback | None = None,
        *,
        grace: float = 5.0,
        stop: threading.Event | None = None,
    ) -> None:
        self.argv = list(argv)
        self.stop_event = stop
        self.env = dict(env)
        self.cwd = cwd
        self.recorder = recorder
        self.on_output = on_output
        self.grace = grace
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopped: str | None = None
        self._stage = -1
        self._next_stage_at = float("inf")
        self._drain_until = float("inf")
        self._reader_error: BaseException | None = None

    def run(self, on_start: Callable[[int], None] | None = None) -> ChildOutcome:
        """Start the child, wait for it, and return how it ended (call from the main thread
        for Ctrl-C and SIGTERM to stop the child; elsewhere they keep their usual effect)."""
        handlers = self._install_handlers()
        try:
            proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                process_group=0,
                close_fds=True,
            )
        except BaseException:
            self._restore_handlers(handlers)
            raise
        self._proc = proc
        restore_terminal = _give_terminal(proc.pid)
        reader = threading.Thread(target=self._pump, name="labkeep-output", daemon=True)
        reader.start()
        try:
            if on_start is not None:
                on_start(proc.pid)
            exited = _ExitWaiter(proc)
            try:
                while True:
                    try:
                        returncode = exited.wait(0.1)
                        break
                    except subprocess.TimeoutExpired:
                        stop = self.stop_event
                        if stop is not None and stop.is_set() and self._stopped is None:
                            self.stop()
                        if time.monotonic() >= self._next_stage_at:
                            self._escalate()
            finally:
                exited.close()
        finally:
            if restore_terminal is not None:
                restore_terminal()
            self._restore_handlers(handlers)
            self._drain_until = time.monotonic() + DRAIN_AFTER_EXIT_S
            reader.join()
        if self._reader_error is not None:
            raise self._reader_error
        sig = -returncode if returncode < 0 else None
        if sig is not None and self._stopped is None and sig == signal.SIGINT:
            self._stopped = "interrupt"  # Ctrl-C went straight to the child's group
        return ChildOutcome(
            pid=proc.pid,
            exit_code=128 + sig if sig is not None else returncode,
            stopped=self._stopped,
            signal=sig,
        )

    # -- output ------------------------------------------------------------------------------
    def _pump(self) -> None:
        """Read both pipes, pass every chunk to the terminal at once, and queue it for the
        recorder, so parsing never holds up the pipes (and with them the script)."""
        proc = self._proc
        assert proc is not None and proc.stdout is not None and proc.stderr is not None
        chunks = _ChunkQueue(MAX_QUEUED_BYTES)
        worker = threading.Thread(
            target=self._record, args=(chunks,), name="labkeep-record", daemon=True
        )
        worker.start()
        selector = selectors.DefaultSelector()
        for pipe, name in ((proc.stdout, "stdout"), (proc.stderr, "stderr")):
            _widen_pipe(pipe.fileno())
            selector.register(pipe.fileno(), selectors.EVENT_READ, name)
        on_output = self.on_output
        try:
            while selector.get_map():
                events = selector.select(0.25)
                if not events:
                    if time.monotonic() >= self._drain_until:
                        break
                    continue
                for key, _mask in events:
                    fd = key.fd
                    assert isinstance(fd, int)
                    data = os.read(fd, READ_SIZE)
                    stream: str = key.data
                    if not data:
                        selector.unregister(fd)
                        continue
                    if on_output is not None:
                        with contextlib.suppress(OSError, ValueError):
                            on_output(stream, data)
                    chunks.put((stream, data))
        except BaseException as exc:
            self._reader_error = exc
        finally:
            selector.close()
            proc.stdout.close()
            proc.stderr.close()
            chunks.put(None)
            worker.join()

    def _record(self, chunks: _ChunkQueue) -> None:
        recorder = self.recorder
        failed = False
        while True:
            items = chunks.take(timeout=0.25)
            if not items:
                if not failed:
                    recorder.flush()  # lines reach the store while the script is quiet
                continue
            # Everything that queued up while the last feeds were recorded, joined into feeds
            # of up to COALESCE_BYTES per stream: the per-feed cost is paid per burst.
            for part in _coalesce(items, COALESCE_BYTES):
                if part is None:
                    return
                if failed:
                    continue  # keep draining so the reader never blocks
                try:
                    recorder.feed(*part)
                except BaseException as exc:
                    self._reader_error = exc
                    failed = True

    # -- stopping ----------------------------------------------------------------------------
    def _install_handlers(self) -> dict[int, object] | None:
        if threading.current_thread() is not threading.main_thread():
            return None
        previous: dict[int, object] = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, self._on_signal)
        return previous

    def _restore_handlers(self, previous: dict[int, object] | None) -> None:
        for signum, handler in (previous or {}).items():
            signal.signal(signum, handler)  # type: ignore[arg-type]

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._stopped is None:
            self._stopped = "interrupt" if signum == signal.SIGINT else "terminate"
        self._escalate()

    def stop(self) -> None:
        """Ask the child to stop (as Ctrl-C does), escalating after the grace period."""
        if self._stopped is None:
            self._stopped = "terminate"
        self._escalate()

    def _escalate(self) -> None:
        """Send the next signal of SIGINT, SIGTERM, SIGKILL to the child's process group."""
        proc = self._proc
        if proc is None or self._stage >= len(_STAGES) - 1:
            return
        self._stage += 1
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, _STAGES[self._stage])
        self._next_stage_at = time.monotonic() + self.grace


class _ExitWaiter:
    """``Popen.wait(timeout)`` that returns as soon as the process exits. ``Popen.wait`` with
    a timeout polls with sleeps of up to 50 ms, a delay every short run would pay; a pidfd
    (Linux) becomes readable at the exit. Elsewhere it is ``Popen.wait``."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        self._pidfd: int | None = None
        with contextlib.suppress(AttributeError, OSError):
            self._pidfd = os.pidfd_open(proc.pid)

    def wait(self, timeout: float) -> int:
        """The exit status; raises ``subprocess.TimeoutExpired`` after ``timeout`` seconds."""
        if self._pidfd is None:
            return self._proc.wait(timeout=timeout)
        ready, _, _ = select.select([self._pidfd], [], [], timeout)
        if not ready:
            raise subprocess.TimeoutExpired(self._proc.args, timeout)
        return self._proc.wait()

    def close(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


class _ChunkQueue:
    """Chunks from the reader thread to the recorder thread. :meth:`put` waits only when
    ``limit`` bytes are queued; :meth:`take` hands over everything queued at once. ``None``
    marks the end."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._items: list[tuple[str, bytes] | None] = []
        self._bytes = 0
        self._changed = threading.Condition()

    def put(self, item: tuple[str, bytes] | None) -> None:
        with self._changed:
            while item is not None and self._bytes >= self._limit:
                self._changed.wait()
            self._items.append(item)
            self._bytes += 0 if item is None else len(item[1])
            self._changed.notify_all()

    def take(self, timeout: float) -> list[tuple[str, bytes] | None]:
        """All queued items, waiting up to ``timeout`` seconds for one (empty list if none)."""
        with self._changed:
            if not self._items:
                self._changed.wait(timeout)
            items, self._items, self._bytes = self._items, [], 0
            self._changed.notify_all()
            return items


def _coalesce(items: list[tuple[str, bytes] | None], limit: int) -> list[tuple[str, bytes] | None]:
    """Join consecutive chunks of one stream into parts of at most ``limit`` bytes (or one
    bigger chunk), keeping the order of the chunks; ``None`` ends the list."""
    out: list[tuple[str, bytes] | None] = []
    parts: list[bytes] = []
    size = 0
    stream = ""
    for item in items:
        if item is not None and item[0] == stream and size + len(item[1]) <= limit:
            parts.append(item[1])
            size += len(item[1])
            continue
        if parts:
            out.append((stream, b"".join(parts) if len(parts) > 1 else parts[0]))
            parts = []
        if item is None:
            out.append(None)
            break
        stream, parts, size = item[0], [item[1]], len(item[1])
    if parts:
        out.append((stream, b"".join(parts) if len(parts) > 1 else parts[0]))
    return out


def _widen_pipe(fd: int) -> None:
    """Give the pipe a large buffer where the platform allows (not needed for correctness)."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if set_size is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, set_size, PIPE_SIZE)


def _give_terminal(pgid: int) -> Callable[[], None] | None:
    """Make ``pgid`` the terminal's foreground group when we hold it; return the undo."""
    try:
        fd = sys.stdin.fileno()
        if not os.isatty(fd) or os.tcgetpgrp(fd) != os.getpgrp():
            return None
    except (OSError, ValueError, AttributeError):
        return None
    mine = os.getpgrp()

    def switch(group: int) -> bool:
        # A background group changing the foreground gets SIGTTOU unless it ignores it.
        previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        try:
            os.tcsetpgrp(fd, group)
            return True
        except OSError:
            return False
        finally:
            signal.signal(signal.SIGTTOU, previous)

    if threading.current_thread() is not threading.main_thread() or not switch(pgid):
        return None

    def restore() -> None:
        switch(mine)

    return restore
