"""Server benchmark: labkeep server vs ``mlflow server``, both on SQLite.

Figures:
- ingest from 8 concurrent client processes (labkeep: ``labkeep.init(store=URL)`` and
  ``run.log`` with multi-key dicts, then ``finish``; MLflow: ``log_batch`` of 1,000 points);
  the points in the store are counted afterwards, so a lost point shows;
- MLflow's single-call ``log_metric`` rate with 4 workers and with 1;
- small-request latency from one keep-alive client with 4 workers: labkeep's server, and
  the same app under stock ``uvicorn --workers 4`` (both on uvicorn's own listener and
  supervisor; before uvicorn 0.55.0 the stock listener lost TCP_NODELAY).

    python benchmarks/bench_server.py [--quick] [--skip-mlflow]

Writes ``.bench/results/server.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _harness import result_row as _row

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src"
RESULTS = REPO / ".bench" / "results"
MLFLOW_VENV = REPO / ".bench" / "mlflow-venv"
CLIENTS = 8
WORKERS = 4


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABKEEP_", "PYTHON"))}
    env.update(PYTHONPATH=str(SRC), LABKEEP_CAPTURE="0", LABKEEP_SYSTEM_METRICS="0")
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


@contextmanager
def _server(command: list[str], health: str, env: dict[str, str], cwd: Path) -> Iterator[None]:
    log = open(cwd / "server.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        _wait_http(health)
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _run_clients(python: str, code: str, env: dict[str, str], cwd: Path) -> tuple[float, list[Any]]:
    """Start CLIENTS processes, release them together once all imported what they need;
    return (wall seconds from release to the last exit, what each printed last)."""
    procs = [
        subprocess.Popen(
            [python, "-c", code],
            env=env,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(CLIENTS)
    ]
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(
                f"client failed to start: {line} {proc.stderr.read() if proc.stderr else ''}"
            )
    start = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"client exited {proc.returncode}: {err.strip()[-500:]}")
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    return time.perf_counter() - start, outputs


LABKEEP_CLIENT = """
import json, sys, time
import labkeep
print("ready", flush=True)
sys.stdin.readline()
t0 = time.perf_counter()
run = labkeep.init(experiment="ingest", store=URL)
keys = [f"k{i}" for i in range(KEYS)]
for step in range(STEPS):
    v = float(step)
    run.log({k: v for k in keys}, step=step)
logged = time.perf_counter() - t0
run.finish()
print(json.dumps({"log_s": logged, "total_s": time.perf_counter() - t0}))
"""


def labkeep_ingest(work: Path, steps: int, keys: int) -> dict[str, Any]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    store = work / "labkeep-store"
    command = [sys.executable, "-c", "from labkeep.cli import main; main()", "server"]
    command += ["--store", str(store), "--port", str(port), "--workers", str(WORKERS)]
    env = _env(XDG_CACHE_HOME=str(work / "cache"))
    code = f"URL = {url!r}\nSTEPS = {steps}\nKEYS = {keys}\n" + LABKEEP_CLIENT
    with _server(command, url + "/api/v1/health", env, work):
        wall, outputs = _run_clients(sys.executable, code, env, work)
    db = sqlite3.connect(store / "labkeep.db")
    stored = db.execute("SELECT COALESCE(SUM(count), 0) FROM metrics").fetchone()[0]
    runs = db.execute("SELECT COUNT(*) FROM runs WHERE status = 'completed'").fetchone()[0]
    db.close()
    sent = CLIENTS * steps * keys
    return {
        "points": sent,
        "stored": int(stored),
        "completed_runs": int(runs),
        "wall_s": wall,
        "rate": stored / wall,
        "client_log_s": statistics.median(o["log_s"] for o in outputs),
    }


MLFLOW_BATCH_CLIENT = """
import json, sys, time
import mlflow
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
mlflow.set_tracking_uri(URL)
client = MlflowClient()
exp = client.get_experiment_by_name("ingest")
exp_id = exp.experiment_id if exp else None
print("ready", flush=True)
sys.stdin.readline()
t0 = time.perf_counter()
if exp_id is None:
    try:
        exp_id = client.create_experiment("ingest")
    except Exception:
        exp_id = client.get_experiment_by_name("ingest").experiment_id
