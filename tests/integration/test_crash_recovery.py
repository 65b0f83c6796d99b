"""Nothing a returned ``log()`` handed over is lost when the process dies: its journal is
ingested, exactly once, by whoever reads the store next."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import labkeep
from conftest import child_env, require_postgres, start_python, wait_for_line
from labkeep import RunStatus
from labkeep import _journal as j

N = 30_000

_LOG_THEN_HANG = f"""
import sys, time, labkeep
run = labkeep.init(config={{"n": {N}}})
print(run.uuid, flush=True)
for i in range({N}):
    run.log({{"loss": i * 0.5, "i": float(i)}})
print("logged", flush=True)
time.sleep(600)
"""


def _kill_after(proc: subprocess.Popen[str], line: str) -> None:
    try:
        wait_for_line(proc, line)
        proc.kill()
        proc.wait(timeout=30)
    finally:
        proc.kill()
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()


def _make_store(store: Path) -> Path:
    """Create the store up front (so a test can lock it); return its database file."""
    with labkeep.init("setup", store=store):
        pass
    return store / "labkeep.db"


def _assert_all_points(view: labkeep.RunView, n: int = N) -> None:
    assert view.metrics["loss"].count == n
    assert view.metrics["i"].count == n
    series = view.series("i")
    assert series.steps.tolist() == list(range(n))  # each point once, in order
    assert series.values.tolist() == [float(i) for i in range(n)]
    assert view.metrics["loss"].last == (n - 1) * 0.5


def test_sigkill_right_after_log_loses_nothing(tmp_path: Path) -> None:
    store = tmp_path / "store"
    proc = start_python(_LOG_THEN_HANG, cwd=tmp_path, env=child_env(LABKEEP_HOME=str(store)))
    _kill_after(proc, "logged")
    view = labkeep.get_run("last", store=store)
    assert view.status is RunStatus.KILLED
    assert view.params == {"n": N}
    _assert_all_points(view)


def test_a_writer_killed_before_its_first_ingest_is_recovered(tmp_path: Path) -> None:
    """A process killed before its ingester created the store's database leaves only its
    journal: the next reader creates the database and recovers the run from it."""
    import time
    import uuid

    store = tmp_path / "store"
    run_uuid = str(uuid.uuid4())
    writer = j.JournalWriter(store / "journals" / f"{run_uuid}.dead")
    writer.open()
    start = {"uuid": run_uuid, "experiment": "e", "name": "", "start_time": time.time()}
    writer.append_json(j.T_START, start)
    writer.append_key(0, "x")
    writer.append_metric(time.time(), 0, 0, 1.0)
    writer.close(remove=False)  # as a SIGKILL leaves it: the lock released, the journal kept
    assert not (store / "labkeep.db").exists()
    view = labkeep.get_run("last", store=store)
    assert view.uuid == run_uuid
    assert view.status is RunStatus.KILLED
    assert view.metrics["x"].count == 1


def test_recovery_continues_after_what_the_dead_writer_ingested(tmp_path: Path) -> None:
    """The writer's own ingester stored the first half; recovery adds only the rest."""
    store = tmp_path / "store"
    half = N // 2
    code = f"""
import sqlite3, time, labkeep
run = labkeep.init()
for i in range({half}):
    run.log({{"loss": i * 0.5, "i": float(i)}})
db = sqlite3.connect("{store / "labkeep.db"}")
while True:  # until the background ingester has stored the first half
    try:
        row = db.execute("SELECT count FROM metrics WHERE key = 'i'").fetchone()
    except sqlite3.OperationalError:
        row = None
    if row and row[0] == {half}:
        break
    time.sleep(0.01)
for i in range({half}, {N}):
    run.log({{"loss": i * 0.5, "i": float(i)}})
print("logged", flush=True)
time.sleep(600)
"""
    proc = start_python(code, cwd=tmp_path, env=child_env(LABKEEP_HOME=str(store)))
    _kill_after(proc, "logged")
    view = labkeep.get_run("last", store=store)
    assert view.status is RunStatus.KILLED
    _assert_all_points(view)


def _locked_child_journal(tmp_path: Path, n: int) -> tuple[Path, Path]:
    """Run a child that logs ``n`` points while the store is write-locked, then SIGKILL it:
    everything it logged is only in its journal. Returns (store, journal directory)."""
    store = tmp_path / "store"
    db = _make_store(store)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        code = f"""
import labkeep
run = labkeep.init("torn", capture=False, system_metrics=0)  # points are the last records
for i in range({n}):
    run.log({{"x": float(i)}})
print("logged", flush=True)
import time; time.sleep(600)
"""
        proc = start_python(code, cwd=tmp_path, env=child_env(LABKEEP_HOME=str(store)))
        _kill_after(proc, "logged")
        assert blocker.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1  # only "setup"
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    (journal,) = (store / "journals").iterdir()
    return store, journal


def _last_record(journal: Path) -> tuple[int, int]:
    """(start, end) position of the last valid record of a journal."""
    start = end = 0
    for _rtype, after, _payload in j.read_records(journal, 0):
        start, end = end, after
    return start, end


