"""One store behind several servers, reads beside writes, and a database that drops its
connections: what a team's server on PostgreSQL must survive. Real servers, a real
PostgreSQL, a real round-robin balancer in front; no timing asserts (a wait that never ends
fails through a join timeout, a guard against a hang, not a measure)."""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labkeep_server import ServerProcess, child_env
from round_robin import RoundRobin

from conftest import BACKENDS, PG_SERVER, drop_pg_schema, new_pg_schema, start_python
from labkeep.store import MetricColumns, RunStart, WriteBatch, locate_store, open_store
from labkeep.store.sql import SqlStore

T0 = 1_700_000_000.0
GUARD_S = 120  # a join that takes this long means a hang


def _batch(
    run_uuid: str, writer: str, position: int, steps: range, key: str = "loss"
) -> WriteBatch:
    batch = WriteBatch(
        run_uuid=run_uuid,
        writer=writer,
        position=position,
        start=RunStart(uuid=run_uuid, experiment="team", name="", start_time=T0)
        if position == 1
        else None,
    )
    batch.metrics[key] = MetricColumns(
        array("q", steps),
        array("d", (float(s) for s in steps)),
        array("d", (T0 + s for s in steps)),
    )
    return batch


@pytest.fixture
def pg_store_uri() -> Iterator[tuple[str, str]]:
    """(store URI, application name) on a fresh schema: the name tells this test's
    connections apart from every other client of the same PostgreSQL."""
    from conftest import require_postgres

    require_postgres("test_team_server")
    schema, uri = new_pg_schema()
    app = f"labkeep_team_{secrets.token_hex(4)}"
    try:
        yield f"{uri}&application_name={app}", app
    finally:
        drop_pg_schema(schema)


def _admin() -> Any:
    import psycopg

    return psycopg.connect(PG_SERVER, autocommit=True)


def _wait_for(what: str, check: Any) -> Any:
    deadline = time.monotonic() + GUARD_S
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


# -- reads never wait for writes -----------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_reads_answer_while_a_write_transaction_is_open(backend: str, tmp_path: Path) -> None:
    """A writer holds the store's write connection inside an open transaction (as a long
    ingest batch does); every kind of read of the same store object answers meanwhile, with
    what was last committed."""
    if backend == "sqlite":
        uri, schema = str(tmp_path / "store"), None
    else:
        from conftest import require_postgres

        require_postgres("test_reads_answer")
        schema, uri = new_pg_schema()
    store = open_store(locate_store(uri))
    try:
        assert isinstance(store, SqlStore)
        run_uuid = str(uuid.UUID(int=1))
        number = store.apply(_batch(run_uuid, "w", 1, range(10)))
        inside, release = threading.Event(), threading.Event()

        def write() -> None:
            with store._writing() as conn, conn.transaction() as cur:
                cur.execute(conn.sql("UPDATE runs SET notes = ? WHERE number = ?"), ("x", number))
                inside.set()
                release.wait(GUARD_S)

        writer = threading.Thread(target=write)
        writer.start()
        try:
            assert inside.wait(GUARD_S)
            read: dict[str, Any] = {}

            def reads() -> None:
                read["run"] = store.resolve_run(number)
                read["found"] = store.search_runs("loss >= 0", "-loss")
                read["records"] = store.get_records([number])
                read["table"] = store.get_run_table([number])
                read["history"] = store.get_history_bytes(number, "loss")
                read["position"] = store.journal_position("w")

            reader = threading.Thread(target=reads)
            reader.start()
            reader.join(GUARD_S)
            assert not reader.is_alive(), "a read waited for the open write transaction"
            assert writer.is_alive()  # the write was still in flight throughout
        finally:
            release.set()
            writer.join(GUARD_S)
        assert read["run"].notes == ""  # the uncommitted note is not seen
        assert read["found"] == ([number], 1)
        assert read["records"][0].metrics["loss"].count == 10
        assert read["position"] == 1
        assert store.resolve_run(number).notes == "x"
    finally:
        store.close()
        if schema is not None:
            drop_pg_schema(schema)


