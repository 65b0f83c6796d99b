"""Querying runs: ``labkeep runs --where … --sort … --limit 50`` as a fresh process, the same
query through ``labkeep.runs()``, and ``to_pandas()`` of every run, beside MLflow's
``search_runs`` on the same data.

Run: ``PYTHONPATH=src python benchmarks/bench_query.py [--runs 100000] [--mlflow-runs 2000]``.
The fixture (runs, each with 20 params and 10 metrics of 100 steps each) is written once through
labkeep's own batch path (``WriteBatch`` → ``store.apply``) and kept under ``.bench/``.
MLflow's fixture is written through ``log_batch`` in the MLflow virtualenv
(``.bench/mlflow-venv``; created with ``pip install 'mlflow==3.*'`` when missing). Results go
to ``.bench/results/query.json`` and a table is printed.

Targets (issue 5): the command ≤ 500 ms wall, the Python query ≤ 100 ms, ``to_pandas()`` of
100,000 runs ≤ 2 s.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
import uuid
from array import array
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / ".bench"
RESULTS = BENCH / "results" / "query.json"
MLFLOW_VENV = BENCH / "mlflow-venv"

N_PARAMS = 20
N_METRICS = 10
STEPS = 100
WHERE = "metrics.loss < 0.1 and params.lr > 0.01"
SORT = "metrics.loss"
LIMIT = 50
# MLflow compares params as strings (=, !=, LIKE, IN only): its closest filter keeps the
# metric test and the numeric param test becomes a string equality of similar selectivity.
MLFLOW_WHERE = "metrics.loss < 0.1 and params.optimizer = 'adam'"
LABKEEP_SAME_AS_MLFLOW = "metrics.loss < 0.1 and params.optimizer == 'adam'"
OPTIMIZERS = ("adam", "sgd", "adamw")
METRIC_KEYS = (
    "loss",
    "acc",
    "val_loss",
    "val_acc",
    "lr_now",
    "grad_norm",
    "f1",
    "auc",
    "epoch_time",
    "throughput",
)


def run_values(i: int) -> tuple[dict[str, Any], dict[str, tuple[float, float]]]:
    """Params and (first, last) value per metric of the i-th fixture run; deterministic."""
    rng = random.Random(i)
    params: dict[str, Any] = {
        "lr": 10 ** rng.uniform(-4, -1),
        "batch_size": rng.choice((16, 32, 64, 128, 256)),
        "optimizer": rng.choice(OPTIMIZERS),
        "dropout": round(rng.uniform(0, 0.5), 3),
        "epochs": rng.randint(1, 100),
        "seed": rng.randint(0, 2**31),
        "model": rng.choice(("resnet18", "resnet50", "vit", "mlp")),
        "weight_decay": 10 ** rng.uniform(-6, -2),
        "momentum": rng.choice((0.0, 0.9, 0.99)),
        "augment": rng.random() < 0.5,
    }
    for k in range(N_PARAMS - len(params)):
        params[f"extra_{k}"] = rng.random() if k % 2 else rng.randint(0, 1000)
    final = {key: rng.random() for key in METRIC_KEYS}
    final["loss"] = 10 ** rng.uniform(-2.5, 0)  # about 10 % below 0.1
    metrics = {key: (final[key] * (2 + rng.random()), final[key]) for key in METRIC_KEYS}
    return params, metrics


# -- labkeep fixture ---------------------------------------------------------------------------


def build_labkeep(store_dir: Path, n_runs: int) -> float:
    """Write the fixture through ``store.apply``; return seconds taken."""
    from labkeep.store import WriteBatch, locate_store, open_store
    from labkeep.store._base import MetricColumns, RunFinish, RunStart

    if store_dir.exists():
        shutil.rmtree(store_dir)
    store = open_store(locate_store(str(store_dir)))
    started = time.perf_counter()
    steps = array("q", range(STEPS))
    t0 = 1_700_000_000.0
    for i in range(n_runs):
        params, metrics = run_values(i)
        start_time = t0 + i * 60.0
        batch = WriteBatch(
            run_uuid=str(uuid.UUID(int=i + 1)),
            writer="bench-fixture",
            position=i + 1,
            start=RunStart(
                uuid=str(uuid.UUID(int=i + 1)),
                experiment="mnist" if i % 2 else "cifar",
                name=f"run-{i}",
                start_time=start_time,
                user="bench",
                host="bench-host",
            ),
            params=params,
            finish=RunFinish(
                status="failed" if i % 17 == 0 else "completed", end_time=start_time + 50.0
            ),
        )
        times = array("d", (start_time + s * 0.5 for s in range(STEPS)))
        for key, (first, last) in metrics.items():
            ratio = (last / first) ** (1 / (STEPS - 1)) if first > 0 and last > 0 else 1.0
            values = array("d", (first * ratio**s for s in range(STEPS)))
            values[-1] = last
            batch.metrics[key] = MetricColumns(array("q", steps), values, times)
        store.apply(batch)
    store.close()
    return time.perf_counter() - started


def labkeep_fixture(n_runs: int) -> Path:
    """The store directory for ``n_runs`` runs, built once and reused."""
    store_dir = BENCH / f"query-store-{n_runs}"
    marker = store_dir / "complete.json"
    if not marker.exists():
        print(f"building the labkeep fixture: {n_runs:,} runs …", flush=True)
        seconds = build_labkeep(store_dir, n_runs)
        marker.write_text(json.dumps({"runs": n_runs, "seconds": seconds}))
        print(f"  {seconds:.1f} s ({n_runs / seconds:,.0f} runs/s)", flush=True)
    else:  # built by an older labkeep: migrated as a user would (`labkeep db upgrade`)
        from labkeep.store import locate_store
        from labkeep.store.sql._migrate import upgrade

        before, after = upgrade(locate_store(str(store_dir)))
        if before != after:
            print(f"  migrated {store_dir.name}: schema {before} -> {after}", flush=True)
    return store_dir


# -- MLflow fixture and measurements (run inside the MLflow virtualenv) ----------------------

MLFLOW_SCRIPT = textwrap.dedent(
    """
    import json, os, statistics, sys, time
    sys.path.insert(0, {bench_dir!r})
    os.environ["MLFLOW_ENABLE_ASYNC_LOGGING"] = "false"
    import mlflow
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient
    from bench_query import run_values, STEPS, WHERE, MLFLOW_WHERE, LIMIT

    db, n_runs, repeat = {db!r}, {n_runs}, {repeat}
    uri = "sqlite:///" + db
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    built = None
    if not os.path.exists(db + ".complete"):
        start = time.perf_counter()
        exp = client.create_experiment("bench")
        for i in range(n_runs):
            params, metrics = run_values(i)
            run = client.create_run(exp)
            t0 = int(1_700_000_000_000 + i * 60_000)
            points = []
            for key, (first, last) in metrics.items():
                ratio = (last / first) ** (1 / (STEPS - 1)) if first > 0 and last > 0 else 1.0
                for s in range(STEPS):
                    value = last if s == STEPS - 1 else first * ratio ** s
                    points.append(Metric(key, value, t0 + s * 500, s))
            client.log_batch(
                run.info.run_id,
                metrics=points,
                params=[Param(k, str(v)) for k, v in params.items()],
            )
            client.set_terminated(run.info.run_id)
        built = time.perf_counter() - start
        open(db + ".complete", "w").write(str(built))
    exp = client.get_experiment_by_name("bench").experiment_id

    def timed(fn):
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times), min(times), max(times), result

    filtered = timed(lambda: client.search_runs(
        [exp], MLFLOW_WHERE, order_by=["metrics.loss ASC"], max_results=LIMIT))
    frame = timed(lambda: mlflow.search_runs([exp], max_results=n_runs + 1))
    print(json.dumps({{
        "version": mlflow.__version__,
        "build_s": built,
        "filtered": filtered[:3], "filtered_n": len(filtered[3]),
        "pandas": frame[:3], "pandas_shape": list(frame[3].shape),
    }}))
    """
)


def measure_mlflow(n_runs: int, repeat: int) -> dict[str, Any] | None:
    python = MLFLOW_VENV / "bin" / "python"
    if not python.exists():
        print("creating the MLflow virtualenv …", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "mlflow==3.*"], check=True)
    db = BENCH / f"mlflow-{n_runs}.db"
    script = MLFLOW_SCRIPT.format(
        bench_dir=str(ROOT / "benchmarks"), db=str(db), n_runs=n_runs, repeat=repeat
    )
    print(f"MLflow: {n_runs:,} runs (fixture built once) …", flush=True)
    result = subprocess.run([str(python), "-c", script], capture_output=True, text=True)
    if result.returncode != 0:
        print(result.stderr[-3000:], file=sys.stderr)
        return None
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


# -- labkeep measurements -------------------------------------------------------------------

API_SCRIPT = textwrap.dedent(
    """
    import json, statistics, sys, time
    import labkeep, pandas
    store, repeat, where, sort, limit = {store!r}, {repeat}, {where!r}, {sort!r}, {limit}

    def query():
        runs = labkeep.runs(where=where, sort=sort, limit=limit, store=store)
        return [r.number for r in runs]  # materialised: records read

    start = time.perf_counter()
    first = query()
    cold = time.perf_counter() - start
    warm = []
    for _ in range(repeat):
        start = time.perf_counter()
        query()
        warm.append(time.perf_counter() - start)
    frames = []
    for _ in range({frame_repeat}):
        start = time.perf_counter()
        frame = labkeep.runs(store=store).to_pandas()
        frames.append(time.perf_counter() - start)
    print(json.dumps({{
        "cold": cold, "warm": [statistics.median(warm), min(warm), max(warm)],
        "n": len(first), "pandas": [statistics.median(frames), min(frames), max(frames)],
        "pandas_shape": list(frame.shape),
    }}))
    """
)


def measure_labkeep(store_dir: Path, repeat: int, frame_repeat: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "200"}
    env.pop("LABKEEP_HOME", None)
    command = [
        sys.executable,
        "-m",
        "labkeep.cli",
        "--store",
        str(store_dir),
        "runs",
        "--where",
        WHERE,
        "--sort",
        SORT,
        "--limit",
        str(LIMIT),
    ]
    cli: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env)
        cli.append(time.perf_counter() - start)
    bare: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True, env=env)
        bare.append(time.perf_counter() - start)
    script = API_SCRIPT.format(
        store=str(store_dir),
        repeat=repeat,
        where=WHERE,
        sort=SORT,
        limit=LIMIT,
        frame_repeat=frame_repeat,
    )
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True, env=env
    )
    api: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    same = subprocess.run(
        [sys.executable, "-c", script.replace(repr(WHERE), repr(LABKEEP_SAME_AS_MLFLOW))],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    api["mlflow_filter"] = json.loads(same.stdout.strip().splitlines()[-1])["warm"]
    return {
        "cli": [statistics.median(cli), min(cli), max(cli)],
        "bare": statistics.median(bare),
        **api,
    }


# -- report --------------------------------------------------------------------------------


def _row(
    rid: str,
    figure: str,
    ours: float | None,
    peer: float | None,
    target: float | None,
    ours_detail: str,
    peer_detail: str,
    comparable: bool,
) -> dict[str, Any]:
    return {
        "id": rid,
        "figure": figure,
        "unit": "ms",
        "better": "lower",
        "labkeep": ours,
        "peer": peer,
        "target": None if target is None else f"≤ {target:,.0f} ms",
        "target_value": target,
        "labkeep_detail": ours_detail,
        "peer_detail": peer_detail,
        "labkeep_error": None,
        "peer_error": None if peer is not None else "not measured",
        "comparable": comparable,
        "ratio": None if not (ours and peer) else peer / ours,
        "target_met": None if target is None or ours is None else ours <= target,
    }


def _spread(values: list[float]) -> str:
    return f"median (min {values[1] * 1000:,.0f}, max {values[2] * 1000:,.0f} ms)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--mlflow-runs", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-mlflow", action="store_true")
    args = parser.parse_args()
    big = labkeep_fixture(args.runs)
    small = labkeep_fixture(args.mlflow_runs)
    print("measuring labkeep …", flush=True)
    ours_big = measure_labkeep(big, args.repeat, 3)
    ours_small = measure_labkeep(small, args.repeat, args.repeat)
    peer = None if args.no_mlflow else measure_mlflow(args.mlflow_runs, args.repeat)
    n, m = f"{args.runs:,}", f"{args.mlflow_runs:,}"
    ms = 1000.0
    rows = [
        _row(
            "cli_query",
            f"labkeep runs --where … --sort … --limit 50, fresh process ({n} runs)",
            ours_big["cli"][0] * ms,
            None,
            500,
            f"{_spread(ours_big['cli'])}; bare python {ours_big['bare'] * ms:,.0f} ms",
            "MLflow has no equivalent command",
            False,
        ),
        _row(
            "api_query",
            f"labkeep.runs(where, sort, limit=50) materialised ({n} runs)",
            ours_big["warm"][0] * ms,
            None,
            100,
            f"{_spread(ours_big['warm'])}; first call in a process {ours_big['cold'] * ms:,.0f} ms; "
            f"{ours_big['n']} runs",
            "",
            False,
        ),
        _row(
            "to_pandas_all",
            f"to_pandas() of every run ({n} runs)",
            ours_big["pandas"][0] * ms,
            None,
            2000,
            f"{_spread(ours_big['pandas'])}; shape {ours_big['pandas_shape']}",
            "",
            False,
        ),
    ]
    if peer is not None:
        rows += [
            _row(
                "filtered_same_data",
                f"filtered search, sorted, 50 runs ({m} runs each)",
                ours_small["mlflow_filter"][0] * ms,
                peer["filtered"][0] * ms,
                None,
                f"{LABKEEP_SAME_AS_MLFLOW!r}; {_spread(ours_small['mlflow_filter'])}",
                f"search_runs({MLFLOW_WHERE!r}, order_by loss); {_spread(peer['filtered'])}",
                True,
            ),
            _row(
                "pandas_same_data",
                f"every run as a DataFrame ({m} runs each)",
                ours_small["pandas"][0] * ms,
                peer["pandas"][0] * ms,
                None,
                f"to_pandas(); {_spread(ours_small['pandas'])}; shape {ours_small['pandas_shape']}",
                f"mlflow.search_runs(); {_spread(peer['pandas'])}; shape {peer['pandas_shape']}",
                True,
            ),
        ]
    load = os.getloadavg()[0]
    report = {
        "benchmark": "query",
        "date": datetime.datetime.now(datetime.UTC).isoformat(),
        "title": "Querying runs: labkeep vs MLflow" + (f" {peer['version']}" if peer else ""),
        "labkeep_version": _version(),
        "peer": {
            "name": "MLflow",
            "version": peer["version"] if peer else None,
            "store": "SQLite",
        },
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "os": platform.platform(),
            "python": platform.python_version(),
            "load_avg_1m": load,
        },
        "sizes": {
            "runs": args.runs,
            "mlflow_runs": args.mlflow_runs,
            "params": N_PARAMS,
            "metrics": N_METRICS,
            "steps": STEPS,
            "repeat": args.repeat,
            "where": WHERE,
            "sort": SORT,
        },
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"\n{report['title']}  (load average {load:.1f} on {os.cpu_count()} cores)")
    print(f"{'figure':<72} {'labkeep':>10} {'MLflow':>10} {'target':>10}")
    for row in rows:
        ours = "-" if row["labkeep"] is None else f"{row['labkeep']:,.0f} ms"
        theirs = "-" if row["peer"] is None else f"{row['peer']:,.0f} ms"
        target = "" if row["target_value"] is None else f"≤ {row['target_value']:,.0f}"
        mark = {True: " ok", False: " MISSED", None: ""}[row["target_met"]]
        print(f"{row['figure']:<72} {ours:>10} {theirs:>10} {target:>10}{mark}")
    print(f"\nwritten to {RESULTS}")


def _version() -> str:
    sys.path.insert(0, str(ROOT / "src"))
    from labkeep._version import __version__

    return __version__


if __name__ == "__main__":
    main()
