"""Tracking performance: labkeep vs MLflow, side by side, each figure in fresh processes.

    python benchmarks/bench_tracking.py            # full run (about 6-8 minutes on 2 cores)
    python benchmarks/bench_tracking.py --quick    # smoke run with small sizes (about 1 minute)
    python benchmarks/bench_tracking.py --only mlflow --figure short_run_new

labkeep runs under this interpreter (or --python) from this checkout's `src/`; MLflow runs in
`.bench/mlflow-venv` (created on first use). Results go to `.bench/results/tracking.json`;
`python benchmarks/run_all.py` turns them into `benchmarks/RESULTS.md`.
"""

from __future__ import annotations

import argparse
import functools
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    Interpreter,
    Measurement,
    Scratch,
    SnippetError,
    default_labkeep_interpreter,
    dir_bytes,
    format_ratio,
    format_value,
    machine_info,
    measure,
    package_version,
    run_once,
    scratch,
    write_results,
)
from _peers import MLFLOW, PeerSetupError, ensure_peer

LABKEEP = "labkeep"
PEER = "mlflow"


@dataclass(frozen=True)
class Sizes:
    """How much each figure does; the MLflow loops are capped and reported as rates."""

    repeat: int  # fresh-process repetitions for the cheap figures (after one warm-up)
    heavy_repeat: int  # repetitions for the figures that log a lot
    log_calls: int
    mlflow_log_calls: int
    batch_steps: int
    batch_keys: int
    mlflow_batches: int  # log_batch calls of 1,000 metrics each
    history_points: int
    mlflow_history_points: int
    bytes_points: int
    mlflow_bytes_points: int


FULL = Sizes(
    repeat=5,
    heavy_repeat=3,
    log_calls=1_000_000,
    mlflow_log_calls=500,
    batch_steps=50_000,
    batch_keys=100,
    mlflow_batches=20,
    history_points=1_000_000,
    mlflow_history_points=100_000,
    bytes_points=1_000_000,
    mlflow_bytes_points=1_000_000,
)
QUICK = Sizes(
    repeat=2,
    heavy_repeat=1,
    log_calls=100_000,
    mlflow_log_calls=100,
    batch_steps=5_000,
    batch_keys=100,
    mlflow_batches=5,
    history_points=100_000,
    mlflow_history_points=10_000,
    bytes_points=100_000,
    mlflow_bytes_points=100_000,
)

# ---------------------------------------------------------------------------------------------
# Snippets. Each runs as `python -c` in a fresh process with STORE (a directory) and the named
# parameters defined ahead of it; figures measured inside the process go out as JSON on the
# last stdout line.

LK_IMPORT = "import labkeep\n"
ML_IMPORT = "import mlflow\n"

LK_SHORT_RUN = """
import labkeep
run = labkeep.init(store=STORE)
run.log({"x": 1})
run.finish()
"""
ML_SHORT_RUN = """
import mlflow
mlflow.set_tracking_uri("sqlite:///" + STORE + "/mlflow.db")
with mlflow.start_run():
    mlflow.log_metric("x", 1)
"""

LK_OPEN = """
import json, time
t0 = time.perf_counter()
import labkeep
t1 = time.perf_counter()
found = len(list(labkeep.runs(store=STORE)))
t2 = time.perf_counter()
assert found >= 1, found
print(json.dumps({"import_s": t1 - t0, "call_s": t2 - t1}))
"""
ML_OPEN = """
import json, time
t0 = time.perf_counter()
from mlflow import MlflowClient
t1 = time.perf_counter()
found = len(MlflowClient("sqlite:///" + STORE + "/mlflow.db").search_experiments())
t2 = time.perf_counter()
assert found >= 1, found
print(json.dumps({"import_s": t1 - t0, "call_s": t2 - t1}))
"""

