"""A killed writer's journal damaged on disk (flipped bytes, a truncation, an emptied
segment): recovery ingests every intact record, keeps the damaged journal in quarantine,
says what was lost and marks the run incomplete."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import labkeep
from conftest import child_env, start_python, wait_for_line
from labkeep import RunStatus
from labkeep import _journal as j
from labkeep.entities import JOURNAL_DAMAGE_KEY

N = 20_000

_LOG_THEN_HANG = f"""
import time, labkeep
run = labkeep.init("damaged", config={{"n": {N}}}, capture=False, system_metrics=0)
for i in range({N}):
    run.log({{"x": float(i)}}, step=i)
print("logged", flush=True)
time.sleep(600)
"""


def killed_journal(tmp_path: Path) -> tuple[Path, Path]:
    """A child logs ``N`` points while the store is write-locked and is SIGKILLed: all it
    logged is only in its journal. Returns (store, journal directory)."""
    store = tmp_path / "store"
    with labkeep.init("setup", store=store, capture=False, system_metrics=0):
        pass
    blocker = sqlite3.connect(store / "labkeep.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        proc = start_python(_LOG_THEN_HANG, cwd=tmp_path, env=child_env(LABKEEP_HOME=str(store)))
        try:
            wait_for_line(proc, "logged")
        finally:
            proc.kill()
            proc.communicate(timeout=30)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    (journal,) = (store / "journals").iterdir()
    return store, journal


def record_starts(journal: Path) -> list[int]:
    """Where each valid record of an undamaged journal begins."""
    starts, at = [], 0
    for _rtype, end, _payload in j.read_records(journal, 0):
        starts.append(at)
        at = end
    starts.append(at)  # the written end
    return starts


def _flip(segment: Path, offset: int, count: int = 8) -> None:
    with open(segment, "r+b") as fh:
        fh.seek(offset)
        data = fh.read(count)
        fh.seek(offset)
        fh.write(bytes(b ^ 0xFF for b in data))


def damage(journal: Path, pattern: str) -> None:
    """Damage the first segment of ``journal`` as ``pattern`` says."""
    segment = journal / "000000.seg"
    starts = record_starts(journal)
    end = starts[-1]
    middle = starts[len(starts) // 2]
    if pattern == "flip-start":  # inside the run's first (start) record
        _flip(segment, 6)
    elif pattern == "flip-middle":  # straddles two records
        _flip(segment, middle - 4)
    elif pattern == "flip-end":  # the last record and its checksum
        _flip(segment, end - 8)
    elif pattern == "flip-header":  # one record's length and type
        _flip(segment, middle, 5)
    elif pattern == "zero-header":  # a header erased: looks like the end of the segment
        with open(segment, "r+b") as fh:
            fh.seek(middle)
            fh.write(bytes(5))
    elif pattern == "truncate":
        with open(segment, "r+b") as fh:
            fh.truncate(middle + 7)
    elif pattern == "emptied":
        with open(segment, "r+b") as fh:
            fh.truncate(0)
    else:
        raise ValueError(pattern)


def recovered_points(store: Path) -> int:
    """How many of the child's points the store holds once the journal was recovered."""
    view = labkeep.get_run("last", store=store)
    return view.metrics["x"].count if "x" in view.metrics else 0


# Points a pattern may lose at most: the records the damaged bytes touch.
MAY_LOSE = {
    "flip-start": 0,
    "flip-middle": 2,
    "flip-end": 1,
    "flip-header": 1,
    "zero-header": 1,
    "truncate": N // 2 + 1,  # what lies past the cut is gone
    "emptied": N,  # one segment only: nothing is left
}


@pytest.mark.parametrize("pattern", list(MAY_LOSE))
def test_recovery_ingests_every_intact_record_and_reports_the_rest(
    tmp_path: Path, pattern: str, caplog: pytest.LogCaptureFixture
) -> None:
    store, journal = killed_journal(tmp_path)
    damage(journal, pattern)
    with caplog.at_level(logging.WARNING, logger="labkeep"):
        view = labkeep.get_run("last", store=store)
    points = view.metrics["x"].count if "x" in view.metrics else 0
    assert points >= N - MAY_LOSE[pattern]
    if points:
        series = view.series("x")
        assert all(series.values == series.steps.astype(float))  # every point is intact
        assert len(set(series.steps.tolist())) == points  # each once
    if pattern != "emptied":
        assert view.params == {"n": N}
    assert view.status is RunStatus.KILLED
    assert view.uuid == journal.name.rpartition(".")[0]
    quarantined = store / "quarantine" / journal.name
    assert (quarantined / "000000.seg").is_file()
    assert not journal.exists()
    assert JOURNAL_DAMAGE_KEY in view.summary
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(str(quarantined) in m and "segment 0" in m for m in messages), messages


def test_a_torn_last_record_is_not_damage(tmp_path: Path) -> None:
    """A writer killed while copying a record leaves it without its checksum: nothing
    log() had returned from is lost, so the journal is ingested and deleted as usual."""
    store, journal = killed_journal(tmp_path)
    starts = record_starts(journal)
    with open(journal / "000000.seg", "r+b") as fh:
        fh.seek(starts[-2] + 20)  # the rest of the last record was never written
        fh.write(bytes(starts[-1] - starts[-2] - 20))
    view = labkeep.get_run("last", store=store)
    assert view.metrics["x"].count == N - 1
    assert JOURNAL_DAMAGE_KEY not in view.summary
    assert not journal.exists()
    assert not (store / "quarantine").exists()


def test_the_cli_says_what_was_lost_and_show_says_the_data_is_incomplete(
    tmp_path: Path,
) -> None:
    store, journal = killed_journal(tmp_path)
    damage(journal, "flip-middle")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "labkeep.cli", "--store", str(store), *args],
            capture_output=True,
            text=True,
            env=child_env(COLUMNS="200"),
            timeout=120,
        )

    listed = cli("runs")
    assert listed.returncode == 0, listed.stderr
    assert "damaged" in listed.stderr and "quarantine" in listed.stderr
    assert "Traceback" not in listed.stderr
    shown = cli("show", "last")
    assert shown.returncode == 0, shown.stderr
    assert "incomplete" in shown.stdout
    assert "quarantine" in shown.stdout
