"""Team scale: labkeep servers on one PostgreSQL, beside MLflow's server on the same PostgreSQL.

    python benchmarks/bench_team.py                    # every section
    python benchmarks/bench_team.py --quick            # small sizes (a smoke run)
    python benchmarks/bench_team.py --only ingest --only runs --runs 100000
    python benchmarks/bench_team.py --only runs --keep-stores   # reuse lk_team_runs_N next time

Sections (each a function returning result rows; a new section is one more entry in
SECTIONS):

- ``ingest``: one process logs 1M points through the API (100 keys x 10,000 steps and
  10,000 keys x 100 steps) into PostgreSQL and SQLite, and 50,000 keys x 20 steps into
  SQLite; points/s from the first ``log()`` until ``finish()`` returned.
- ``clients``: 100 concurrent clients (10 processes of 10 threads) send their runs' points
  to two labkeep servers on one PostgreSQL store, half to each, as the ingester does
  (``Store.apply`` of a batch over HTTP); points/s, p99 latency of a batch, and every point
  counted in the database afterwards. MLflow: 100 clients ``log_batch`` to ``mlflow server``
  on its own PostgreSQL database.
- ``runs``: a PostgreSQL store of many runs written with COPY; a filtered, sorted search of
  50 runs through the API and through the server (the page and its records, as
  ``labkeep.runs`` asks), the count of its matches, the UI's first page (server time, page
  and total), 100,000 runs as a DataFrame; MLflow's ``search_runs`` on the same runs,
  written into MLflow's tables with COPY.

Each section makes its own PostgreSQL databases (``lk_team_*``) at 127.0.0.1:5432 (override
with LABKEEP_BENCH_POSTGRES) and drops them, but for ``--keep-stores``. Servers log to
``.bench/logs``. MLflow runs in `.bench/mlflow-venv` with
psycopg2-binary added. Results: `.bench/results/team.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import machine_info, write_results
from _harness import result_row as row
from _peers import MLFLOW, PeerSetupError, ensure_peer, peer_version

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src"
PG = os.environ.get("LABKEEP_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
CLIENTS, CLIENT_PROCS = 100, 10


# -- PostgreSQL databases and processes --------------------------------------------------------


def _db_uri(name: str) -> str:
    base, _, _ = PG.rpartition("/")
    return f"{base}/{name}"


@contextmanager
def database(name: str) -> Iterator[str]:
    """A fresh PostgreSQL database for this benchmark, dropped afterwards; yields its URI."""
    import psycopg

    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield _db_uri(name)
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def kept_database(
    name: str, keep: bool, ready: Callable[[str], bool]
) -> Iterator[tuple[str, bool]]:
    """:func:`database`, or with ``keep`` one left in place for the next run: yields its URI
    and whether it was reused (``ready(uri)`` said it holds what is wanted)."""
    if not keep:
        with database(name) as uri:
            yield uri, False
        return
    import psycopg

    uri = _db_uri(name)
    with psycopg.connect(PG, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if found and ready(uri):
            yield uri, True
            return
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    yield uri, False


def _holds_runs(n: int, table: str = "runs") -> Callable[[str], bool]:
    def ready(uri: str) -> bool:
        import psycopg

        try:
            with psycopg.connect(uri) as conn:
                return bool(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == n)
        except psycopg.Error:
            return False

    return ready


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKEEP_")}
    env["PYTHONPATH"] = str(SRC)
    env["LABKEEP_CAPTURE"] = "0"
    env["LABKEEP_SYSTEM_METRICS"] = "0"
    env.update(extra)
    return env


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(name: str, command: list[str], url: str, env: dict[str, str]) -> Iterator[str]:
    """The server ``command`` started, once ``url`` answers; its whole process group stopped
    afterwards. Its output goes to a log file beside the results (``.bench/logs``), never to
    a pipe nobody reads: ``mlflow server`` logs every request, and a full pipe blocks it."""
    from urllib.parse import urlsplit

    import httpx

    logs = REPO / ".bench" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{name}-{urlsplit(url).port}.log"

    def tail() -> str:
        return log_path.read_text(errors="replace")[-800:]

    with open(log_path, "w") as log:
        # Its own session: `mlflow server` starts uvicorn as a child, which a terminate of
        # the parent alone would leave serving.
        proc = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 600  # MLflow's workers take minutes on a busy machine
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{command[:4]} exited: {tail()} (log: {log_path})")
                try:
                    httpx.get(url, timeout=2).raise_for_status()
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"{command[:4]} did not start: {tail()} (log: {log_path})"
                        ) from None
                    time.sleep(0.2)
            yield url
        finally:
            _stop_group(proc)


def _stop_group(proc: subprocess.Popen[Any]) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def labkeep_server(store: str, workers: int = 2) -> Any:
    port = _free_port()
    cli = [sys.executable, "-c", "from labkeep.cli import main; main()"]
    command = [*cli, "server", "--store", store, "--port", str(port)]
    command += ["--workers", str(workers)]
    return serving("labkeep-server", command, f"http://127.0.0.1:{port}/api/v1/health", _env())


def mlflow_server(python: Path, backend: str, work: Path, workers: int = 2) -> Any:
    port = _free_port()
    command = [
        str(python), "-m", "mlflow", "server", "--backend-store-uri", backend,
        "--default-artifact-root", str(work / "mlartifacts"), "--host", "127.0.0.1",
        "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip
    return serving("mlflow-server", command, f"http://127.0.0.1:{port}/health", _env())


def _mlflow_python() -> tuple[Path | None, str | None]:
    """MLflow's venv python with psycopg2 for its PostgreSQL backend, or (None, why not)."""
    try:
        python = ensure_peer(MLFLOW, quiet=True)
    except PeerSetupError as exc:
        return None, str(exc)
    check = subprocess.run([str(python), "-c", "import psycopg2"], capture_output=True)
    if check.returncode != 0:
        pip = [str(python), "-m", "pip", "install", "-q", "psycopg2-binary"]
        if subprocess.run(pip, capture_output=True).returncode != 0:
            return None, "cannot install psycopg2-binary into the MLflow venv"
    return python, None