LK_LOG_CALLS = """
import json, time
import labkeep
run = labkeep.init(store=STORE)
t0 = time.perf_counter()
for i in range(N):
    run.log({"loss": i * 1e-6}, step=i)
t1 = time.perf_counter()
run.finish()
t2 = time.perf_counter()
print(json.dumps({"calls_per_s": N / (t1 - t0), "finish_s": t2 - t1}))
"""
ML_LOG_CALLS = """
import json, time
import mlflow
mlflow.set_tracking_uri("sqlite:///" + STORE + "/mlflow.db")
with mlflow.start_run():
    t0 = time.perf_counter()
    for i in range(N):
        mlflow.log_metric("loss", i * 1e-6, step=i)
    t1 = time.perf_counter()
print(json.dumps({"calls_per_s": N / (t1 - t0)}))
"""

# A pool of distinct rows, built before timing, so the loop measures labkeep, not dict building.
LK_BATCH = """
import json, time
import labkeep
keys = [f"m{j:03d}" for j in range(KEYS)]
pool = [{k: (s * KEYS + j) * 1e-6 for j, k in enumerate(keys)} for s in range(1000)]
run = labkeep.init(store=STORE)
t0 = time.perf_counter()
for i in range(STEPS):
    run.log(pool[i % 1000], step=i)
t1 = time.perf_counter()
run.finish()
t2 = time.perf_counter()
points = STEPS * KEYS
print(json.dumps({
    "points_per_s": points / (t2 - t0),
    "log_points_per_s": points / (t1 - t0),
    "finish_s": t2 - t1,
    "ref": run.number,
}))
"""
# Each batch holds 10 steps of the same 100 keys: the same shape as labkeep's rows.
ML_BATCH = """
import json, time
import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric
mlflow.set_tracking_uri("sqlite:///" + STORE + "/mlflow.db")
keys = [f"m{j:03d}" for j in range(100)]
ts = int(time.time() * 1000)
batches = [
    [Metric(k, (b * 1000 + s * 100 + j) * 1e-6, ts, b * 10 + s)
     for s in range(10) for j, k in enumerate(keys)]
    for b in range(BATCHES)
]
client = MlflowClient()
with mlflow.start_run() as run:
    t0 = time.perf_counter()
    for batch in batches:
        client.log_batch(run.info.run_id, metrics=batch)
    t1 = time.perf_counter()
print(json.dumps({"points_per_s": BATCHES * 1000 / (t1 - t0)}))
"""

# Every point logged in the batch figure must be queryable once finish() has returned.
LK_BATCH_CHECK = """
import json
import labkeep
view = labkeep.get_run(REF, store=STORE)
print(json.dumps({"points": sum(len(view.series(f"m{j:03d}").values) for j in range(KEYS))}))
"""

LK_SERIES_SETUP = """
import json
import labkeep
run = labkeep.init(store=STORE)
for i in range(N):
    run.log({"loss": i * 1e-6}, step=i)
run.finish()
print(json.dumps({"ref": run.number}))
"""
ML_SERIES_SETUP = """
import json, time
import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric
mlflow.set_tracking_uri("sqlite:///" + STORE + "/mlflow.db")
client = MlflowClient()
t_start = time.perf_counter()
with mlflow.start_run() as run:
    for lo in range(0, N, 1000):
        ts = int(time.time() * 1000)
        chunk = [Metric("loss", i * 1e-6, ts, i) for i in range(lo, min(lo + 1000, N))]
        client.log_batch(run.info.run_id, metrics=chunk)
elapsed = time.perf_counter() - t_start
print(json.dumps({"run_id": run.info.run_id, "points_per_s": N / elapsed}))
"""

