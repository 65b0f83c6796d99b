"""What autolog adds to a scikit-learn fit of about a second: `labkeep.autolog()` against
`mlflow.sklearn.autolog()`, each against the same fit with no tracker, in the same process.

Run: ``PYTHONPATH=src python benchmarks/bench_autolog.py [--quick] [--repeat N]``.

Each measurement is a fresh process on a store created before the clock starts (labkeep: one
empty run; MLflow: its database migrated and an experiment made), with one warm-up fit. It
times the first fit with autolog on (the ``autolog()`` call included), then plain fits
alternating with autologged ones, so that each pair shares the machine's load; the figure is
the median of the pairs' ratios. An autologged fit starts a run and logs params, training
metrics scored on the fit data (accuracy, precision, recall, F1, log loss, ROC AUC: the same
for both tools) and the model, then ends the run. labkeep saves the model in a background
thread: "until it returns" is what the script waits, "until its run is complete" includes the
save. Single-threaded (``OMP_NUM_THREADS=1``). CPU time (the script's thread; all threads
for "complete") is the figure held to the target: on a shared machine a fit's wall time
varies more from one minute to the next than what autolog adds; wall times are kept beside.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    LABKEEP_STORE,
    MLFLOW_STORE,
    Interpreter,
    default_labkeep_interpreter,
    measure_pair,
    mlflow_peer,
    scratch,
    write_mlflow_results,
)

#: The fit: gradient boosting on a made-up classification problem, about 1 s on one core.
WORKLOAD = """
import json, os, statistics, time
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier
X, y = make_classification(n_samples=SAMPLES, n_features=20, n_informative=10, random_state=0)
def fit():
    t0 = time.perf_counter()
    GradientBoostingClassifier(n_estimators=ESTIMATORS, max_depth=3, random_state=0).fit(X, y)
    return time.perf_counter() - t0
fit()  # warm-up: imports, caches
"""

# Then, per tool: SETUP (a store, before the clock), ON/OFF (autolog on and off again), WAIT
# (until what the tool does after the fit returns is done). The first fit's clock spans the
# autolog() call; later fits alternate with plain ones, so that each pair shares the load.
MEASURE = """
def clocks():
    return time.perf_counter(), time.thread_time(), time.process_time()
def since(start):
    return [b - a for a, b in zip(start, clocks())]
start = clocks()
ON()
fit()
first = since(start)
WAIT()
first_complete = since(start)
plain, auto, complete = [], [], []
for _ in range(PAIRS):
    OFF()
    start = clocks()
    fit()
    plain.append(since(start))
    ON()
    start = clocks()
    fit()
    auto.append(since(start))
    WAIT()
    complete.append(since(start))
OFF()
CHECK()
def added(measured, kind):
    return statistics.median(m[kind] / p[kind] - 1 for m, p in zip(measured, plain))
WALL, THREAD, PROCESS = 0, 1, 2
print(json.dumps({
    "plain_s": statistics.median(p[WALL] for p in plain),
    "plain_cpu_s": statistics.median(p[THREAD] for p in plain),
    "first_cpu_added": first[THREAD] / statistics.median(p[THREAD] for p in plain) - 1,
    "later_added": added(auto, THREAD),
    "complete_added": added(complete, PROCESS),
    "later_wall_added": added(auto, WALL),
    "complete_wall_added": added(complete, WALL),
}))
"""

LABKEEP = (
    LABKEEP_STORE
    + """
from labkeep.integrations._autolog import BACKGROUND
os.environ["LABKEEP_HOME"] = STORE
ON = labkeep.autolog
def OFF():
    labkeep.autolog(disable=True)
WAIT = BACKGROUND.join
def CHECK():
    runs = [r for r in labkeep.runs() if r.models]
    assert len(runs) == PAIRS + 1 and all(r.status == "completed" for r in runs), runs
    assert "training_roc_auc" in runs[0].metrics
"""
)

MLFLOW_CODE = (
    MLFLOW_STORE
    + """
import mlflow.sklearn
mlflow.set_experiment(experiment_id=experiment)
def ON():
    mlflow.sklearn.autolog(silent=True)
