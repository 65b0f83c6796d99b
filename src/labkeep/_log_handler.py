"""How labkeep's warnings reach people: library code logs through the ``labkeep`` logger
(``logging.getLogger(__name__)``) and never prints; this handler shows those warnings as
``labkeep: …`` lines on stderr, as W&B shows its ``wandb:`` lines.

:func:`install_stderr_handler` adds it once, when a store is first opened (``Client``) or
the command line starts, and only if the ``labkeep`` logger has no handler yet (the user's
configuration wins). It stands in for Python's last-resort handler: a record that another
handler receives (one on the ``labkeep`` logger, or on the root logger after
``logging.basicConfig()``, or pytest's) is left to it, so configuring logging takes labkeep's
messages over without showing them twice.

>>> import logging
>>> logging.getLogger("labkeep").addHandler(logging.NullHandler())  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import sys
import threading

#: What starts each line labkeep writes to stderr.
PREFIX = "labkeep: "

_installed = False
_install_lock = threading.Lock()


class StderrHandler(logging.Handler):
    """Writes ``labkeep: <message>`` to the current ``sys.stderr`` (looked up at each
    message, so a redirected stderr receives it), unless another handler takes the record."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        if self._handled_elsewhere(record):
            return
        try:
            text = self.format(record)
            sys.stderr.write(f"{PREFIX}{text}\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)

    def _handled_elsewhere(self, record: logging.LogRecord) -> bool:
        """Whether a handler other than this one receives ``record`` (the walk
        ``Logger.callHandlers`` makes)."""
        logger: logging.Logger | None = logging.getLogger(record.name)
        while logger is not None:
            for handler in logger.handlers:
                if handler is not self and record.levelno >= handler.level:
                    return True
            if not logger.propagate:
                return False
            logger = logger.parent
        return False


def install_stderr_handler() -> None:
    """Show the ``labkeep`` logger's warnings on stderr, once per process, unless that
    logger already has a handler."""
    global _installed
    if _installed:
        return
    with _install_lock:  # two threads opening their first store add one handler
        if _installed:
            return
        _installed = True
        logger = logging.getLogger("labkeep")
        if not logger.handlers:
            logger.addHandler(StderrHandler())


__all__ = ["PREFIX", "StderrHandler", "install_stderr_handler"]
