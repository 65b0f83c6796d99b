"""The progress bar of a large transfer to or from object storage (rich, on stderr).

Shown only for transfers of at least ``MIN_BYTES`` and only when stderr is a terminal (a
training script's log file gets no bar), and never with ``LABKEEP_PROGRESS=0``; it is
transient, so the terminal is left as it was. The one place under ``store/`` that writes to
the terminal: a minute-long upload inside ``run.log_artifact`` with no sign of life reads as
a hang.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator

#: Smaller transfers take about a second and get no bar.
MIN_BYTES = 64 << 20


def _wanted(total: int) -> bool:
    if os.environ.get("LABKEEP_PROGRESS", "").strip() in ("0", "false", "no"):
        return False
    return total >= MIN_BYTES and sys.stderr.isatty()


@contextlib.contextmanager
def transfer_progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A callback taking the bytes moved since its last call (what s3transfer calls from
    its threads), drawing a bar while the block runs."""
    if not _wanted(total):
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    lock = threading.Lock()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)

        def step(n: int) -> None:
            with lock:
                bar.update(task, advance=n)

        yield step
