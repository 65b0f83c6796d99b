"""Real stores to damage: filled through the Store API, then changed on disk."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import uuid as uuid_mod
from pathlib import Path

from conftest import child_env
from labkeep.entities import Artifact
from labkeep.store import locate_store, open_store
from labkeep.store._base import MetricColumns, RunFinish, RunStart, WriteBatch

PAGE = 4096


def fill_store(root: Path, runs: int = 120, points: int = 300) -> dict[str, str]:
    """A SQLite store of ``runs`` finished runs with params, metrics, output, a snapshot and
    an artifact each; returns {run uuid: artifact sha256}. The database is checkpointed."""
    store = open_store(locate_store(root))
    work = root.parent / "work"
    work.mkdir(parents=True, exist_ok=True)
    shas = {}
    try:
        code = work / "train.py"
        code.write_text("print('train')\n")
        code_sha, code_size = store.put_blob(code)
        manifest = json.dumps([{"path": "train.py", "sha256": code_sha, "size": code_size}])
        manifest_sha = store.put_bytes(manifest.encode())[0]
        for i in range(runs):
            run_uuid = str(uuid_mod.uuid4())
            out = work / f"out{i}.txt"
            out.write_text(f"output of run {i} {secrets.token_hex(8)}\n")
            sha, size = store.put_blob(out)
            cols = MetricColumns()
            for step in range(points):
                cols.steps.append(step)
                cols.values.append(1.0 / (step + 1 + i))
                cols.times.append(1000.0 + step)
            store.apply(
                WriteBatch(
                    run_uuid=run_uuid,
                    writer=f"{run_uuid}.w",
                    position=1,
                    start=RunStart(run_uuid, "exp", f"run-{i}", time.time(), "u", "h", 1),
                    params={"lr": 0.001 * (i + 1), "name": f"model {i}", "layers": i % 7},
                    metrics={"loss": cols, "acc": cols},
                    artifacts=[Artifact("out.txt", sha, size)],
                    snapshot={"version": 1, "code": {"manifest": manifest_sha}},
                    output=[("stdout", 1000.0 + k, f"line {k} of run {i}") for k in range(20)],
                    finish=RunFinish("completed", time.time(), None, 0),
                )
            )
            shas[run_uuid] = sha
    finally:
        store.close()
    return shas


def damage(path: Path, offset: int, length: int = PAGE) -> None:
    """Overwrite ``length`` bytes at ``offset`` (rounded down to a page) with random bytes."""
    start = offset - offset % PAGE
    with open(path, "r+b") as fh:
        fh.seek(start)
        fh.write(secrets.token_bytes(length))
        fh.flush()
        os.fsync(fh.fileno())


def cli(
    store: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labkeep.cli", "--store", str(store), *args],
        capture_output=True,
        text=True,
        env=env or child_env(),
        timeout=120,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
