"""A store on a file system with no space left: labkeep never kills the script it tracks
(no SIGBUS from the memory-mapped journal), says once that logging is degraded, writes what
it buffered when space returns, counts exactly what it dropped, and reads still work.

The file system is a small tmpfs mounted for each test (root is needed): skipped where
mounting is not permitted, and failed under CI, which must run these tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import labkeep
from conftest import child_env, start_python, wait_for_line
from labkeep import _journal as j
from labkeep.entities import DROPPED_POINTS_KEY


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs at ``tmp_path/small``, unmounted afterwards."""
    mount = tmp_path / "small"
    mount.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        reason = done.stderr.strip() if done.returncode else None
    except (OSError, subprocess.SubprocessError) as exc:
        reason = str(exc)
    if reason is not None:
        reason = f"cannot mount a small tmpfs to fill ({reason})"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the full-disk tests, not skip them", pytrace=False)
        pytest.skip(reason)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


def fill(directory: Path, leave: int = 0) -> Path:
    """Take all the space of ``directory``'s file system but ``leave`` bytes, in one file."""
    directory.mkdir(exist_ok=True)
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        chunk = b"\xaa" * (64 << 10)
        while True:
            try:
                if os.write(fd, chunk) < len(chunk):
                    break
            except OSError:
                if len(chunk) <= 4096:
                    break
                chunk = chunk[: len(chunk) // 2]
    finally:
        os.close(fd)
    if leave:
        os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def cli(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labkeep.cli", "--store", str(store), *args],
        capture_output=True,
        text=True,
        env=child_env(COLUMNS="200"),
        timeout=120,
    )


N = 100_000

_LOG_ON_A_FULL_DISK = f"""
import labkeep
run = labkeep.init("full", capture=False, system_metrics=0)
for i in range({N}):
    run.log({{"x": float(i)}}, step=i)
print("logged", flush=True)
run.finish()
print("finished", flush=True)
"""


def test_a_full_disk_does_not_kill_the_script_and_reads_still_work(small_fs: Path) -> None:
    store = small_fs / "store"
    with labkeep.init("before", store=store, capture=False, system_metrics=0) as run:
        run.log({"x": 1.0})
    fill(small_fs, leave=600 << 10)
    proc = start_python(
        _LOG_ON_A_FULL_DISK, cwd=small_fs.parent, env=child_env(LABKEEP_HOME=str(store))
    )
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err  # was -7 (SIGBUS)
    assert out.split() == ["logged", "finished"]
    assert err.count("logging is degraded") == 1, err
    fill(small_fs / "more")  # not a byte left
    listed = cli(store, "runs")
    assert listed.returncode == 0, listed.stderr
    assert "Traceback" not in listed.stderr
    shown = cli(store, "show", "last")
    assert shown.returncode == 0, shown.stderr
    assert "Traceback" not in shown.stderr


def test_a_disk_full_from_the_start_does_not_hold_the_script_at_its_end(small_fs: Path) -> None:
    """With no room even for the database's shared memory, SQLite says "disk I/O error":
    the run's end gives up on the store at once (it was 120 s of retries) and keeps what
    the journal holds for later."""
    store = small_fs / "store"
    with labkeep.init("before", store=store, capture=False, system_metrics=0):
        pass
    fill(small_fs, leave=256 << 10)
    started = time.monotonic()
    proc = start_python(
        _LOG_ON_A_FULL_DISK, cwd=small_fs.parent, env=child_env(LABKEEP_HOME=str(store))
    )
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert out.split() == ["logged", "finished"]
    assert time.monotonic() - started < 60
    assert "points logged while the disk was full were dropped" in err


def test_points_buffered_while_the_disk_is_full_are_written_when_space_returns(
    small_fs: Path,
) -> None:
    """The writer alone (no store): what the journal holds plus what it counted as dropped
    is exactly what was logged, and the buffer reaches the journal in order."""
    filler = fill(small_fs, leave=128 << 10)
    writer = j.JournalWriter(small_fs / "journals" / "run.w", buffer_bytes=64 << 10)
    writer.open()
    writer.append_json(j.T_START, {"uuid": "run", "experiment": "e", "name": "", "start_time": 1})
    writer.append_key(0, "x")
    logged = 60_000  # ~2.3 MB of records: more than the file system holds
    for i in range(logged):
        writer.append_metric(1.0, i, 0, float(i))
    assert writer.degraded
    dropped_while_full = writer.dropped_points
    assert dropped_while_full > 0
    filler.unlink()  # space returns, and the writer looks for it again soon
    time.sleep(j.RETRY_EVERY_S)
    for i in range(logged, logged + 10):
        writer.append_metric(1.0, i, 0, float(i))
    writer.append_json(j.T_FINISH, {"status": "completed", "end_time": 2.0})
    assert not writer.degraded
    writer.close()
    steps, dropped = [], None
    for rtype, _end, payload in j.read_records(writer.directory, 0):
        if rtype == j.T_METRICS:
            steps.append(j.METRICS_HEAD.unpack_from(payload)[1])
        elif rtype == j.T_SUMMARY:
            import json

            dropped = json.loads(bytes(payload))[DROPPED_POINTS_KEY]
    assert dropped == writer.dropped_points == dropped_while_full
    assert len(steps) + dropped == logged + 10
    assert steps == sorted(steps)  # the buffer was written before what came after it
    assert steps[-10:] == list(range(logged, logged + 10))


_LOG_UNTIL_TOLD = f"""
import sys, labkeep
from labkeep import _journal
_journal.BUFFER_BYTES = 100_000  # what the freed space holds, with room for the store
run = labkeep.init("refilled", capture=False, system_metrics=0)
for i in range({N}):
    run.log({{"x": float(i)}}, step=i)
print("full", flush=True)
sys.stdin.readline()
for i in range({N}, {N} + 100):
    run.log({{"x": float(i)}}, step=i)
run.finish()
print("finished", flush=True)
"""


def test_the_run_records_exactly_what_was_dropped(small_fs: Path) -> None:
    store = small_fs / "store"
    filler = fill(small_fs, leave=600 << 10)
    proc = subprocess.Popen(
        [sys.executable, "-c", _LOG_UNTIL_TOLD],
        cwd=small_fs.parent,
        env=child_env(LABKEEP_HOME=str(store)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_line(proc, "full")
        filler.unlink()
        out, err = proc.communicate("go\n", timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "finished" in out
    import labkeep

    view = labkeep.get_run("last", store=store)
    dropped = view.summary.get(DROPPED_POINTS_KEY, 0)
    assert dropped > 0
    assert view.metrics["x"].count + dropped == N + 100
    assert view.series("x").steps.tolist()[-100:] == list(range(N, N + 100))
    shown = cli(store, "show", "last")
    assert shown.returncode == 0, shown.stderr
    assert f"{dropped} points were dropped" in shown.stdout


def test_logging_goes_on_with_no_space_for_the_journal_at_all(small_fs: Path) -> None:
    writer = j.JournalWriter(small_fs / "journals" / "run.w", buffer_bytes=1 << 10)
    fill(small_fs)
    writer.open()  # not even the first chunk can be had
    writer.append_json(j.T_START, {"uuid": "run", "experiment": "e", "name": "", "start_time": 1})
    writer.append_key(0, "x")
    for i in range(1000):
        writer.append_metric(1.0, i, 0, float(i))
    assert writer.degraded
    kept = 1000 - writer.dropped_points  # in the buffer, beside the start and key records
    assert 0 < kept < 1024 // 39
    writer.close()


def test_reads_work_on_a_store_whose_disk_filled_while_it_was_closed(small_fs: Path) -> None:
    """No connection is open when the disk fills, so SQLite has no ``-shm`` index yet and
    cannot make one: reads still work (the store is opened read-only) and a write says why
    it cannot be made in one line."""
    store = small_fs / "store"
    proc = start_python(
        "import labkeep\n"
        "with labkeep.init('before', capture=False, system_metrics=0) as run:\n"
        "    run.log({'x': 1.0})\n",
        cwd=small_fs.parent,
        env=child_env(LABKEEP_HOME=str(store)),
    )
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert not (store / "labkeep.db-shm").exists()  # the last connection removed it
    fill(small_fs)
    listed = cli(store, "runs")
    assert listed.returncode == 0, listed.stderr
    assert "before" in listed.stdout
    assert "Traceback" not in listed.stderr
    shown = cli(store, "show", "last")
    assert shown.returncode == 0, shown.stderr
    assert "Traceback" not in shown.stderr
    tagged = cli(store, "tag", "1", "keep")
    assert tagged.returncode != 0
    assert "Traceback" not in tagged.stderr
    assert len(tagged.stderr.strip().splitlines()) == 1, tagged.stderr
    assert "disk is full" in tagged.stderr
