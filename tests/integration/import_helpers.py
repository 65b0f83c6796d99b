"""What the ``labkeep import`` tests share: the CLI as a subprocess, a tool's script run in a
child process of its own (so the real tool writes its store), and the imported runs read back."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from labkeep.entities import RunRecord
from labkeep.store import Store, locate_store, open_store

SRC = Path(__file__).resolve().parents[2] / "src"


def labkeep_import(
    store: Path, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``labkeep --store STORE import ARGS`` as a user types it (in ``cwd``)."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("LABKEEP_HOME", None)
    return subprocess.run(
        [sys.executable, "-m", "labkeep.cli", "--store", str(store), "import", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=cwd,
    )


def run_script(
    directory: Path, source: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Write ``source`` to ``directory/script.py`` and run it there; fails the test on error."""
    script = directory / "script.py"
    script.write_text(textwrap.dedent(source))
    full_env = {**os.environ, **(env or {})}
    for name in ("LABKEEP_HOME", "LABKEEP_RUN_ID"):
        full_env.pop(name, None)
    done = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=directory,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def open_imported(store: Path) -> Store:
    return open_store(locate_store(str(store)))


def imported_runs(store: Path) -> dict[str, RunRecord]:
    """The store's runs by the id they had in the tool (``import.id``)."""
    labkeep_store = open_imported(store)
    try:
        infos = labkeep_store.list_runs(include_deleted=True)
        records = labkeep_store.get_records([i.number for i in infos])
    finally:
        labkeep_store.close()
    return {str(r.summary["import.id"]): r for r in records}


def history(store: Path, number: int, key: str) -> tuple[list[int], list[float], list[float]]:
    labkeep_store = open_imported(store)
    try:
        found = labkeep_store.get_history(number, key)
    finally:
        labkeep_store.close()
    return found.steps, found.values, found.times


def blob_text(store: Path, sha256: str) -> str:
    labkeep_store = open_imported(store)
    try:
        return labkeep_store.blob_path(sha256).read_text()
    finally:
        labkeep_store.close()


def run_count(store: Path) -> int:
    if not store.exists():
        return 0
    labkeep_store = open_imported(store)
    try:
        return len(labkeep_store.list_runs(include_deleted=True)) if labkeep_store.exists() else 0
    finally:
        labkeep_store.close()


def close_to(a: float, b: float, tolerance: float = 1e-6) -> bool:
    return abs(a - b) <= tolerance * max(1.0, abs(a), abs(b))


def summary_line(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def error_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.strip()]