@pytest.mark.parametrize("damage", ["garble", "truncate"])
def test_torn_tail_record_is_ignored_and_the_prefix_ingested(tmp_path: Path, damage: str) -> None:
    store, journal = _locked_child_journal(tmp_path, 500)
    start, end = _last_record(journal)
    segment = journal / "000000.seg"
    with open(segment, "r+b") as fh:
        if damage == "garble":
            fh.seek(end - 6)  # inside the last point's value and checksum
            fh.write(b"\x13\x37\x13\x37\x13\x37")
        else:
            fh.truncate(start + (end - start) // 2)
    view = labkeep.get_run("last", store=store)
    assert view.experiment == "torn"
    assert view.status is RunStatus.KILLED
    assert view.series("x").values.tolist() == [float(i) for i in range(499)]
    assert not journal.exists()


def test_journal_left_by_a_killed_writer_is_ingested_by_another_process(tmp_path: Path) -> None:
    store, journal = _locked_child_journal(tmp_path, 200)
    reader = subprocess.run(
        [
            sys.executable,
            "-c",
            "import labkeep; v = labkeep.get_run('last');"
            "print(v.status.value, v.metrics['x'].count)",
        ],
        cwd=tmp_path,
        env=child_env(LABKEEP_HOME=str(store)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert reader.returncode == 0, reader.stderr
    assert reader.stdout.split() == ["killed", "200"]
    assert not journal.exists()
    assert labkeep.get_run("last", store=store).metrics["x"].count == 200


def test_concurrent_readers_recover_a_dead_journal_once(tmp_path: Path) -> None:
    store, _journal = _locked_child_journal(tmp_path, 300)
    code = (
        "import labkeep; v = labkeep.get_run('last'); print(v.status.value, v.metrics['x'].count)"
    )
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env=child_env(LABKEEP_HOME=str(store)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for reader in readers:
        out, err = reader.communicate(timeout=120)
        assert reader.returncode == 0, err
        assert out.split() == ["killed", "300"]
    view = labkeep.get_run("last", store=store)
    assert view.series("x").steps.tolist() == list(range(300))


def test_a_live_writer_journal_is_left_alone(tmp_path: Path) -> None:
    store = tmp_path / "store"
    code = """
import sys, labkeep
run = labkeep.init()
run.log({"x": 1.0})
run.number  # registered in the store
print("ready", flush=True)
sys.stdin.readline()
run.log({"x": 2.0})
run.finish()
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=child_env(LABKEEP_HOME=str(store)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_line(proc, "ready")
        view = labkeep.get_run("last", store=store)
        assert view.status is RunStatus.RUNNING
        assert len(list((store / "journals").iterdir())) == 1
        _out, err = proc.communicate("go\n", timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    view = labkeep.get_run("last", store=store)
    assert view.status is RunStatus.COMPLETED
    assert view.metrics["x"].count == 2


def test_unreachable_store_keeps_the_journal(tmp_path: Path) -> None:
    """log() never waits for the database: with PostgreSQL unreachable it still returns, and
    finish() keeps everything in the journal instead of losing it."""
    code = """
import labkeep
run = labkeep.init(store="postgresql://postgres@127.0.0.1:1/nowhere")
for i in range(1000):
    run.log({"x": float(i)})
print("logged", flush=True)
run.finish()
print("finished", flush=True)
"""
    proc = start_python(code, cwd=tmp_path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.split() == ["logged", "finished"]
    assert "cannot write to the store yet" in err and "is kept in" in err
    (journal,) = (tmp_path / "cache" / "labkeep").glob("*/journals/*")
    points = sum(1 for rtype, _end, _payload in j.read_records(journal, 0) if rtype == j.T_METRICS)
    assert points == 1000


def _drop_my_postgres_connections() -> int:
    """Terminate this process's PostgreSQL connections, as a server restart or a network cut
    would; return how many."""
    import psutil
    import psycopg

    from conftest import PG_SERVER

    ports = [
        c.laddr.port
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == 5432
    ]
    with psycopg.connect(PG_SERVER, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE client_port = ANY(%s) AND pid <> pg_backend_pid()",
            (ports,),
        ).fetchall()
    return len(rows)


@pytest.mark.postgres
def test_a_dropped_database_connection_loses_nothing(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The ingester reconnects after the database dropped its connection, and the batch that
    failed is written again rather than skipped."""
    require_postgres(request.node.nodeid)
    uri: str = request.getfixturevalue("pg_schema_uri")
    run = labkeep.init("dropped", store=uri)
    run.log({"x": 0.0})
    run.number  # noqa: B018 (the ingester is connected and the run stored)
    assert _drop_my_postgres_connections() >= 1
    for i in range(1, 1001):
        run.log({"x": float(i)})
    run.finish()
    # finish() got everything into the store itself: no journal is left for recovery.
    assert list((tmp_path / "cache" / "labkeep").glob("*/journals/*")) == []
    view = labkeep.get_run(run.uuid, store=uri)
    assert view.status is RunStatus.COMPLETED
    assert view.series("x").values.tolist() == [float(i) for i in range(1001)]


def test_a_journal_the_store_refuses_does_not_block_reads(tmp_path: Path) -> None:
    import subprocess
    import sys

    store = tmp_path / "store"
    with labkeep.init(experiment="fine", store=store, capture=False, system_metrics=0) as run:
        run.log({"x": 1.0})
    # A dead writer's journal whose run cannot be created (no experiment name).
    bad = j.JournalWriter(store / "journals" / "0000dead.bad")
    bad.open()
    bad.append_json(
        j.T_START,
        {
            "uuid": "0000dead-0000-0000-0000-000000000000",
            "experiment": None,
            "name": "",
            "start_time": 1.0,
        },
    )
    bad.close()
    listed = subprocess.run(
        [sys.executable, "-m", "labkeep.cli", "--store", str(store), "runs"],
        capture_output=True,
        text=True,
    )
    assert listed.returncode == 0, listed.stderr
    assert "fine" in listed.stdout
    assert "0000dead.bad could not be ingested" in listed.stderr
    assert (store / "journals" / "0000dead.bad").is_dir()  # kept, not lost