@pytest.mark.postgres
def test_a_server_answers_reads_while_an_ingest_batch_waits(
    pg_store_uri: tuple[str, str], tmp_path: Path
) -> None:
    """An ingest batch sent to a real server is held inside its write transaction (another
    session locks the run's row); the server still answers reads of that run meanwhile."""
    uri, app = pg_store_uri
    server = ServerProcess(uri).start()
    try:
        lb = open_store(locate_store(server.url))
        run_uuid = str(uuid.UUID(int=2))
        number = lb.apply(_batch(run_uuid, "w", 1, range(100)))
        # Two sessions: one holds the lock, the other watches (a transaction sees
        # pg_stat_activity as it was at its first look).
        with _admin() as locker, _admin() as admin:
            locker.execute("BEGIN")
            locker.execute(f"SET LOCAL search_path = {uri.split('%3D')[1].split('&')[0]}")
            locker.execute("SELECT number FROM runs WHERE number = %s FOR UPDATE", (number,))
            done: dict[str, Any] = {}
            ingest = threading.Thread(
                target=lambda: done.setdefault(
                    "n", lb.apply(_batch(run_uuid, "w", 2, range(100, 200)))
                )
            )
            ingest.start()
            _wait_for(
                "the server's ingest waits on the locked row",
                lambda: admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                    "AND wait_event_type = 'Lock'",
                    (app,),
                ).fetchone()[0],
            )
            reader = open_store(locate_store(server.url))
            assert reader.resolve_run(number).number == number
            assert reader.get_records([number])[0].metrics["loss"].count == 100
            assert reader.search_runs("loss >= 0")[0] == [number]
            assert ingest.is_alive()  # still waiting: every read above answered beside it
            locker.execute("ROLLBACK")
        ingest.join(GUARD_S)
        assert done["n"] == number
        assert lb.get_records([number])[0].metrics["loss"].count == 200
    finally:
        server.kill()


# -- several servers on one store ----------------------------------------------------------

_LOGGER = """
import os, sys, time
from pathlib import Path
import labkeep
run = labkeep.init(experiment="team", name="shared")
for step in range(200):  # over a few seconds: several ingest batches
    run.log({"loss": 1.0 / (step + 1), "acc": step / 200}, step=step)
    time.sleep(0.01)
gate = Path(sys.argv[1])
while not gate.exists():
    time.sleep(0.05)
for step in range(200, 400):
    run.log({"loss": 1.0 / (step + 1), "acc": step / 200}, step=step)
    time.sleep(0.01)
run.finish()
print("done", flush=True)
"""


@pytest.mark.postgres
def test_two_servers_on_one_store_serve_one_run_live(
    pg_store_uri: tuple[str, str], tmp_path: Path
) -> None:
    """Two ``labkeep server`` processes on one PostgreSQL store behind a balancer that sends
    each request to the next server: a script logs through the balancer (its batches, journal
    positions and blob checks alternate between the servers), each server sees the run live
    while it runs, and every point arrives once."""
    uri, _ = pg_store_uri
    a = ServerProcess(uri).start()
    b = ServerProcess(uri).start()
    try:
        with RoundRobin([a.url, b.url]) as lb:
            gate = tmp_path / "gate"
            env = child_env(LABKEEP_TRACKING_URI=lb.url, XDG_CACHE_HOME=str(tmp_path / "cache"))
            child = start_python(_LOGGER, cwd=tmp_path, env=env, args=(str(gate),))
            try:
                on_a = open_store(locate_store(a.url))
                on_b = open_store(locate_store(b.url))

                def live(store: Any) -> Any:
                    runs = store.list_runs("team")
                    record = runs and store.get_records([runs[0].number])[0]
                    return (
                        record
                        and record.metrics.get("loss", 0)
                        and (record.metrics["loss"].count >= 200 and record)
                    )

                for store in (on_a, on_b):
                    record = _wait_for("200 points seen live", lambda s=store: live(s))
                    assert record.info.status.value == "running"
                    assert record.metrics["loss"].count >= 200
                    # The key, first logged through the other server, is known to queries.
                    assert store.search_runs("loss > 0", experiment="team")[0] == [
                        record.info.number
                    ]
                gate.touch()
                _out, err = child.communicate(timeout=GUARD_S)
                assert child.returncode == 0, err
            finally:
                if child.poll() is None:
                    child.kill()
            assert lb.served[a.url] > 2 and lb.served[b.url] > 2, lb.served
            for store in (on_a, on_b):
                (number,) = store.search_runs(experiment="team")[0]
                record = store.get_records([number])[0]
                assert record.info.status.value == "completed"
                assert record.metrics["loss"].count == 400
                steps, _, _ = store.get_history_bytes(number, "loss")
                assert array("q", steps).tolist() == list(range(400))
            # A client alternating by hand: one writer's batches to A, B, A, B.
            run_uuid = str(uuid.UUID(int=3))
            for position, store in enumerate((on_a, on_b, on_a, on_b), start=1):
                steps = range((position - 1) * 10, position * 10)
                number = store.apply(_batch(run_uuid, "alternating", position, steps))
                assert on_a.journal_position("alternating") == position
                assert on_b.journal_position("alternating") == position
            on_a.apply(_batch(run_uuid, "alternating", 2, range(10, 20)))  # a resend: ignored
            assert on_b.get_records([number])[0].metrics["loss"].count == 40
    finally:
        a.kill()
        b.kill()


