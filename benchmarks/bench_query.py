"""Querying runs: ``labkeep runs --where … --sort … --limit 50`` as a fresh process, the same
query through ``labkeep.runs()``, and ``to_pandas()`` of every run, beside MLflow's
``search_runs`` on the same data.

Run: ``PYTHONPATH=src python benchmarks/bench_query.py [--runs 100000] [--mlflow-runs 2000]``.
The fixture (runs, each with 20 params and 10 metrics of 100 steps each) is written once through
labkeep's own batch path (``WriteBatch`` → ``store.apply``) and kept under ``.bench/``.
MLflow runs in its own virtualenv (``.bench/mlflow-venv``; created with
``pip install 'mlflow==3.*'`` when missing) on two stores of the same runs:

- ``--mlflow-runs`` runs written through ``MlflowClient.log_batch``, every step
  (``.bench/mlflow-2000.db``; about 6 runs/s);
- ``--runs`` runs bulk-loaded by SQL into the schema MLflow creates
  (``.bench/mlflow-bulk-100000.db``, see ``_mlflow_fixture.py``): the tables ``search_runs``
  reads, with the per-step metrics table left empty. Before measuring, the loader is checked
  against ``MlflowClient`` on a few runs (``--check-mlflow-loader N``).

Results go to ``.bench/results/query.json`` and a table is printed.

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

from _mlflow_search import BULK_NOTE, MLFLOW_STORES, check_mlflow_loader, measure_mlflow

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / ".bench"
RESULTS = BENCH / "results" / "query.json"

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
        from labkeep.store.sql import upgrade_store

        before, after = upgrade_store(locate_store(str(store_dir)))
        if before != after:
            print(f"  migrated {store_dir.name}: schema {before} -> {after}", flush=True)
    return store_dir


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
    names = [r.name for r in labkeep.runs(where=where, sort=sort, limit=limit, store=store)]
    print(json.dumps({{
        "cold": cold, "warm": [statistics.median(warm), min(warm), max(warm)],
        "n": len(first), "pandas": [statistics.median(frames), min(frames), max(frames)],
        "pandas_shape": list(frame.shape), "names": names,
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
    same_api = json.loads(same.stdout.strip().splitlines()[-1])
    api["mlflow_filter"] = same_api["warm"]
    api["mlflow_filter_names"] = same_api["names"]
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
    peer_error: str | None = None,
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
        "peer_error": peer_error,
        "comparable": comparable,
        "ratio": None if not (ours and peer) else peer / ours,
        "target_met": None if target is None or ours is None else ours <= target,
    }


def _spread(values: list[float]) -> str:
    return f"median (min {values[1] * 1000:,.0f}, max {values[2] * 1000:,.0f} ms)"


def _peer(
    peer: dict[str, Any] | None, part: str, what: str
) -> tuple[float | None, str, str | None]:
    """(median ms, detail, error) of one MLflow measurement (``filtered`` or ``pandas``)."""
    if peer is None:  # --no-mlflow
        return None, "", None
    if "error" in peer:
        return None, "", str(peer["error"])[-300:]
    m = peer[part]
    if "timeout_s" in m:
        return None, what, f"timed out after {m['timeout_s']} s"
    extra = f"; {m['n']} runs" if "n" in m else f"; shape {m['shape']}"
    built = f"; {MLFLOW_STORES[peer['loader']]}"
    return m["times"][0] * 1000.0, f"{what}; {_spread(m['times'])}{extra}{built}", None


def _agreement(ours: list[str], peer: dict[str, Any] | None) -> str:
    """Whether both tools returned the same 50 runs, in the same order."""
    names = None if peer is None or "error" in peer else peer["filtered"].get("names")
    if names is None:
        return ""
    if names == ours:
        return f"; the same {len(ours)} runs in the same order as MLflow"
    common = len(set(names) & set(ours))
    return f"; {common} of {len(ours)} runs also in MLflow's answer (order or set differs)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--mlflow-runs", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--mlflow-big-repeat", type=int, default=3, help="search_runs repeats")
    parser.add_argument("--mlflow-timeout", type=int, default=600, help="seconds per call")
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument(
        "--check-mlflow-loader",
        type=int,
        default=50,
        metavar="N",
        help="before measuring, write N runs through MlflowClient and through the bulk loader "
        "and compare what MLflow's searches return (default 50; 0 skips the check)",
    )
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    check = None
    if args.check_mlflow_loader and not args.no_mlflow:
        check = check_mlflow_loader(args.check_mlflow_loader)
        print(f"  loader check: {json.dumps(check)}", flush=True)
        if not check.get("identical"):
            sys.exit("the MLflow bulk loader does not match MlflowClient: not measuring")
    big = labkeep_fixture(args.runs)
    small = labkeep_fixture(args.mlflow_runs)
    print("measuring labkeep …", flush=True)
    ours_big = measure_labkeep(big, args.repeat, 3)
    ours_small = measure_labkeep(small, args.repeat, args.repeat)
    peer_big = peer = None
    if not args.no_mlflow:
        peer = measure_mlflow(args.mlflow_runs, "client", args.repeat, args.repeat, 600)
        peer_big = measure_mlflow(
            args.runs, "bulk", args.mlflow_big_repeat, 1, args.mlflow_timeout, analyzed=True
        )
    n, m = f"{args.runs:,}", f"{args.mlflow_runs:,}"
    ms = 1000.0
    search = f"search_runs({MLFLOW_WHERE!r}, order_by loss, max_results 50)"
    big_filter = _peer(peer_big, "filtered", f"closest equivalent filter: {search}")
    big_frame = _peer(peer_big, "pandas", "mlflow.search_runs() of every run")
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
            big_filter[0],
            100,
            f"{WHERE!r}; {_spread(ours_big['warm'])}; first call in a process "
            f"{ours_big['cold'] * ms:,.0f} ms; {ours_big['n']} runs",
            big_filter[1] + "; MLflow compares params only as strings",
            False,
            big_filter[2],
        ),
        _row(
            "to_pandas_all",
            f"to_pandas() of every run ({n} runs)",
            ours_big["pandas"][0] * ms,
            big_frame[0],
            2000,
            f"{_spread(ours_big['pandas'])}; shape {ours_big['pandas_shape']}",
            big_frame[1],
            True,
            big_frame[2],
        ),
    ]
    if peer_big is not None:
        rows.append(
            _row(
                "filtered_same_data_big",
                f"filtered search, sorted, 50 runs, same filter ({n} runs each)",
                ours_big["mlflow_filter"][0] * ms,
                big_filter[0],
                None,
                f"{LABKEEP_SAME_AS_MLFLOW!r}; {_spread(ours_big['mlflow_filter'])}"
                + _agreement(ours_big["mlflow_filter_names"], peer_big),
                big_filter[1],
                True,
                big_filter[2],
            )
        )
    if peer_big is not None and peer_big.get("filtered_analyzed"):
        stats_filter = _peer(
            {**peer_big, "filtered": peer_big["filtered_analyzed"]},
            "filtered",
            f"{search} on a copy of the store after SQLite's ANALYZE, which MLflow never runs",
        )
        rows.append(
            _row(
                "filtered_same_data_big_analyzed",
                f"the same, MLflow's store given table statistics (ANALYZE) ({n} runs each)",
                ours_big["mlflow_filter"][0] * ms,
                stats_filter[0],
                None,
                f"{LABKEEP_SAME_AS_MLFLOW!r}; as above",
                stats_filter[1],
                True,
                stats_filter[2],
            )
        )
    if peer is not None:
        small_filter = _peer(peer, "filtered", search)
        small_frame = _peer(peer, "pandas", "mlflow.search_runs()")
        rows += [
            _row(
                "filtered_same_data",
                f"filtered search, sorted, 50 runs ({m} runs each)",
                ours_small["mlflow_filter"][0] * ms,
                small_filter[0],
                None,
                f"{LABKEEP_SAME_AS_MLFLOW!r}; {_spread(ours_small['mlflow_filter'])}",
                small_filter[1],
                True,
                small_filter[2],
            ),
            _row(
                "pandas_same_data",
                f"every run as a DataFrame ({m} runs each)",
                ours_small["pandas"][0] * ms,
                small_frame[0],
                None,
                f"to_pandas(); {_spread(ours_small['pandas'])}; shape {ours_small['pandas_shape']}",
                small_frame[1],
                True,
                small_frame[2],
            ),
        ]
    load = os.getloadavg()[0]
    version = next((p["version"] for p in (peer, peer_big) if p and "version" in p), None)
    notes = _notes(args.runs, args.mlflow_runs, peer, peer_big, check, args.mlflow_timeout)
    report = {
        "benchmark": "query",
        "date": datetime.datetime.now(datetime.UTC).isoformat(),
        "title": "Querying runs: labkeep vs MLflow" + (f" {version}" if version else ""),
        "labkeep_version": _version(),
        "peer": {"name": "MLflow", "version": version, "store": "SQLite"},
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "os": platform.platform(),
            "python": platform.python_version(),
            "load_avg_1m": round(load_start, 2),
            "load_avg_1m_end": round(load, 2),
        },
        "sizes": {
            "runs": args.runs,
            "mlflow_runs": args.mlflow_runs,
            "params": N_PARAMS,
            "metrics": N_METRICS,
            "steps": STEPS,
            "repeat": args.repeat,
            "mlflow_big_repeat": args.mlflow_big_repeat,
            "where": WHERE,
            "sort": SORT,
        },
        "mlflow_fixtures": {
            "small": None if peer is None else {k: v for k, v in peer.items() if k != "filtered"},
            "big": None
            if peer_big is None
            else {k: v for k, v in peer_big.items() if k != "filtered"},
            "loader_check": check,
        },
        "notes": notes,
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(
        f"\n{report['title']}  (load average {load_start:.1f} at the start, {load:.1f} at the "
        f"end, on {os.cpu_count()} cores)"
    )
    print(f"{'figure':<72} {'labkeep':>10} {'MLflow':>10} {'ratio':>7} {'target':>10}")
    for row in rows:
        ours = "-" if row["labkeep"] is None else f"{row['labkeep']:,.0f} ms"
        theirs = "-" if row["peer"] is None else f"{row['peer']:,.0f} ms"
        if row["peer_error"]:
            theirs = "timeout" if "timed out" in row["peer_error"] else "error"
        ratio = "" if row["ratio"] is None else f"{row['ratio']:,.1f}x"
        target = "" if row["target_value"] is None else f"≤ {row['target_value']:,.0f}"
        mark = {True: " ok", False: " MISSED", None: ""}[row["target_met"]]
        print(f"{row['figure']:<72} {ours:>10} {theirs:>10} {ratio:>7} {target:>10}{mark}")
    print("\n" + "\n".join(f"- {note}" for note in notes))
    print(f"\nwritten to {RESULTS}")


def _notes(
    runs: int,
    mlflow_runs: int,
    peer: dict[str, Any] | None,
    peer_big: dict[str, Any] | None,
    check: dict[str, Any] | None,
    timeout: int,
) -> list[str]:
    notes = []
    if peer_big is not None and "error" not in peer_big:
        built = peer_big.get("fixture_s")
        notes.append(
            f"MLflow at {runs:,} runs: the store `.bench/{peer_big['db']}` was "
            f"{BULK_NOTE}"
            + (f"; loaded in {built:,.0f} s" if built else "")
            + ". Writing it through log_batch would take hours (about 6 runs/s here)."
        )
        notes.append(
            "MLflow at that size searches both experiments (cifar, mnist) so that it sees every "
            f"run, as labkeep's query does; each MLflow call is stopped after {timeout} s."
        )
        stats = peer_big.get("filtered_analyzed") or {}
        if "times" in stats and "times" in peer_big["filtered"]:
            notes.append(
                "MLflow never runs SQLite's ANALYZE on its store, so SQLite plans its filtered "
                "search without table statistics: at this size that search took "
                f"{peer_big['filtered']['times'][0]:,.1f} s; on a copy of the same store after "
                f"ANALYZE it took {stats['times'][0]:,.2f} s. The first figure is what a user of "
                "an MLflow SQLite store gets."
            )
    if check is not None:
        if check.get("identical"):
            notes.append(
                f"The bulk loader was checked against MlflowClient (create_run, log_batch, "
                f"set_terminated) on {check['runs']} runs: {check['queries']} MLflow searches "
                "(search_runs with 7 filters x 4 orders, mlflow.search_runs, and the "
                "latest_metrics rows) returned identical params, metrics, tags and run "
                "attributes, run ids aside."
            )
        else:
            notes.append(f"The bulk loader check failed: {check}")
    if peer is not None and "error" not in peer:
        notes.append(
            f"MLflow at {mlflow_runs:,} runs: the store `.bench/{peer['db']}` was "
            "written through MlflowClient (create_run, log_batch with every metric step, "
            "set_terminated) in one experiment"
            + (f" ({peer['fixture_s']:,.0f} s to write)" if peer.get("fixture_s") else "")
            + "."
        )
    return notes


def _version() -> str:
    sys.path.insert(0, str(ROOT / "src"))
    from labkeep._version import __version__

    return __version__


if __name__ == "__main__":
    main()