def _python(python: Path | str, code: str, *args: str, timeout: float = 1800) -> Any:
    """Run ``code`` in ``python``; its last line of output, as JSON."""
    done = subprocess.run(
        [str(python), "-c", textwrap.dedent(code), *args],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip()[-1500:])
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- ingest: one process, 1M points --------------------------------------------------------------

INGEST = """
import json, sys, time
import labkeep
store, keys, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
names = [f"k{i}" for i in range(keys)]
run = labkeep.init(experiment="ingest", store=store)
t0 = time.perf_counter()
for step in range(steps):
    run.log(dict.fromkeys(names, step * 0.5), step=step)
logged = time.perf_counter() - t0
run.finish()
print(json.dumps({"s": time.perf_counter() - t0, "log_s": logged}))
"""


def _create_store(uri: str) -> None:
    from labkeep.store import locate_store, open_store

    store = open_store(locate_store(uri))
    try:
        store.list_experiments()
    finally:
        store.close()


def ingest(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    shapes = [(100, 10_000), (10_000, 100)]
    wide = (50_000, 20)
    if args.quick:
        shapes, wide = [(100, 1_000), (1_000, 100)], (5_000, 20)
    rows = []
    with database("lk_team_ingest") as pg:
        cases = [("PostgreSQL", pg, k, s) for k, s in shapes]
        cases += [("SQLite", None, k, s) for k, s in [*shapes, wide]]
        for label, uri, keys, steps in cases:
            rates = []
            for attempt in range(args.repeat):
                store = uri or str(work / f"ingest-{keys}-{attempt}")
                _create_store(store)  # its schema is not part of the figure
                out = _python(sys.executable, INGEST, store, str(keys), str(steps))
                rates.append(keys * steps / out["s"])
            best = max(rates)
            rows.append(
                row(
                    f"ingest_{label.lower()}_{keys}x{steps}",
                    f"one process logs {keys * steps:,} points into {label}, "
                    f"{keys:,} keys x {steps:,} steps",
                    "points/s",
                    "higher",
                    best,
                    target=">= 1,000,000 points/s",
                    target_value=1_000_000,
                    labkeep_detail=f"best of {len(rates)}: "
                    + ", ".join(f"{r:,.0f}" for r in rates)
                    + "; from the first log() until finish() returned (all stored)",
                )
            )
    return rows


# -- clients: 100 writers, two servers -------------------------------------------------------------

LABKEEP_CLIENTS = """
import json, sys, threading, time, uuid
from array import array
from labkeep.store import MetricColumns, RunFinish, RunStart, WriteBatch, locate_store, open_store
urls, proc, threads, batches, keys, steps = json.loads(sys.argv[1])
latencies, errors = [], []
def client(i):
    store = open_store(locate_store(urls[i % len(urls)]))  # half the clients to each server
    run_uuid = str(uuid.uuid4())
    try:
        for b in range(batches):
            batch = WriteBatch(run_uuid=run_uuid, writer=f"w-{run_uuid}", position=b + 1)
            if b == 0:
                batch.start = RunStart(uuid=run_uuid, experiment="team", name="", start_time=time.time())
            s0 = b * steps
            for k in range(keys):
                batch.metrics[f"k{k}"] = MetricColumns(
                    array("q", range(s0, s0 + steps)),
                    array("d", [0.5 * k] * steps),
                    array("d", [time.time()] * steps),
                )
            if b == batches - 1:
                batch.finish = RunFinish("completed", time.time())
            t = time.perf_counter()
            store.apply(batch)
            latencies.append(time.perf_counter() - t)
    except Exception as exc:
        errors.append(repr(exc))
print("ready", flush=True)
sys.stdin.readline()
workers = [threading.Thread(target=client, args=(proc * threads + i,)) for i in range(threads)]
for w in workers: w.start()
for w in workers: w.join()
print(json.dumps({"latencies": latencies, "errors": errors}))
"""

MLFLOW_CLIENTS = """
import json, sys, threading, time
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
urls, proc, threads, batches, keys, steps = json.loads(sys.argv[1])
latencies, errors = [], []
def client(i):
    mc = MlflowClient(urls[i % len(urls)])
    try:
        exp = mc.get_experiment_by_name("team").experiment_id
        run = mc.create_run(exp)
        for b in range(batches):
            now = int(time.time() * 1000)
            metrics = [Metric(f"k{k}", 0.5 * k, now, b * steps + s) for s in range(steps) for k in range(keys)]
            t = time.perf_counter()
            mc.log_batch(run.info.run_id, metrics=metrics)
            latencies.append(time.perf_counter() - t)
        mc.set_terminated(run.info.run_id)
    except Exception as exc:
        errors.append(repr(exc))
print("ready", flush=True)
sys.stdin.readline()
workers = [threading.Thread(target=client, args=(proc * threads + i,)) for i in range(threads)]
for w in workers: w.start()
for w in workers: w.join()
print(json.dumps({"latencies": latencies, "errors": errors}))
"""


def _drive(
    python: Path | str, code: str, urls: list[str], sizes: tuple[int, int, int]
) -> dict[str, Any]:
    """CLIENTS clients in CLIENT_PROCS processes, released together: wall seconds, batch
    latencies, errors."""
    threads = CLIENTS // CLIENT_PROCS
    procs = [
        subprocess.Popen(
            [str(python), "-c", textwrap.dedent(code), json.dumps([urls, p, threads, *sizes])],
            env=_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in range(CLIENT_PROCS)
    ]
    for proc in procs:
        line = proc.stdout.readline().strip()  # type: ignore[union-attr]
        if line != "ready":
            raise RuntimeError(f"a client did not start: {proc.stderr.read()[-800:]}")  # type: ignore[union-attr]
    start = time.perf_counter()
    for proc in procs:
        proc.stdin.write("go\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
    latencies: list[float] = []
    errors: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=3600)
        if proc.returncode != 0:
            raise RuntimeError(f"a client exited {proc.returncode}: {err[-800:]}")
        found = json.loads(out.strip().splitlines()[-1])
        latencies += found["latencies"]
        errors += found["errors"]
    return {"s": time.perf_counter() - start, "latencies": latencies, "errors": errors}


def _p99_ms(latencies: list[float]) -> float | None:
    if len(latencies) < 2:
        return None
    return statistics.quantiles(latencies, n=100)[98] * 1000


def clients(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    import psycopg

    sizes = (5, 100, 10) if not args.quick else (3, 20, 10)  # batches, keys, steps per batch
    points = CLIENTS * sizes[0] * sizes[1] * sizes[2]
    with database("lk_team_clients") as pg:
        with labkeep_server(pg) as a, labkeep_server(pg) as b:
            urls = [u.removesuffix("/api/v1/health") for u in (a, b)]
            ours = _drive(sys.executable, LABKEEP_CLIENTS, urls, sizes)
        with psycopg.connect(pg) as conn:
            stored = conn.execute("SELECT coalesce(sum(n), 0) FROM metric_chunks").fetchone()[0]
            done = conn.execute("SELECT count(*) FROM runs WHERE status = 'completed'").fetchone()[
                0
            ]
    lost = points - int(stored)
    rows = [
        row(
            "clients_points",
            f"{CLIENTS} clients logging to two servers on one PostgreSQL",
            "points/s",
            "higher",
            points / ours["s"],
            labkeep_detail=f"{points:,} points in batches of {sizes[1] * sizes[2]:,}; "
            f"{int(stored):,} stored, {lost} lost, {done} runs completed, "
            f"{len(ours['errors'])} client errors; servers with 2 workers each",
        ),
        row(
            "clients_p99",
            f"{CLIENTS} clients: p99 latency of one batch",
            "ms",
            "lower",
            _p99_ms(ours["latencies"]),
            labkeep_detail=f"median {statistics.median(ours['latencies']) * 1000:,.1f} ms",
        ),
    ]
    if args.no_peer:
        return rows
    try:
        _mlflow_clients(rows, work, args.quick)
    except Exception as exc:  # MLflow's side failing leaves labkeep's figures
        for r in rows:
            r["peer_error"] = str(exc).splitlines()[-1] if str(exc) else repr(exc)
    return rows


def _mlflow_clients(rows: list[dict[str, Any]], work: Path, quick: bool = False) -> None:
    import psycopg

    python, why = _mlflow_python()
    if python is None:
        raise RuntimeError(why)
    ml_sizes = (3, 100, 10) if not quick else (2, 20, 10)  # log_batch holds <= 1,000
    ml_points = CLIENTS * ml_sizes[0] * ml_sizes[1] * ml_sizes[2]
    with database("lk_team_clients_mlflow") as ml_pg:
        backend = ml_pg.replace("postgresql://", "postgresql+psycopg2://")
        _python(
            python,
            f"from mlflow.tracking import MlflowClient; MlflowClient({backend!r}).create_experiment('team'); print(1)",
        )
        with mlflow_server(python, backend, work) as a, mlflow_server(python, backend, work) as b:
            urls = [u.removesuffix("/health") for u in (a, b)]
            theirs = _drive(python, MLFLOW_CLIENTS, urls, ml_sizes)
        with psycopg.connect(ml_pg) as conn:
            ml_stored = conn.execute("SELECT count(*) FROM metrics").fetchone()[0]
    rows[0]["peer"] = ml_points / theirs["s"]
    rows[0]["peer_detail"] = (
        f"{ml_points:,} points, log_batch of {ml_sizes[1] * ml_sizes[2]:,}; {ml_stored:,} stored, "
        f"{len(theirs['errors'])} client errors; two `mlflow server` with 2 workers each"
    )
    rows[1]["peer"] = _p99_ms(theirs["latencies"])
    rows[1]["peer_detail"] = f"median {statistics.median(theirs['latencies']) * 1000:,.1f} ms"
    for r in rows:
        r["comparable"] = r["peer"] is not None and r["labkeep"] is not None
        if r["comparable"]:
            r["ratio"] = (
                r["labkeep"] / r["peer"] if r["better"] == "higher" else r["peer"] / r["labkeep"]
            )


# -- runs: a store of many runs --------------------------------------------------------------------

T0 = 1_700_000_000.0
OPTIMIZERS = ("adam", "sgd", "adamw", "lion")
WHERE = "params.optimizer == 'adam' and metrics.loss < 0.5"
SORT = "-metrics.acc"
# MLflow compares params as strings, with = != LIKE only: the same filter in its syntax.
ML_WHERE = "params.optimizer = 'adam' and metrics.loss < 0.5"


def run_columns(n: int) -> dict[str, Any]:
    """The values of runs 0..n-1, as numpy columns (deterministic)."""
    import numpy as np

    rng = np.random.default_rng(17)
    return {
        "lr": np.round(10 ** rng.uniform(-4, -1, n), 6),
        "batch": rng.choice([32, 64, 128, 256], n),
        "layers": rng.integers(2, 12, n),
        "optimizer": rng.integers(0, len(OPTIMIZERS), n),
        "loss": rng.uniform(0.05, 2.0, n),
        "acc": rng.uniform(0.1, 0.99, n),
    }


def populate_labkeep(uri: str, n: int) -> float:
    """Write n finished runs into a fresh labkeep store on PostgreSQL with binary COPY: the
    same rows ``Store.apply`` would write (runs, params, metrics and each run's packed row)."""
    import numpy as np
    import psycopg

    from labkeep.store.sql._packed import _dtype, _keys_text, keyset_id

    _create_store(uri)
    started = time.perf_counter()
    cols = run_columns(n)
    numbers = np.arange(1, n + 1)
    param_keys = ["batch", "layers", "lr", "optimizer"]
    metric_keys = ["acc", "loss"]
    pk, mk = _keys_text(param_keys), _keys_text(metric_keys)
    p_dtype, m_dtype = _dtype("params"), _dtype("metrics")
    packed_p = np.zeros((n, 4), dtype=p_dtype)
    packed_p["kind"] = [ord("i"), ord("i"), ord("f"), ord("o")]
    packed_p["bits"][:, 0] = cols["batch"]
    packed_p["bits"][:, 1] = cols["layers"]
    packed_p["bits"][:, 2] = cols["lr"].view(np.int64)
    packed_m = np.zeros((n, 2), dtype=m_dtype)
    for j, key in enumerate(metric_keys):
        for field in ("last", "min", "max"):
            packed_m[field][:, j] = cols[key]
        packed_m["count"][:, j] = 1
    p_bytes, m_bytes = packed_p.tobytes(), packed_m.tobytes()
    pw, mw = 4 * p_dtype.itemsize, 2 * m_dtype.itemsize
    with psycopg.connect(uri.split("?")[0]) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO experiments (name, created) VALUES ('cifar', %s), ('mnist', %s)", (T0, T0)
        )
        cur.execute("SELECT name, id FROM experiments")
        exp = dict(cur.fetchall())
        cur.execute(
            "INSERT INTO key_sets (id, keys) VALUES (%s, %s), (%s, %s)",
            (keyset_id(pk), pk, keyset_id(mk), mk),
        )
        lists = numbers.tolist()
        starts = (T0 + numbers * 60.0).tolist()
        with cur.copy(
            "COPY runs (number, uuid, experiment_id, name, status, start_time, end_time, heartbeat, "
            "username, host, notes, deleted) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(
                [
                    "int4",
                    "text",
                    "int4",
                    "text",
                    "text",
                    "float8",
                    "float8",
                    "float8",
                    "text",
                    "text",
                    "text",
                    "bool",
                ]
            )
            for i, start in zip(lists, starts, strict=True):
                copy.write_row((
                    i, f"00000000-0000-0000-0000-{i:012x}", exp["cifar" if i % 2 else "mnist"],
                    f"run-{i}", "failed" if i % 17 == 0 else "completed", start, start + 50,
                    start + 50, "ann", "h1", "", False,
                ))  # fmt: skip
        cur.execute("SELECT setval('runs_number_seq', %s)", (n,))
        with cur.copy(
            "COPY params (run_number, key, vtype, num, text, json) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int4", "text", "text", "float8", "text", "text"])
            for i, b, la, lr, o in zip(
                lists,
                cols["batch"].tolist(),
                cols["layers"].tolist(),
                cols["lr"].tolist(),
                cols["optimizer"].tolist(),
                strict=True,
            ):
                opt = OPTIMIZERS[o]
                copy.write_row((i, "batch", "int", float(b), None, str(b)))
                copy.write_row((i, "layers", "int", float(la), None, str(la)))
                copy.write_row((i, "lr", "float", lr, None, repr(lr)))
                copy.write_row((i, "optimizer", "str", None, opt, f'"{opt}"'))
        with cur.copy(
            "COPY metrics (run_number, key, last, last_step, last_time, min, max, count) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int4", "text", "float8", "int8", "float8", "float8", "float8", "int8"])
            for i, start, acc, loss in zip(
                lists, starts, cols["acc"].tolist(), cols["loss"].tolist(), strict=True
            ):
                copy.write_row((i, "acc", acc, 0, start + 40, acc, acc, 1))
                copy.write_row((i, "loss", loss, 0, start + 40, loss, loss, 1))
        with cur.copy(
            "COPY run_rows (run_number, param_keyset, param_packed, param_other, metric_keyset, "
            "metric_packed) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int4", "int8", "bytea", "text", "int8", "bytea"])
            pid, mid = keyset_id(pk), keyset_id(mk)
            for r, (i, o) in enumerate(zip(lists, cols["optimizer"].tolist(), strict=True)):
                copy.write_row(
                    (
                        i,
                        pid,
                        p_bytes[r * pw : (r + 1) * pw],
                        f'["{OPTIMIZERS[o]}"]',
                        mid,
                        m_bytes[r * mw : (r + 1) * mw],
                    )
                )
        conn.commit()
        conn.autocommit = True
        # A store that grew over months has been vacuumed many times: its visibility map
        # lets index-only scans skip the table. Fresh COPY rows have none yet.
        cur.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median ms of ``repeat`` calls after one warm-up, and the last result."""
    result = fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), result


MLFLOW_POPULATE = """
import json, sys, time, io
import numpy as np
import psycopg2
from mlflow.tracking import MlflowClient
uri, n = sys.argv[1], int(sys.argv[2])
sys.path.insert(0, sys.argv[3])
from bench_team import OPTIMIZERS, run_columns, T0
started = time.perf_counter()
client = MlflowClient(uri.replace("postgresql://", "postgresql+psycopg2://"))
exps = {name: client.create_experiment(name) for name in ("cifar", "mnist")}
cols = {k: v.tolist() for k, v in run_columns(n).items()}  # Python numbers: exact repr
conn = psycopg2.connect(uri)
cur = conn.cursor()
def copy(table, columns, lines):
    buf = io.StringIO("".join(lines))
    cur.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buf)
