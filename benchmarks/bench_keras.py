"""What tracking adds to a Keras epoch: ``labkeep.keras.Callback()`` against
``mlflow.keras.autolog()`` (issue 15: at most 5% of an epoch of about 1 s).

Run: ``PYTHONPATH=src python benchmarks/bench_keras.py [--quick] [--repeat N]``.

Each tool runs in a fresh process of its own venv (labkeep: this one; MLflow: the
``mlflow-keras`` peer venv under ``.bench/``, MLflow with the same Keras and JAX releases),
on Keras 3 with the JAX backend on the CPU. The workload is the same in both: an MLP (64 →
256 → 256 → 2) on 32,768 synthetic rows, batches of 64, 20% held out for validation, about
1 s an epoch here. After one untimed epoch (JAX compiles), rounds alternate a fit without
tracking and a fit with it, each of 4 epochs; the order flips every round.

Figures: the epoch time, from one epoch's start to the next (so whatever a callback does at
an epoch's end counts, whichever callback runs first), as the median over rounds; the
process's CPU time over the same span (every thread: a busy machine disturbs it less); and the
whole fit, start to end, which adds starting and finishing the run and storing the model
(labkeep: the best epoch's model; MLflow: the final model, its autolog default). Both
tools run with their defaults: labkeep logs batch metrics every batch, MLflow autolog does
not log batches.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    Interpreter,
    SnippetError,
    default_labkeep_interpreter,
    machine_info,
    package_version,
    run_once,
    scratch,
    write_results,
)
from _peers import MLFLOW_KERAS, PeerSetupError, ensure_peer

TARGET_PCT = 5.0

WORKLOAD = """
import json, os, statistics, time, warnings
os.environ.setdefault("KERAS_BACKEND", "jax")
warnings.simplefilter("ignore")
import numpy as np
import keras

