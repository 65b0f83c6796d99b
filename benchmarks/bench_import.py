"""Importing an MLflow SQLite store into labkeep vs MLflow listing the same runs as a DataFrame.

Run: ``PYTHONPATH=src python benchmarks/bench_import.py [--runs 2000] [--quick]``.

The store: ``--runs`` runs (2,000) of the query benchmark's fixture (20 params, its metrics with
100 steps each, two experiments, names, times and statuses), written into the schema MLflow
creates (``.bench/mlflow-import-N.db``, built once in MLflow's own virtualenv
``.bench/mlflow-venv``): the rows ``MlflowClient.log_batch`` would write, every step of every
metric in MLflow's ``metrics`` table (see ``_mlflow_fixture.bulk_load``, which this extends
with the per-step rows). Timed:

The two sides take turns, one repeat each, so a change of load on a shared machine falls on
both; wall-clock and CPU time are both reported.

- MLflow, in its virtualenv: ``mlflow.search_runs()`` of every run as a pandas DataFrame
  (latest metric values only, no histories), after ``import mlflow``;
- labkeep: ``import_runs`` of ``MlflowSource`` (what ``labkeep import mlflow`` runs) into a new
  SQLite store, every metric's full history included, after ``import mlflow`` and after MLflow
  first opened its store (as on MLflow's side, where ``get_experiment_by_name`` did); and the whole
  command ``labkeep import mlflow sqlite:///…`` as a user runs it, process start included.

labkeep's side needs MLflow in labkeep's own environment (``pip install 'labkeep[interop]'``),
of the version the peer venv has (the store's schema must be one it reads).
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
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import machine_info, write_results
from _peers import MLFLOW, ensure_peer, peer_version

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / ".bench"

PEER_SCRIPT = textwrap.dedent(
    """
    import json, math, os, sqlite3, statistics, sys, time, uuid
    sys.path.insert(0, {bench_dir!r})
    import mlflow
    import _mlflow_fixture as fixture
    from bench_query import run_values

    db, n_runs, repeat = {db!r}, {n_runs}, {repeat}
    built = None
    if not os.path.exists(db + ".complete"):
        for stale in (db, db + "-journal", db + "-wal"):
            if os.path.exists(stale):
                os.remove(stale)
        start = time.perf_counter()
        fixture.bulk_load(db, n_runs)
        con = sqlite3.connect(db)
        con.execute("PRAGMA synchronous = OFF")
        for low in range(0, n_runs, 500):
            rows = []
            for i in range(low, min(low + 500, n_runs)):
                _, metrics = run_values(i)
                t0 = fixture.run_fields(i)["start_time"]
                run_id = uuid.UUID(int=i + 1).hex
                for key, (first, last) in metrics.items():
                    for step, value in fixture.metric_points(first, last):
                        nan = math.isnan(value)
                        rows.append((key, 0.0 if nan else value, t0 + step * 500, run_id, step, nan))
            with con:
                con.executemany(
                    "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
        points = con.execute("SELECT count(*) FROM metrics").fetchone()[0]
        con.close()
        built = time.perf_counter() - start
        open(db + ".complete", "w").write(json.dumps({{"built_s": built, "points": points}}))
    info = json.loads(open(db + ".complete").read())
    mlflow.set_tracking_uri("sqlite:///" + db)
    client = mlflow.MlflowClient()
    experiments = [client.get_experiment_by_name(n).experiment_id for n in fixture.EXPERIMENTS]
    times, cpu, shape = [], [], None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        frame = mlflow.search_runs(experiments, max_results=n_runs + 1)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        shape = list(frame.shape)
    print(json.dumps({{"version": mlflow.__version__, "built_s": built, "points": info["points"],
                      "times": times, "cpu": cpu, "shape": shape}}))
    """
)

LABKEEP_SCRIPT = textwrap.dedent(
    """
    import json, sys, tempfile, time
    import mlflow  # imported before timing, as on MLflow's side
    from labkeep.integrations._importing import import_runs
    from labkeep.integrations._mlflow import MlflowSource
    from labkeep.store import locate_store, open_store

    db, repeat = {db!r}, {repeat}
    times, cpu, report = [], [], None
    MlflowSource("sqlite:///" + db).close()  # MLflow opens (and caches) its store untimed
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            start, start_cpu = time.perf_counter(), time.process_time()
            store = open_store(locate_store(tmp + "/store"))
            source = MlflowSource("sqlite:///" + db)
            report = import_runs(store, source)
            source.close()
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
            number = report.imported[0]
            keys = store.metric_keys(number)
            points = sum(len(store.get_history(n, k)) for n in report.imported[:20] for k in keys)
            store.close()
    print(json.dumps({{"times": times, "cpu": cpu, "imported": len(report.imported),
                      "failed": report.failed, "mlflow": mlflow.__version__,
                      "keys": len(keys), "points_first_20": points}}))
    """
)


def _run_json(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(
            done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"
        )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="200 runs, one repeat")
    args = parser.parse_args()
    runs, repeat = (200, 1) if args.quick else (args.runs, args.repeat)
    load_start = os.getloadavg()[0]
    BENCH.mkdir(exist_ok=True)
    db = str(BENCH / f"mlflow-import-{runs}.db")
    bench_dir = str(Path(__file__).resolve().parent)

    python = ensure_peer(MLFLOW)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    # One repeat of each side in turn, so that a change in the load of a shared machine
    # falls on both sides alike.
    peer: dict[str, Any] = {"times": [], "cpu": []}
    ours: dict[str, Any] = {"times": [], "cpu": []}
    for _ in range(repeat):
        for side, found in (
            (
                peer,
                _run_json(
                    [
                        str(python),
                        "-c",
                        PEER_SCRIPT.format(bench_dir=bench_dir, db=db, n_runs=runs, repeat=1),
                    ]
                ),
            ),
            (
                ours,
                _run_json([sys.executable, "-c", LABKEEP_SCRIPT.format(db=db, repeat=1)], env=env),
            ),
        ):
            times, cpu = side["times"], side["cpu"]
            side.update(found)
            side["times"], side["cpu"] = times + found["times"], cpu + found["cpu"]
    command = [sys.executable, "-m", "labkeep.cli", "--store"]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        cli = subprocess.run(
            [*command, f"{tmp}/store", "import", "mlflow", f"sqlite:///{db}"],
            capture_output=True,
            text=True,
            env=env,
        )
        cli_s = time.perf_counter() - start
    if cli.returncode != 0:
        raise SystemExit(f"labkeep import mlflow failed: {cli.stderr.strip()}")

    ours_s = statistics.median(ours["times"])
    peer_s = statistics.median(peer["times"])
    ours_cpu = statistics.median(ours["cpu"])
    peer_cpu = statistics.median(peer["cpu"])
    points = peer["points"]
    rows = [
        {
            "id": "import_vs_search_runs",
            "figure": f"import {runs:,} MLflow runs ({points:,} metric points) vs "
            "mlflow.search_runs() of them",
            "unit": "s",
            "labkeep": ours_s,
            "peer": peer_s,
            "ratio": peer_s / ours_s,
            "target": "labkeep faster",
            "target_met": ours_s < peer_s,
            "labkeep_detail": f"import_runs(MlflowSource) with full histories, median of "
            f"{repeat} (min {min(ours['times']):.2f} s, max {max(ours['times']):.2f} s)",
            "peer_detail": f"DataFrame {peer['shape']} of last values, median of {repeat} "
            f"(min {min(peer['times']):.2f} s, max {max(peer['times']):.2f} s)",
        },
        {
            "id": "import_vs_search_runs_cpu",
            "figure": "the same, CPU time of the process (what a busy shared machine changes least)",
            "unit": "s",
            "labkeep": ours_cpu,
            "peer": peer_cpu,
            "ratio": peer_cpu / ours_cpu,
            "target": "labkeep faster",
            "target_met": ours_cpu < peer_cpu,
            "labkeep_detail": f"median of {repeat} (min {min(ours['cpu']):.2f} s, "
            f"max {max(ours['cpu']):.2f} s)",
            "peer_detail": f"median of {repeat} (min {min(peer['cpu']):.2f} s, "
            f"max {max(peer['cpu']):.2f} s)",
        },
        {
            "id": "import_command",
            "figure": f"`labkeep import mlflow` of the {runs:,} runs, process start included",
            "unit": "s",
            "labkeep": cli_s,
            "peer": None,
            "peer_text": "—",
        },
    ]
    load_end = os.getloadavg()[0]
    machine = {**machine_info(), "load_avg_1m": round(load_start, 2)}
    write_results(
        "import",
        {
            "title": f"Importing an MLflow store: labkeep vs MLflow {peer['version']} listing it",
            "quick": args.quick,
            "peer": {"name": "MLflow", "version": peer_version(MLFLOW), "store": "SQLite"},
            "machine": machine,
            "sizes": {"runs": runs, "points": points, "repeat": repeat},
            "notes": [
                f"MLflow in labkeep's environment: {ours['mlflow']}; imported {ours['imported']} "
                f"runs with {ours['keys']} metrics each, not understood: {len(ours['failed'])}",
                f"load average {load_start:.1f} at the start, {load_end:.1f} at the end",
            ],
            "rows": rows,
        },
    )
    print(f"MLflow {peer['version']}: {runs:,} runs, {points:,} metric points")
    print(f"  mlflow.search_runs() as a DataFrame: {peer_s:.2f} s (median of {repeat})")
    print(f"  labkeep import, full histories:      {ours_s:.2f} s (median of {repeat})")
    print(f"  labkeep import mlflow (command):     {cli_s:.2f} s")
    print(f"  CPU: search_runs {peer_cpu:.2f} s, labkeep import {ours_cpu:.2f} s (medians)")
    print(f"  load average {load_start:.1f} -> {load_end:.1f}")


if __name__ == "__main__":
    main()