run = client.create_run(exp_id)
run_id = run.info.run_id
now = int(time.time() * 1000)
keys = [f"k{i}" for i in range(KEYS)]
per_call = 1000 // KEYS
for first in range(0, STEPS, per_call):
    metrics = [Metric(k, float(s), now, s) for s in range(first, min(first + per_call, STEPS)) for k in keys]
    client.log_batch(run_id, metrics=metrics)
client.set_terminated(run_id)
print(json.dumps({"total_s": time.perf_counter() - t0}))
"""

MLFLOW_SINGLE = """
import json, time
import mlflow
mlflow.set_tracking_uri(URL)
mlflow.set_experiment("single")
with mlflow.start_run():
    mlflow.log_metric("warmup", 0.0, step=0)
    t0 = time.perf_counter()
    for i in range(CALLS):
        mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
    elapsed = time.perf_counter() - t0
print(json.dumps({"rate": CALLS / elapsed}))
"""


def _mlflow_server(work: Path, port: int, workers: int) -> tuple[list[str], dict[str, str]]:
    python = MLFLOW_VENV / "bin" / "python"
    db = work / f"mlflow-{workers}.db"
    command = [str(python), "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{db}"]
    command += ["--default-artifact-root", str(work / "mlruns"), "--port", str(port)]
    if workers != 4:
        command += ["--workers", str(workers)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    return command, env


def mlflow_ingest(work: Path, steps: int, keys: int) -> dict[str, Any]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command, env = _mlflow_server(work, port, 4)
    code = f"URL = {url!r}\nSTEPS = {steps}\nKEYS = {keys}\n" + MLFLOW_BATCH_CLIENT
    with _server(command, url + "/health", env, work):
        wall, _ = _run_clients(str(MLFLOW_VENV / "bin" / "python"), code, env, work)
    db = sqlite3.connect(work / "mlflow-4.db")
    stored = db.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
    db.close()
    return {
        "points": CLIENTS * steps * keys,
        "stored": int(stored),
        "wall_s": wall,
        "rate": stored / wall,
    }


def mlflow_single(work: Path, workers: int, calls: int) -> float:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command, env = _mlflow_server(work, port, workers)
    code = f"URL = {url!r}\nCALLS = {calls}\n" + MLFLOW_SINGLE
    with _server(command, url + "/health", env, work):
        done = subprocess.run(
            [str(MLFLOW_VENV / "bin" / "python"), "-c", code],
            env=env,
            cwd=work,
            capture_output=True,
            text=True,
            timeout=900,
        )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip()[-500:])
    return float(json.loads(done.stdout.strip().splitlines()[-1])["rate"])


def _latency(url: str, path: str, n: int) -> dict[str, float]:
    import httpx

    samples = []
    with httpx.Client(base_url=url) as client:
        for _ in range(50):
            client.get(path)
        for _ in range(n):
            t0 = time.perf_counter()
            client.get(path)
            samples.append(time.perf_counter() - t0)
    samples.sort()
    return {
        "median_ms": 1000 * statistics.median(samples),
        "p99_ms": 1000 * samples[int(0.99 * (len(samples) - 1))],
    }


STOCK_APP = """
import os
from labkeep.server import create_app

def make():
    return create_app(os.environ["BENCH_STORE"])