rng = np.random.default_rng(0)
x = rng.normal(size=(ROWS, 64)).astype("float32")
y = (x[:, :8].sum(axis=1) > 0).astype("int32")
keras.utils.set_random_seed(0)
model = keras.Sequential([
    keras.Input((64,)),
    keras.layers.Dense(256, activation="relu"),
    keras.layers.Dense(256, activation="relu"),
    keras.layers.Dense(2, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])


class EpochStarts(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.starts = []

    def on_epoch_begin(self, epoch, logs=None):
        self.starts.append((time.perf_counter(), time.process_time()))


def fit(tracked):
    before_fit(tracked)
    starts = EpochStarts()
    callbacks = tracked_callbacks() if tracked else []
    begin = time.perf_counter()
    model.fit(x, y, epochs=EPOCHS, batch_size=64, validation_split=0.2, verbose=0,
              callbacks=[starts, *callbacks])
    took = time.perf_counter() - begin
    pairs = list(zip(starts.starts, starts.starts[1:]))
    return took, [b[0] - a[0] for a, b in pairs], [b[1] - a[1] for a, b in pairs]


model.fit(x, y, epochs=1, batch_size=64, validation_split=0.2, verbose=0)  # JAX compiles
fits = {False: [], True: []}
epochs = {False: [], True: []}
cpu = {False: [], True: []}
for round in range(ROUNDS):
    for tracked in ((False, True) if round % 2 == 0 else (True, False)):
        took, durations, cpu_times = fit(tracked)
        fits[tracked].append(took)
        epochs[tracked].extend(durations)
        cpu[tracked].extend(cpu_times)
finish()
print(json.dumps({
    "epoch_plain_s": statistics.median(epochs[False]),
    "epoch_tracked_s": statistics.median(epochs[True]),
    "epoch_cpu_plain_s": statistics.median(cpu[False]),
    "epoch_cpu_tracked_s": statistics.median(cpu[True]),
    "fit_plain_s": statistics.median(fits[False]),
    "fit_tracked_s": statistics.median(fits[True]),
}))
"""

LABKEEP = """
import os
os.environ["LABKEEP_HOME"] = STORE
import labkeep

def before_fit(tracked):
    pass

def tracked_callbacks():
    return [labkeep.keras.Callback()]

def finish():
    runs = labkeep.runs(store=STORE)
    assert len(runs) == ROUNDS and all(len(r.models) == 1 for r in runs), "runs not stored"
"""

MLFLOW = """
import logging
logging.getLogger("mlflow").setLevel(logging.ERROR)
import mlflow, mlflow.keras
mlflow.set_tracking_uri(f"sqlite:///{STORE}/mlflow.db")
mlflow.set_experiment("bench")

def before_fit(tracked):
    if tracked:
        mlflow.keras.autolog(silent=True)
    else:
        mlflow.keras.autolog(disable=True)

def tracked_callbacks():
    return []  # autolog adds its own

def finish():
    mlflow.keras.autolog(disable=True)
    runs = mlflow.search_runs(output_format="list")
    assert len(runs) == ROUNDS, f"{len(runs)} MLflow runs"
"""


def _ratio(peer: float | None, ours: float | None) -> float | None:
    if peer is None or ours is None or ours <= 0 or peer <= 0:
        return None
    return round(peer / ours, 3)


def _measure(
    interp: Interpreter, code: str, params: dict[str, Any], repeat: int, dirs: Any
) -> dict[str, Any]:
    """``repeat`` fresh processes; each figure is the median over them."""
    runs = []
    for _ in range(repeat):
        _, figures = run_once(interp, code, store=dirs.new(), params=params, timeout=1800)
        runs.append(figures)
    figures = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    plain, tracked = figures["epoch_plain_s"], figures["epoch_tracked_s"]
    figures["epoch_added_pct"] = (tracked - plain) / plain * 100
    cpu_plain, cpu_tracked = figures["epoch_cpu_plain_s"], figures["epoch_cpu_tracked_s"]
    figures["epoch_cpu_added_pct"] = (cpu_tracked - cpu_plain) / cpu_plain * 100
    figures["fit_added_ms"] = (figures["fit_tracked_s"] - figures["fit_plain_s"]) * 1e3
    return {"figures": figures, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data, one round")
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per tool")
    parser.add_argument("--no-peer", action="store_true", help="labkeep only")
    args = parser.parse_args()
    params = {"ROWS": 4096 if args.quick else 32768, "EPOCHS": 3 if args.quick else 4}
    params["ROUNDS"] = 1 if args.quick else 3
    repeat = 1 if args.quick else args.repeat
    labkeep = default_labkeep_interpreter()
    env = {"LABKEEP_CAPTURE": "0", "LABKEEP_SYSTEM_METRICS": "0", "KERAS_BACKEND": "jax"}
    labkeep = Interpreter(label="labkeep", python=labkeep.python, env={**labkeep.env, **env})
    peer: Interpreter | None = None
    peer_note = ""
    if not args.no_peer:
        try:
            python = ensure_peer(MLFLOW_KERAS, quiet=True)
            peer = Interpreter(label="mlflow", python=python, env={"KERAS_BACKEND": "jax"})
        except PeerSetupError as exc:
            peer_note = f"MLflow not measured: {exc}"
    raw: dict[str, Any] = {}
    with scratch() as dirs:
        ours = _measure(labkeep, LABKEEP + WORKLOAD, params, repeat, dirs)
        raw["labkeep"] = ours["runs"]
        theirs = None
        if peer is not None:
            try:
                theirs = _measure(peer, MLFLOW + WORKLOAD, params, repeat, dirs)
                raw["mlflow"] = theirs["runs"]
            except SnippetError as exc:
                peer_note = f"MLflow failed: {exc}"
    lk = ours["figures"]
    ml = theirs["figures"] if theirs else {}
    rows = []
    for key, label, unit, scale in (
        ("epoch_plain_s", "epoch without tracking", "ms", 1e3),
        ("epoch_tracked_s", "epoch with the callback (labkeep) / autolog (MLflow)", "ms", 1e3),
        ("epoch_added_pct", "added to an epoch", "%", 1.0),
        ("epoch_cpu_added_pct", "CPU time added to an epoch (every thread)", "%", 1.0),
        ("fit_added_ms", f"added to a fit of {params['EPOCHS']} epochs, start to end", "ms", 1.0),
    ):
        value = lk[key] * scale
        other = ml[key] * scale if key in ml else None
        row: dict[str, Any] = {
            "id": key,
            "figure": label,
            "unit": unit,
            "labkeep": round(value, 2),
            "peer": None if other is None else round(other, 2),
            "ratio": _ratio(other, value) if key not in ("epoch_plain_s",) else None,
            "target": "",
            "target_met": None,
        }
        if key in ("epoch_added_pct", "epoch_cpu_added_pct"):
            row["target"] = f"≤ {TARGET_PCT:g}%"
            row["target_met"] = value <= TARGET_PCT
        rows.append(row)
        line = f"{label:<60} labkeep {value:>10,.2f} {unit}"
        if other is not None:
            line += f"   mlflow {other:>10,.2f} {unit}"
        print(line, flush=True)
    payload = {
        "title": "Keras (labkeep.keras.Callback against mlflow.keras.autolog)",
        "quick": args.quick,
        "peer": {
            "name": "MLflow",
            "version": package_version(peer, MLFLOW_KERAS.distribution, MLFLOW_KERAS.module)
            if peer
            else None,
            "store": "SQLite + local artifacts",
        },
        "peer_note": peer_note,
        "machine": machine_info(),
        "rows": rows,
        "runs": raw,
        "notes": [
            f"medians of {repeat} fresh processes per tool, each {params['ROUNDS']} rounds of a "
            f"fit without tracking and one with it ({params['EPOCHS']} epochs each), alternating",
            f"Keras {package_version(labkeep, 'keras', 'keras')} on JAX "
            f"{package_version(labkeep, 'jax', 'jax')}, CPU; {params['ROWS']:,} rows, "
            "batches of 64, 20% for validation",
            "an epoch is timed from its start to the next epoch's start: every callback's "
            "end-of-epoch work counts; its CPU time is the process's, over every thread (JAX's "
            "and the callbacks'), which other load on the machine disturbs less than wall time",
            "labkeep logs every batch's metrics (its default); MLflow's autolog logs epochs only",
            "the fit figure adds starting and ending the run and storing the model (labkeep: "
            "the best epoch's, MLflow: the final one with its environment files)",
        ],
    }
    path = write_results("keras", payload)
    print(f"results: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