runs, params, latest, tags = [], [], [], []
for i in range(1, n + 1):
    r = i - 1
    rid = f"{i:032x}"
    start = int((T0 + i * 60.0) * 1000)
    status = "FAILED" if i % 17 == 0 else "FINISHED"
    e = exps["cifar" if i % 2 else "mnist"]
    runs.append(f"{rid}\\trun-{i}\\tLOCAL\\t\\t\\tann\\t{status}\\t{start}\\t{start + 50000}\\t\\tactive\\t/tmp/{rid}\\t{e}\\t\\\\N\\n")
    lr = cols["lr"][r]
    params += [f"batch\\t{cols['batch'][r]}\\t{rid}\\n", f"layers\\t{cols['layers'][r]}\\t{rid}\\n",
               f"lr\\t{lr!r}\\t{rid}\\n", f"optimizer\\t{OPTIMIZERS[cols['optimizer'][r]]}\\t{rid}\\n"]
    for key in ("acc", "loss"):
        latest.append(f"{key}\\t{cols[key][r]!r}\\t{start + 40000}\\t0\\tf\\t{rid}\\n")
    tags.append(f"mlflow.runName\\trun-{i}\\t{rid}\\n")
copy("runs", "run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id, deleted_time", runs)
copy("params", "key, value, run_uuid", params)
copy("latest_metrics", "key, value, timestamp, step, is_nan, run_uuid", latest)
copy("tags", "key, value, run_uuid", tags)
conn.commit()
conn.autocommit = True
cur.execute("VACUUM ANALYZE")  # as labkeep's store: index-only scans need it after COPY
print(json.dumps({"s": time.perf_counter() - started, "exps": list(exps.values())}))
"""

MLFLOW_SEARCH = """
import json, statistics, sys, time
from mlflow.tracking import MlflowClient
uri, exps, where, repeat = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4])
client = MlflowClient(uri)
def once():
    return client.search_runs(exps, where, order_by=["metrics.acc DESC"], max_results=50)