def OFF():
    mlflow.sklearn.autolog(disable=True, silent=True)
def WAIT():
    pass
def CHECK():
    runs = mlflow.search_runs(experiment_ids=[experiment])
    assert len(runs) == PAIRS + 1, runs
    assert "metrics.training_roc_auc" in runs.columns
"""
)

TARGET_ADDED = 0.05


def _median_added(result: Any, key: str) -> float:
    """The median over processes of the fraction a fit took longer with autolog than without."""
    return statistics.median(r[key] for r in result.runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one measured process each")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-peer", action="store_true", help="labkeep only")
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    params = {"SAMPLES": 1500, "ESTIMATORS": 100, "PAIRS": 2 if args.quick else 4}
    env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    base = default_labkeep_interpreter()
    labkeep = Interpreter(label="labkeep", python=base.python, env={**base.env, **env})
    peer, peer_note = mlflow_peer(args.no_peer, env)
    with scratch() as dirs:
        ours, theirs = measure_pair(
            labkeep,
            WORKLOAD + LABKEEP + MEASURE,
            peer,
            WORKLOAD + MLFLOW_CODE + MEASURE,
            repeat=repeat,
            labkeep_store=dirs.new,
            peer_store=dirs.new,
            params=params,
            warmup=False,
        )
    rows: list[dict[str, Any]] = []
    plain = ours.figures["plain_cpu_s"]
    for key, label in (("plain_cpu_s", "CPU"), ("plain_s", "wall time")):
        rows.append(
            {
                "id": key,
                "figure": f"the fit alone (no tracker), {label}",
                "unit": "s",
                "labkeep": round(ours.figures[key], 3),
                "peer": None if theirs is None else round(theirs.figures[key], 3),
                "ratio": None,
                "target": "about 1 s" if key == "plain_cpu_s" else "",
                "target_met": None,
            }
        )
    for key, label, target in (
        ("later_added", "CPU added to a fit, until it returns (the script's thread)", True),
        ("complete_added", "CPU added to a fit, until its run is complete (all threads)", False),
        ("first_cpu_added", "CPU added to the first fit (autolog() call included)", False),
        ("later_wall_added", "wall time added to a fit, until it returns", False),
        ("complete_wall_added", "wall time added to a fit, until its run is complete", False),
    ):
        mine = _median_added(ours, key)
        other = _median_added(theirs, key) if theirs is not None else None
        rows.append(
            {
                "id": key + "_pct",
                "figure": label,
                "unit": "%",
                "labkeep": round(mine * 100, 1),
                "peer": None if other is None else round(other * 100, 1),
                "ratio": None if other is None or mine <= 0 else round(other / mine, 2),
                "target": f"≤ {TARGET_ADDED:.0%}" if target else "",
                "target_met": mine <= TARGET_ADDED if target else None,
            }
        )
        line = f"{key:<19} plain {plain:6.3f} s CPU   labkeep +{mine * 100:5.1f}%"
        if other is not None:
            line += f"   mlflow +{other * 100:5.1f}%"
        print(line, flush=True)
    write_mlflow_results(
        "autolog",
        title="Autolog (labkeep.autolog against mlflow.sklearn.autolog) on a 1 s fit",
        quick=args.quick,
        peer=peer,
        peer_note=peer_note,
        rows=rows,
        runs={
            "labkeep": list(ours.runs),
            "mlflow": list(theirs.runs) if theirs else None,
        },
        notes=[
            f"GradientBoostingClassifier(n_estimators=100) on {params['SAMPLES']:,} x 20, "
            f"one thread; per process {params['PAIRS']} plain fits alternating with autologged "
            f"ones, the median of each pair's ratio; medians of {repeat} fresh processes",
            "labkeep saves the model in a background thread: 'until it returns' is what the "
            "script waits, 'until its run is complete' includes the save",
            "ratio: MLflow's added time over labkeep's",
            "both log params, six training metrics and the model (skops for labkeep)",
        ],
    )


if __name__ == "__main__":
    main()