# numpy is imported before timing on both sides: a caller reading into numpy already has it.
LK_READ = """
import json, time
import numpy
import labkeep
t_open = time.perf_counter()
view = labkeep.get_run(REF, store=STORE)
t0 = time.perf_counter()
series = view.series("loss")
steps, values, times = series.steps, series.values, series.times
t1 = time.perf_counter()
assert isinstance(values, numpy.ndarray) and len(values) == len(steps) == len(times) == N
# read_s: the history read itself; open_read_s: with opening the store and the run first.
print(json.dumps({"read_s": t1 - t0, "open_read_s": t1 - t_open}))
"""
ML_READ = """
import json, time
import numpy as np
from mlflow import MlflowClient
t_open = time.perf_counter()
client = MlflowClient("sqlite:///" + STORE + "/mlflow.db")
client.get_run(RUN_ID)
t0 = time.perf_counter()
history = client.get_metric_history(RUN_ID, "loss")
n = len(history)
steps = np.fromiter((m.step for m in history), dtype=np.int64, count=n)
values = np.fromiter((m.value for m in history), dtype=np.float64, count=n)
times = np.fromiter((m.timestamp for m in history), dtype=np.int64, count=n)
t1 = time.perf_counter()
assert n == N, n
print(json.dumps({"read_s": t1 - t0, "open_read_s": t1 - t_open}))
"""

# ---------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One figure: labkeep's value, the peer's, and how many times better labkeep is."""

    id: str
    figure: str
    unit: str
    better: str  # "lower" or "higher"
    labkeep: float | None = None
    peer: float | None = None
    target: str | None = None
    target_value: float | None = None
    labkeep_detail: str = ""
    peer_detail: str = ""
    labkeep_error: str | None = None
    peer_error: str | None = None
    comparable: bool = True

    @property
    def ratio(self) -> float | None:
        """labkeep's advantage: > 1 means labkeep is better, whatever the direction."""
        if not self.comparable or not self.labkeep or not self.peer:
            return None
        return self.peer / self.labkeep if self.better == "lower" else self.labkeep / self.peer

    @property
    def target_met(self) -> bool | None:
        if self.target_value is None or self.labkeep is None:
            return None
        if self.better == "lower":
            return self.labkeep <= self.target_value
        return self.labkeep >= self.target_value

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "target_met": self.target_met}


