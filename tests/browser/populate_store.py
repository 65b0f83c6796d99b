"""Fill a store with real runs for the UI tests: ``python populate_store.py STORE WORKDIR``.

Runs go through ``labkeep.init()`` like a user's script: params, metrics per step, system
metrics, console lines, artifacts of every previewable kind, a failed run with a traceback,
and a run whose name is markup (it must render as text).
"""

from __future__ import annotations

import json
import math
import struct
import sys
import time
import zlib
from pathlib import Path

import labkeep
from labkeep import _journal

XSS_NAME = "<script>alert(1)</script>"


def png(width: int, height: int) -> bytes:
    """A small RGB gradient PNG, written by hand (no imaging library needed)."""
    rows = b"".join(
        b"\0" + b"".join(bytes((x * 4 % 256, y * 4 % 256, 160)) for x in range(width))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def console(run: labkeep.Run, *lines: str, stream: str = "stdout") -> None:
    """Console lines as the runner journals them."""
    now = time.time()
    run._write_json(_journal.T_OUTPUT, [[stream, now, text] for text in lines])


def notebook(path: Path) -> None:
    """An executed notebook (nbformat 4 JSON, written directly: importing nbformat is slow)."""
    cells = [
        {"cell_type": "markdown", "id": "a1", "metadata": {}, "source": "# Training notebook"},
        {
            "cell_type": "code",
            "id": "b2",
            "metadata": {},
            "execution_count": 1,
            "source": "print('accuracy', 0.93)",
            "outputs": [{"output_type": "stream", "name": "stdout", "text": "accuracy 0.93\n"}],
        },
    ]
    meta = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    path.write_text(
        json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": meta, "cells": cells})
    )


def main(store: str, workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "confusion.png").write_bytes(png(48, 32))
    (workdir / "predictions.csv").write_text(
        "id,label,score\n"
        + "".join(f"{i},{'cat' if i % 2 else 'dog'},{i / 10}\n" for i in range(20))
    )
    (workdir / "report.html").write_text("<h1>Report</h1><p>all good</p>")
    (workdir / "notes.txt").write_text("plain text artifact\nsecond line\n")
    notebook(workdir / "train.ipynb")

    for i, (lr, optimizer) in enumerate([(0.1, "sgd"), (0.01, "adam"), (0.001, "adam")]):
        with labkeep.init(
            experiment="mnist",
            name=f"lr-{lr}",
            config={"lr": lr, "optimizer": optimizer, "batch_size": 32, "model": {"depth": 2 + i}},
            tags=["baseline"] if i == 0 else [],
            store=store,
            system_metrics=0,
            capture=i == 0,  # one snapshot (code browser) is enough; capture takes a second
        ) as run:
            for step in range(60):
                loss = math.exp(-step * lr * 5) + 0.05 * i + (0.3 if step == 30 else 0.0)
                run.log({"loss": loss, "acc": 1 - loss / 2, "val/loss": loss * 1.1}, step=step)
            for step in range(5):
                run.log({"sys/cpu_percent": 20.0 + step, "sys/memory_percent": 40.0 + i}, step=step)
            run.summary["best_acc"] = 1 - 0.05 * i
            console(run, f"training with lr={lr}", "epoch 1 done", "epoch 2 done")
            console(run, "a warning on stderr", stream="stderr")
            if i == 0:
                for name in (
                    "confusion.png",
                    "predictions.csv",
                    "report.html",
                    "notes.txt",
                    "train.ipynb",
                ):
                    run.log_artifact(workdir / name)

    try:
        with labkeep.init(
            experiment="mnist",
            name="diverged",
            config={"lr": 10.0, "optimizer": "sgd"},
            store=store,
            system_metrics=0,
            capture=False,
        ) as run:
            run.log({"loss": 1.0}, step=0)
            run.log({"loss": float("nan")}, step=1)
            raise FloatingPointError("loss is NaN at step 1")
    except FloatingPointError:
        pass

    with labkeep.init(
        experiment="<b>xss</b>",
        name=XSS_NAME,
        config={"note": "<img src=x onerror=alert(2)>"},
        tags=["<i>tag</i>"],
        notes="<script>alert(3)</script>",
        store=store,
        system_metrics=0,
        capture=False,
    ) as run:
        run.log({"loss": 0.5}, step=0)
        console(run, "<script>alert(4)</script>")
    print(json.dumps({"ok": True}))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