"""


def latencies(work: Path, n: int) -> dict[str, dict[str, float]]:
    store = work / "latency-store"
    env = _env(XDG_CACHE_HOME=str(work / "cache"))
    path = "/api/v1/store/journal-position/nobody"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-c", "from labkeep.cli import main; main()", "server"]
    command += ["--store", str(store), "--port", str(port), "--workers", str(WORKERS)]
    with _server(command, url + "/api/v1/health", env, work):
        ours = _latency(url, path, n)
    (work / "stock_app.py").write_text(textwrap.dedent(STOCK_APP))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "stock_app:make",
        "--factory",
        "--app-dir",
        str(work),
    ]
    command += ["--port", str(port), "--workers", str(WORKERS), "--log-level", "warning"]
    with _server(command, url + "/api/v1/health", _env(BENCH_STORE=str(store)), work):
        stock = _latency(url, path, max(50, n // 20))
    return {"labkeep": ours, "stock_uvicorn": stock}


def _machine() -> dict[str, Any]:
    cpu = platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "ms":
        return f"{value:,.2f} ms"
    return f"{value:,.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--skip-mlflow", action="store_true")
    args = parser.parse_args(argv)
    steps, keys = (10_000, 10) if args.quick else (50_000, 10)
    mlflow_steps = 1_000 if args.quick else 5_000
    calls = 30 if args.quick else 100
    have_mlflow = (MLFLOW_VENV / "bin" / "python").exists() and not args.skip_mlflow
    work = Path(tempfile.mkdtemp(prefix="labkeep-bench-server-"))
    try:
        print("labkeep ingest ...", file=sys.stderr)
        ours = labkeep_ingest(work, steps, keys)
        print("latency ...", file=sys.stderr)
        lat = latencies(work, 2000 if not args.quick else 300)
        theirs: dict[str, Any] | None = None
        single4 = single1 = None
        version = None
        if have_mlflow:
            version = subprocess.run(
                [
                    str(MLFLOW_VENV / "bin" / "python"),
                    "-c",
                    "import mlflow; print(mlflow.__version__)",
                ],
                capture_output=True,
                text=True,
            ).stdout.strip()
            print("mlflow ingest ...", file=sys.stderr)
            theirs = mlflow_ingest(work, mlflow_steps, keys)
            print("mlflow log_metric ...", file=sys.stderr)
            single4 = mlflow_single(work, 4, calls)
            single1 = mlflow_single(work, 1, calls)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lost = ours["points"] - ours["stored"]
    rows = [
        _row(
            "ingest_8_clients",
            f"ingest, {CLIENTS} concurrent clients (points/s)",
            "points/s",
            "higher",
            ours["rate"],
            theirs["rate"] if theirs else None,
            target=">= 200,000 points/s, none lost",
            target_value=200_000,
            labkeep_detail=f"{ours['stored']:,} of {ours['points']:,} points stored ({lost} lost) "
            f"in {ours['wall_s']:.1f} s, {WORKERS} workers; log() loop {ours['client_log_s']:.2f} s "
            "per client",
            peer_detail=""
            if theirs is None
            else f"log_batch of 1,000; {theirs['stored']:,} of {theirs['points']:,} points in "
            f"{theirs['wall_s']:.1f} s, 4 workers",
        ),
        _row(
            "small_request_latency",
            f"small request latency, {WORKERS} workers (median)",
            "ms",
            "lower",
            lat["labkeep"]["median_ms"],
            lat["stock_uvicorn"]["median_ms"],
            labkeep_detail=f"p99 {lat['labkeep']['p99_ms']:.2f} ms; keep-alive GET, one client",
            peer_detail="peer here is the same app under stock `uvicorn --workers 4` "
            f"(p99 {lat['stock_uvicorn']['p99_ms']:.2f} ms)",
        ),
        _row(
            "mlflow_log_metric_4",
            "MLflow log_metric, default 4 workers (calls/s)",
            "calls/s",
            "higher",
            None,
            single4,
            peer_detail=f"{calls} calls, one client",
        ),
        _row(
            "mlflow_log_metric_1",
            "MLflow log_metric, 1 worker (calls/s)",
            "calls/s",
            "higher",
            None,
            single1,
            peer_detail=f"{calls} calls, one client",
        ),
    ]
    from labkeep._version import __version__

    payload = {
        "benchmark": "server",
        "date": dt.datetime.now().astimezone().isoformat(),
        "title": f"Server: labkeep vs MLflow {version or '(not run)'}",
        "labkeep_version": __version__,
        "peer": {"name": "MLflow", "version": version, "store": "SQLite"},
        "quick": args.quick,
        "machine": _machine(),
        "sizes": {
            "clients": CLIENTS,
            "workers": WORKERS,
            "labkeep_points_per_client": steps * keys,
            "mlflow_points_per_client": mlflow_steps * keys,
            "log_metric_calls": calls,
        },
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "server.json").write_text(json.dumps(payload, indent=2) + "\n")
    width = max(len(r["figure"]) for r in rows)
    print(f"{'figure':<{width}}  {'labkeep':>14}  {'MLflow/peer':>14}  ratio")
    for r in rows:
        ratio = "" if r["ratio"] is None else f"{r['ratio']:,.1f}x"
        print(
            f"{r['figure']:<{width}}  {_fmt(r['labkeep'], r['unit']):>14}  "
            f"{_fmt(r['peer'], r['unit']):>14}  {ratio}"
        )
    print(f"labkeep: {ours['stored']:,}/{ours['points']:,} points stored; {lost} lost")
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