class Bench:
    """Holds the two interpreters, the sizes and the scratch area; one method per figure."""

    def __init__(
        self,
        lk: Interpreter | None,
        ml: Interpreter | None,
        sizes: Sizes,
        work: Scratch,
    ) -> None:
        self.lk = lk
        self.ml = ml
        self.sizes = sizes
        self.work = work

    def fresh(self, prefix: str) -> Callable[[], Path]:
        return lambda: self.work.new(prefix)

    def fixed(self, path: Path) -> Callable[[], Path]:
        return lambda: path

    def side(
        self, row: Row, name: str, measure_side: Callable[[Interpreter], tuple[float, str]]
    ) -> None:
        interp = self.lk if name == LABKEEP else self.ml
        if interp is None:
            return
        print(f"  {row.id} / {name}: ", end="", flush=True)
        start = time.perf_counter()
        try:
            value, detail = measure_side(interp)
        except (SnippetError, KeyError, subprocess.TimeoutExpired) as exc:
            setattr(row, f"{'labkeep' if name == LABKEEP else 'peer'}_error", str(exc))
            print(f"error: {exc}", flush=True)
            return
        took = time.perf_counter() - start
        unit = "" if row.unit in ("ms", "B/point") else f" {row.unit}"
        print(f"{format_value(value, row.unit)}{unit} (took {took:,.0f} s)", flush=True)
        if name == LABKEEP:
            row.labkeep, row.labkeep_detail = value, detail
        else:
            row.peer, row.peer_detail = value, detail

    # -- figures --------------------------------------------------------------------------

    def import_time(self) -> list[Row]:
        row = Row("import", "import (fresh process)", "ms", "lower")
        baseline: dict[str, float] = {}

        def run(code: str) -> Callable[[Interpreter], tuple[float, str]]:
            def go(interp: Interpreter) -> tuple[float, str]:
                bare = measure(interp, "pass\n", repeat=3, warmup=False)
                baseline[interp.label] = bare.wall_s
                m = measure(interp, code, repeat=self.sizes.repeat)
                return ms(m.wall_s), f"bare python {ms(bare.wall_s):.0f} ms; {spread(m)}"

            return go

        self.side(row, LABKEEP, run(LK_IMPORT))
        self.side(row, PEER, run(ML_IMPORT))
        return [row]

    def short_run(self) -> list[Row]:
        rows = []
        for fresh in (True, False):
            which = "new store" if fresh else "existing store"
            row = Row(
                f"short_run_{'new' if fresh else 'existing'}",
                f"short run, {which}",
                "ms",
                "lower",
                target="≤ 300 ms",
                target_value=300.0,
            )
            for name, code in ((LABKEEP, LK_SHORT_RUN), (PEER, ML_SHORT_RUN)):
                self.side(row, name, functools.partial(self._short_run, code=code, fresh=fresh))
            rows.append(row)
        return rows

    def _short_run(self, interp: Interpreter, *, code: str, fresh: bool) -> tuple[float, str]:
        if fresh:
            stores = self.fresh("short")
        else:
            existing = self.work.new("short-existing")
            run_once(interp, code, store=existing)
            stores = self.fixed(existing)
        m = measure(interp, code, repeat=self.sizes.repeat, store=stores)
        return ms(m.wall_s), spread(m)

    def open_store(self) -> list[Row]:
        proc = Row("open_store", "open store + list (process)", "ms", "lower")
        call = Row("open_store_call", "open store + list (call only)", "ms", "lower")

        def go(interp: Interpreter, setup: str, code: str) -> tuple[float, str]:
            store = self.work.new("open")
            run_once(interp, setup, store=store)
            m = measure(interp, code, repeat=self.sizes.repeat, store=self.fixed(store))
            call_ms = ms(m.figures["call_s"])
            # The call-only figure rides along in the same processes.
            if interp.label == LABKEEP:
                call.labkeep, call.labkeep_detail = call_ms, "after `import labkeep`"
            else:
                call.peer, call.peer_detail = call_ms, "after `from mlflow import MlflowClient`"
            return ms(m.wall_s), f"{spread(m)}; import {ms(m.figures['import_s']):,.0f} ms"

        self.side(proc, LABKEEP, lambda i: go(i, LK_SHORT_RUN, LK_OPEN))
        self.side(proc, PEER, lambda i: go(i, ML_SHORT_RUN, ML_OPEN))
        return [proc, call]

    def log_calls(self) -> list[Row]:
        row = Row(
            "log_calls",
            "single-key log calls/s",
            "calls/s",
            "higher",
            target="≥ 300,000 calls/s",
            target_value=300_000.0,
        )

        def go(interp: Interpreter, code: str, n: int, extra: str) -> tuple[float, str]:
            m = measure(
                interp,
                code,
                repeat=self.sizes.heavy_repeat,
                store=self.fresh("calls"),
                params={"N": n},
            )
            detail = f"{n:,} calls, median of {len(m.runs)}"
            if "finish_s" in m.figures:
                detail += f"; then finish() {ms(m.figures['finish_s']):,.0f} ms"
            return m.figures["calls_per_s"], detail + extra

        self.side(row, LABKEEP, lambda i: go(i, LK_LOG_CALLS, self.sizes.log_calls, ""))
        self.side(
            row,
            PEER,
            lambda i: go(i, ML_LOG_CALLS, self.sizes.mlflow_log_calls, "; `mlflow.log_metric`"),
        )
        return [row]

    def batch(self) -> list[Row]:
        row = Row(
            "batch_points",
            "batch logging, points/s",
            "points/s",
            "higher",
            target="≥ 1,000,000 points/s",
            target_value=1_000_000.0,
        )
        steps, keys = self.sizes.batch_steps, self.sizes.batch_keys

        def lk(interp: Interpreter) -> tuple[float, str]:
            made: list[Path] = []

            def store() -> Path:
                made.append(self.work.new("batch"))
                return made[-1]

            m = measure(
                interp,
                LK_BATCH,
                repeat=self.sizes.heavy_repeat,
                store=store,
                params={"STEPS": steps, "KEYS": keys},
            )
            points = steps * keys
            _, check = run_once(
                interp,
                LK_BATCH_CHECK,
                store=made[-1],
                params={"REF": m.runs[-1]["ref"], "KEYS": keys},
            )
            if check.get("points") != points:
                raise SnippetError(
                    f"after finish() only {check.get('points')} of {points:,} points were queryable"
                )
            return m.figures["points_per_s"], (
                f"{points:,} points as {steps:,} x `log(dict of {keys} keys)` + finish(); "
                f"log loop alone {m.figures['log_points_per_s']:,.0f} points/s, "
                f"finish() {ms(m.figures['finish_s']):,.0f} ms; all points verified queryable"
            )

        def ml(interp: Interpreter) -> tuple[float, str]:
            batches = self.sizes.mlflow_batches
            m = measure(
                interp,
                ML_BATCH,
                repeat=self.sizes.heavy_repeat,
                store=self.fresh("batch"),
                params={"BATCHES": batches},
            )
            return m.figures["points_per_s"], (
                f"{batches} x `log_batch` of 1,000 metrics (10 steps x 100 keys)"
            )

        self.side(row, LABKEEP, lk)
        self.side(row, PEER, ml)
        return [row]

    def history_and_bytes(self) -> list[Row]:
        read = Row(
            "history_read",
            "read one key's history",
            "ms",
            "lower",
            target="≤ 100 ms",
            target_value=100.0,
            comparable=False,
        )
        rate = Row("history_points", "read history, points/s", "points/s", "higher")
        size = Row("bytes_per_point", "bytes on disk per point", "B/point", "lower")

        def go(
            interp: Interpreter, setup: str, code: str, n_read: int, n_bytes: int, ref_key: str
        ) -> tuple[float, str]:
            is_lk = interp.label == LABKEEP
            # Bytes on disk: one process logs the series and exits; the store is then measured.
            bytes_store = self.work.new("bytes")
            _, made = run_once(interp, setup, store=bytes_store, params={"N": n_bytes})
            per_point = dir_bytes(bytes_store) / n_bytes
            how = "`log()` + finish()" if is_lk else "`log_batch` chunks of 1,000"
            size_detail = f"{n_bytes:,}-point series via {how}"
            if is_lk:
                size.labkeep, size.labkeep_detail = per_point, size_detail
            else:
                size.peer, size.peer_detail = (
                    per_point,
                    (f"{size_detail} (logged at {made['points_per_s']:,.0f} points/s)"),
                )
            # Reading: reuse the bytes store when it holds the same number of points.
            if n_read == n_bytes:
                read_store = bytes_store
            else:
                read_store = self.work.new("read")
                _, made = run_once(interp, setup, store=read_store, params={"N": n_read})
            m = measure(
                interp,
                code,
                repeat=self.sizes.repeat,
                store=self.fixed(read_store),
                params={"N": n_read, ref_key: made[ref_key.lower()]},
            )
            read_s = m.figures["read_s"]
            points_per_s = n_read / read_s
            detail = (
                f"{n_read:,} points, median of {len(m.runs)}; with opening the store and "
                f"the run {ms(m.figures['open_read_s']):,.0f} ms; process {ms(m.wall_s):,.0f} ms"
            )
            if is_lk:
                rate.labkeep, rate.labkeep_detail = points_per_s, f"{n_read:,} points"
            else:
                rate.peer, rate.peer_detail = points_per_s, f"{n_read:,} points"
            return ms(read_s), detail

        s = self.sizes
        self.side(
            read,
            LABKEEP,
            lambda i: go(i, LK_SERIES_SETUP, LK_READ, s.history_points, s.bytes_points, "REF"),
        )
        self.side(
            read,
            PEER,
            lambda i: go(
                i,
                ML_SERIES_SETUP,
                ML_READ,
                s.mlflow_history_points,
                s.mlflow_bytes_points,
                "RUN_ID",
            ),
        )
        for row in (rate, size):
            row.labkeep_error, row.peer_error = read.labkeep_error, read.peer_error
        return [read, rate, size]


