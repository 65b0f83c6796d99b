"""The write path under contention: ``log()`` never waits for the database, and many
processes share one SQLite store without losing a point or failing on its lock."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import labkeep
from conftest import child_env, start_python
from labkeep import RunStatus

WRITERS = 8
ROUNDS = 30
PER_ROUND = 200


def _wait_all(procs: list[subprocess.Popen[str]]) -> list[tuple[int, str, str]]:
    results = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=180)
        finally:
            proc.kill()
        results.append((proc.returncode, out, err))
    return results


def test_eight_processes_share_one_sqlite_store(tmp_path: Path) -> None:
    """Eight writers start together on a store that does not exist yet (so they also race to
    create it), log in bursts while the others write and read, and finish."""
    store = tmp_path / "store"
    go = tmp_path / "go"
    code = f"""
import os, sys, time, labkeep
while not os.path.exists({str(go)!r}):
    time.sleep(0.005)
writer = int(sys.argv[1])
run = labkeep.init("crowd", config={{"writer": writer}})
step = 0
for burst in range({ROUNDS}):
    for _ in range({PER_ROUND}):
        run.log({{"loss": 1.0 / (step + 1), "writer": float(writer)}})
        step += 1
    run.summary["bursts"] = burst + 1
    time.sleep(0.02)
run.finish()
view = labkeep.get_run(run.uuid)  # a read while the others still write
print(view.number, view.metrics["loss"].count)
"""
    env = child_env(LABKEEP_HOME=str(store))
    procs = [start_python(code, cwd=tmp_path, env=env, args=(str(i),)) for i in range(WRITERS)]
    go.touch()
    results = _wait_all(procs)
    for returncode, _out, err in results:
        assert "locked" not in err.lower(), err
        assert returncode == 0, err
        assert err == "", err
    total = ROUNDS * PER_ROUND
    assert sorted(int(out.split()[1]) for _, out, _ in results) == [total] * WRITERS

    runs = labkeep.runs("crowd", store=store)
    assert len(runs) == WRITERS
    assert sorted(r.params["writer"] for r in runs) == list(range(WRITERS))
    assert sorted(r.number for r in runs) == list(range(1, WRITERS + 1))
    for view in runs:
        assert view.status is RunStatus.COMPLETED
        assert view.summary == {"bursts": ROUNDS}
        assert view.metrics["loss"].count == total
        writer = view.metrics["writer"]
        assert (writer.count, writer.min, writer.max) == (
            total,
            view.params["writer"],
            view.params["writer"],
        )
        assert view.series("loss").steps.tolist() == list(range(total))


def test_writers_in_several_processes_log_to_one_run_at_once(tmp_path: Path) -> None:
    store = tmp_path / "store"
    run = labkeep.init("team", store=store)
    run.log({"shared": -1.0})
    run.number  # noqa: B018 (waits until the store has the run)
    go = tmp_path / "go"
    code = f"""
import os, sys, time, labkeep
while not os.path.exists({str(go)!r}):
    time.sleep(0.005)
writer = int(sys.argv[1])
with labkeep.init() as run:
    for i in range(2000):
        run.log({{"shared": float(writer), f"own{{writer}}": float(i)}}, step=writer * 10000 + i)
"""
    env = child_env(LABKEEP_HOME=str(store), LABKEEP_RUN_ID=run.uuid)
    procs = [start_python(code, cwd=tmp_path, env=env, args=(str(i),)) for i in range(3)]
    go.touch()
    for returncode, _out, err in _wait_all(procs):
        assert returncode == 0, err
        assert err == "", err
    run.finish()
    (view,) = labkeep.runs(store=store)
    shared = view.metrics["shared"]
    assert (shared.count, shared.min, shared.max) == (6001, -1.0, 2.0)
    assert [view.metrics[f"own{i}"].count for i in range(3)] == [2000, 2000, 2000]
    assert view.status is RunStatus.COMPLETED


def test_log_returns_while_the_database_is_locked(tmp_path: Path) -> None:
    """log() hands points to the journal only: with another connection holding the write lock
    it still returns, the points are not in the database yet, and arrive once it is free."""
    store = tmp_path / "store"
    run = labkeep.init(store=store)
    run.log({"x": 0.0})
    number = run.number  # the run is in the store
    blocker = sqlite3.connect(store / "labkeep.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        for i in range(1, 5001):
            run.log({"x": float(i), "y": -float(i)})
        run.config["late"] = True
        run.summary["done"] = 1
        # If log() had written to the database it would still be waiting for this lock.
        in_db = blocker.execute(
            "SELECT COALESCE(SUM(n), 0) FROM metric_chunks WHERE run_number = ?", (number,)
        ).fetchone()[0]
        assert in_db <= 1
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    run.finish()
    view = labkeep.get_run(number, store=store)
    assert view.metrics["x"].count == 5001
    assert view.metrics["y"].count == 5000
    assert view.params == {"late": True}
    assert view.summary == {"done": 1}
    assert view.status is RunStatus.COMPLETED
