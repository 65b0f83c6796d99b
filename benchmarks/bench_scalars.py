"""How many lines per second the output-scalar parser and the console log keep up with.

Run: ``PYTHONPATH=src python benchmarks/bench_scalars.py``. The target is 100,000 lines/s for
typical training output (a script printing that fast must not be slowed down by labkeep).
"""

from __future__ import annotations

import time

from labkeep.runner._console_log import ConsoleLog
from labkeep.runner._scalars import OutputScalarParser

LINES = 300_000
CHUNK = 64 * 1024


def training_output(n: int) -> str:
    """A mix of what scripts print: plain text, ``key: value``, pairs, counters, progress bars."""
    lines = []
    for i in range(n):
        kind = i % 10
        if kind < 5:
            lines.append(f"processing batch {i} of the dataset, nothing to see here")
        elif kind == 5:
            lines.append(f"loss: {1 / (i + 1):.6f}")
        elif kind == 6:
            lines.append(f"epoch {i // 10} acc={i % 97 / 97:.4f} loss={1 / (i + 1):.5f}")
        elif kind == 7:
            lines.append(f"{i}/300000 [=====>....] - 3s 1ms/step - loss: 0.2975 - accuracy: 0.9141")
        elif kind == 8:
            lines.append(f"\r 10%|#   | {i}\r 50%|##  | {i}\r100%|####| {i}")
        else:
            lines.append("2024-01-01 12:00:00 INFO saved checkpoint to /tmp/ckpt-12:00")
    return "\n".join(lines) + "\n"


def chunks(text: str) -> list[str]:
    return [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)]


def measure(name: str, feed: object, parts: list[str], n: int) -> None:
    start = time.perf_counter()
    found = 0
    for part in parts:
        found += len(feed(part))  # type: ignore[operator]
    elapsed = time.perf_counter() - start
    print(f"{name:<22} {n / elapsed:>12,.0f} lines/s  ({found:,} results, {elapsed:.3f} s)")


def main() -> None:
    parts = chunks(training_output(LINES))
    measure("OutputScalarParser", OutputScalarParser().feed, parts, LINES)
    measure("ConsoleLog", ConsoleLog().feed, parts, LINES)
    quiet = chunks("\n".join(f"plain line number {i} with no scalar" for i in range(LINES)) + "\n")
    measure("scalars, plain text", OutputScalarParser().feed, quiet, LINES)


if __name__ == "__main__":
    main()