found = once()
times = []
for _ in range(repeat):
    t = time.perf_counter(); found = once(); times.append((time.perf_counter() - t) * 1000)
print(json.dumps({"ms": statistics.median(times), "n": len(found)}))
"""


def runs(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    import httpx

    import labkeep
    from labkeep.store import locate_store, open_store

    n = args.runs if not args.quick else 20_000
    frame_n = min(100_000, n)
    name = f"lk_team_runs_{n}" if args.keep_stores else "lk_team_runs"
    with kept_database(name, args.keep_stores, _holds_runs(n)) as (pg, reused):
        filled = None if reused else populate_labkeep(pg, n)
        if reused:  # a store kept from an older labkeep: its schema brought up to date
            from labkeep.store.sql import _migrate

            _migrate.upgrade(locate_store(pg))
        store = open_store(locate_store(pg))

        def search() -> Any:
            # What labkeep.runs(where, sort=..., limit=50) asks: the page and its records,
            # without counting every match (the UI's page, below, counts).
            return store.get_records(store.search_numbers(WHERE, SORT, limit=50))

        api_ms, found = _timed(search, args.repeat * 3)
        count_ms, matched = _timed(lambda: store.count_runs(WHERE), args.repeat)
        frame_ms, frame = _timed(
            lambda: labkeep.runs(store=pg, limit=frame_n, sort="-started").to_pandas(),
            args.repeat,
        )
        store.close()
        with labkeep_server(pg) as health:
            base = health.removesuffix("/api/v1/health")
            served = open_store(locate_store(base))

            def search_served() -> Any:
                return served.get_records(served.search_numbers(WHERE, SORT, limit=50))

            server_ms, _ = _timed(search_served, args.repeat * 3)
            with httpx.Client(base_url=base, timeout=120) as http:
                ui = []
                for params in ({}, {"where": WHERE, "sort": SORT}) * (args.repeat * 3):
                    response = http.get("/api/v1/runs", params=params)
                    response.raise_for_status()
                    ui.append(float(response.headers["server-timing"].split("dur=")[1]))
            first_page_ms = statistics.median(ui)
    rows = [
        row(
            "runs_search_api",
            f"store of {n:,} runs: filtered, sorted search of 50 runs via the API",
            "ms",
            "lower",
            api_ms,
            target="<= 100 ms",
            target_value=100,
            labkeep_detail=f"`{WHERE}` sorted `{SORT}`, 50 runs with their records "
            f"({len(found)} found): Store.search_numbers + get_records, what labkeep.runs "
            "asks; store "
            + (f"written with COPY in {filled:,.0f} s" if filled else "kept from an earlier run"),
        ),
        row(
            "runs_search_server",
            f"store of {n:,} runs: the same search through a labkeep server",
            "ms",
            "lower",
            server_ms,
            target="<= 100 ms",
            target_value=100,
            labkeep_detail="RestStore.search_numbers + get_records over HTTP",
        ),
        row(
            "runs_count",
            f"store of {n:,} runs: how many runs the filter matches",
            "ms",
            "lower",
            count_ms,
            labkeep_detail=f"Store.count_runs(`{WHERE}`): {matched:,} runs "
            "(what search_runs adds to the page for its total)",
        ),
        row(
            "runs_first_page",
            f"store of {n:,} runs: the UI's first page, server time",
            "ms",
            "lower",
            first_page_ms,
            target="<= 300 ms",
            target_value=300,
            labkeep_detail="/api/v1/runs (what the runs page asks), unfiltered and filtered + "
            "sorted alternately; the app's Server-Timing",
        ),
        row(
            "runs_frame",
            f"{frame_n:,} runs as a DataFrame (store of {n:,})",
            "ms",
            "lower",
            frame_ms,
            target="<= 3,000 ms",
            target_value=3000,
            labkeep_detail=f"labkeep.runs(limit={frame_n:,}).to_pandas(): "
            f"{len(frame):,} rows x {len(frame.columns)} columns",
        ),
    ]
    if args.no_peer:
        return rows
    try:
        _mlflow_runs(rows, n, args.repeat, args.keep_stores)
    except Exception as exc:  # MLflow's side failing leaves labkeep's figures
        for r in rows[:2]:
            if r["peer"] is None:
                r["peer_error"] = str(exc).splitlines()[-1]
    return rows


def _mlflow_runs(rows: list[dict[str, Any]], n: int, repeat: int, keep: bool = False) -> None:
    python, why = _mlflow_python()
    if python is None:
        raise RuntimeError(why)
    work = Path(tempfile.mkdtemp(prefix="lk-team-mlflow-"))
    name = f"lk_team_runs_mlflow_{n}" if keep else "lk_team_runs_mlflow"
    with kept_database(name, keep, _holds_runs(n)) as (ml_pg, reused):
        if reused:
            import psycopg

            with psycopg.connect(ml_pg) as conn:
                exps_found = conn.execute(
                    "SELECT experiment_id FROM experiments WHERE name IN ('cifar', 'mnist') "
                    "ORDER BY name"
                ).fetchall()
            made = {"s": 0.0, "exps": [str(e) for (e,) in exps_found]}
        else:
            made = _python(python, MLFLOW_POPULATE, ml_pg, str(n), str(Path(__file__).parent))
        backend = ml_pg.replace("postgresql://", "postgresql+psycopg2://")
        exps = json.dumps(made["exps"])
        direct = _python(python, MLFLOW_SEARCH, backend, exps, ML_WHERE, str(repeat * 3))
        _peer_search(rows[0], direct, "MlflowClient on the database", made["s"])
        with mlflow_server(python, backend, work) as health:
            base = health.removesuffix("/health")
            served = _python(python, MLFLOW_SEARCH, base, exps, ML_WHERE, str(repeat * 3))
        _peer_search(rows[1], served, "through `mlflow server`", made["s"])


def _peer_search(r: dict[str, Any], got: dict[str, Any], how: str, filled: float) -> None:
    r["peer"] = got["ms"]
    r["peer_detail"] = (
        f"search_runs(`{ML_WHERE}`, order_by acc DESC, max_results=50) {how}; "
        f"{got['n']} found; same runs written into MLflow's tables with COPY in {filled:,.0f} s"
    )
    r["comparable"] = True
    r["ratio"] = r["peer"] / r["labkeep"]


#: name -> the function measuring it. The object-storage section (artifact throughput)
#: goes here as one more entry.
SECTIONS: dict[str, Callable[[argparse.Namespace, Path], list[dict[str, Any]]]] = {
    "ingest": ingest,
    "clients": clients,
    "runs": runs,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", action="append", choices=sorted(SECTIONS), help="a section")
    parser.add_argument("--runs", type=int, default=1_000_000, help="runs in the store")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-peer", action="store_true", help="labkeep's side only")
    parser.add_argument(
        "--keep-stores",
        action="store_true",
        help="runs: keep the stores of many runs (lk_team_runs_N) and reuse them next time",
    )
    args = parser.parse_args(argv)
    from labkeep._version import __version__

    previous: dict[str, Any] = {}
    results = REPO / ".bench" / "results" / "team.json"
    if args.only and results.exists():  # keep the sections not run this time
        previous = {r["id"]: r for r in json.loads(results.read_text()).get("rows", [])}
    rows: list[dict[str, Any]] = []
    failed = []
    with tempfile.TemporaryDirectory(prefix="lk-team-") as tmp:
        for name, measure in SECTIONS.items():
            if args.only and name not in args.only:
                continue
            print(f"--- {name}", flush=True)
            try:
                found = measure(args, Path(tmp))
            except Exception as exc:  # one section failing does not stop the others
                failed.append(name)
                print(f"{name} failed: {exc}", flush=True)
                continue
            for r in found:
                print(f"  {r['figure']}: labkeep {r['labkeep']} / MLflow {r['peer']}", flush=True)
            rows += found
    ran = set(args.only or SECTIONS)  # a row's id starts with its section's name
    rows = [*rows, *(r for i, r in previous.items() if i.split("_")[0] not in ran)]
    write_results(
        "team",
        {
            "title": "Team scale: PostgreSQL, several servers, many runs (labkeep vs MLflow server)",
            "labkeep_version": __version__,
            "peer": {"name": "MLflow", "version": peer_version(MLFLOW), "store": "PostgreSQL"},
            "quick": args.quick,
            "machine": machine_info(),
            "sizes": {"clients": CLIENTS, "runs": args.runs},
            "rows": rows,
        },
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