FIGURES: dict[str, Callable[[Bench], list[Row]]] = {
    "import": Bench.import_time,
    "short_run": Bench.short_run,
    "open_store": Bench.open_store,
    "log_calls": Bench.log_calls,
    "batch": Bench.batch,
    "history": Bench.history_and_bytes,
}


def ms(seconds: float) -> float:
    return seconds * 1000.0


def spread(m: Measurement) -> str:
    return f"median of {len(m.walls)} (min {ms(min(m.walls)):,.0f}, max {ms(max(m.walls)):,.0f} ms)"


def print_table(rows: list[Row], peer_label: str) -> None:
    header = ["figure", "labkeep", peer_label, "labkeep advantage", "target"]
    body = [
        [
            row.figure,
            format_value(row.labkeep, row.unit) if not row.labkeep_error else "error",
            format_value(row.peer, row.unit) if not row.peer_error else "error",
            format_ratio(row.ratio),
            (row.target or "")
            + {True: " ✓", False: " ✗", None: ""}[row.target_met if row.target else None],
        ]
        for row in rows
    ]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
        for r in [header, *body]:
            print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
        return
    table = Table(title=f"Tracking: labkeep vs {peer_label}")
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i == 0 else "right")
    for r in body:
        table.add_row(*r)
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", choices=[LABKEEP, PEER], help="measure one side only")
    parser.add_argument(
        "--figure", action="append", choices=sorted(FIGURES), help="measure only these figures"
    )
    parser.add_argument("--python", type=Path, help="interpreter for labkeep (default: this one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores")
    parser.add_argument(
        "--no-save",
        action="store_true",
        help="do not write tracking.json (partial runs, with --only or --figure, never do)",
    )
    args = parser.parse_args(argv)

    sizes = QUICK if args.quick else FULL
    lk: Interpreter | None = None
    ml: Interpreter | None = None
    if args.only != PEER:
        lk = default_labkeep_interpreter()
        if args.python:
            lk = Interpreter(label=LABKEEP, python=args.python, env=lk.env)
    if args.only != LABKEEP:
        try:
            ml_python = ensure_peer(MLFLOW)
        except PeerSetupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        # Telemetry off: nothing may reach the network while measuring.
        ml = Interpreter(
            label=PEER,
            python=ml_python,
            env={"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"},
        )

    lk_version = package_version(lk, "labkeep", "labkeep") if lk else None
    ml_version = package_version(ml, "mlflow", "mlflow") if ml else None
    peer_label = f"MLflow {ml_version}" if ml_version else "MLflow"
    print(
        f"labkeep {lk_version or '—'} vs {peer_label}; sizes: {'quick' if args.quick else 'full'}"
    )

    machine = machine_info(lk.python if lk else None)
    rows: list[Row] = []
    with scratch(keep=args.keep) as work:
        if args.keep:
            print(f"stores kept under {work.root}")
        bench = Bench(lk, ml, sizes, work)
        for name, figure in FIGURES.items():
            if args.figure and name not in args.figure:
                continue
            print(f"{name}:", flush=True)
            rows.extend(figure(bench))

    print_table(rows, peer_label)
    if args.no_save or args.only or args.figure:
        print("partial or --no-save run: tracking.json left as it was")
    else:
        path = write_results(
            "tracking",
            {
                "title": f"Tracking: labkeep vs {peer_label}",
                "labkeep_version": lk_version,
                "peer": {"name": "MLflow", "version": ml_version, "store": "SQLite"},
                "quick": args.quick,
                "machine": machine,
                "sizes": asdict(sizes),
                "rows": [row.as_json() for row in rows],
            },
        )
        print(f"wrote {path}")
    errors = [r for r in rows if r.labkeep_error or r.peer_error]
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