# -- the database drops the server's connections -------------------------------------------


def _terminate(admin: Any, app: str, where: str = "") -> int:
    rows = admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE application_name = %s AND pid <> pg_backend_pid() {where}",
        (app,),
    ).fetchall()
    return len(rows)


@pytest.mark.postgres
def test_a_server_reconnects_when_postgresql_ends_its_connections(
    pg_store_uri: tuple[str, str], tmp_path: Path
) -> None:
    """What a PostgreSQL restart does to a server, done with ``pg_terminate_backend``: its
    idle connections are ended (the next reads and writes open new ones), and one is ended
    in the middle of an ingest batch's transaction (the server applies the batch again on a
    new connection; the client gets its answer). Nothing acknowledged is lost, nothing is
    stored twice."""
    uri, app = pg_store_uri
    schema = uri.split("%3D")[1].split("&")[0]
    server = ServerProcess(uri).start()
    try:
        client = open_store(locate_store(server.url))
        run_uuid = str(uuid.UUID(int=4))
        number = client.apply(_batch(run_uuid, "w", 1, range(100)))
        assert client.get_records([number])[0].metrics["loss"].count == 100
        with _admin() as admin:
            before = {
                r[0]
                for r in admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (app,)
                ).fetchall()
            }
            assert _terminate(admin, app) >= 1  # every connection, idle between requests
            assert client.get_records([number])[0].metrics["loss"].count == 100
            number = client.apply(_batch(run_uuid, "w", 2, range(100, 200)))
            after = {
                r[0]
                for r in admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (app,)
                ).fetchall()
            }
            assert after and not after & before  # new connections, none of the old

            # Mid-batch: hold the run's row so the batch waits inside its transaction, end
            # that connection, then let the retried batch through. One session holds the
            # lock, the other watches (a transaction sees pg_stat_activity as at its first look).
            locker = _admin()
            locker.execute("BEGIN")
            locker.execute(f"SET LOCAL search_path = {schema}")
            locker.execute("SELECT number FROM runs WHERE number = %s FOR UPDATE", (number,))
            done: dict[str, Any] = {}
            ingest = threading.Thread(
                target=lambda: done.setdefault(
                    "n", client.apply(_batch(run_uuid, "w", 3, range(200, 300)))
                )
            )
            ingest.start()
            waiting = "AND wait_event_type = 'Lock'"
            first = _wait_for(
                "the batch waits on the row",
                lambda: admin.execute(
                    f"SELECT pid FROM pg_stat_activity WHERE application_name = %s {waiting}",
                    (app,),
                ).fetchone(),
            )[0]
            assert _terminate(admin, app, waiting) == 1
            _wait_for(
                "the batch, retried on a new connection, waits again",
                lambda: admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s "
                    f"AND pid <> %s {waiting}",
                    (app, first),
                ).fetchone(),
            )
            locker.execute("ROLLBACK")
            locker.close()
            ingest.join(GUARD_S)
        assert done.get("n") == number, server.output()
        record = client.get_records([number])[0]
        assert record.metrics["loss"].count == 300
        steps, _, _ = client.get_history_bytes(number, "loss")
        assert array("q", steps).tolist() == list(range(300))
    finally:
        server.kill()
