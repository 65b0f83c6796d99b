"""What ``labkeep.sweep`` adds per trial over Optuna used directly.

A fresh process runs the same trivial objective ``(x - 1) ** 2`` over ``x`` in [-2, 2] for N
trials (1,000 by default) twice: with plain Optuna (``study.optimize`` on an in-memory study)
and with ``labkeep.sweep`` into a new SQLite store, each trial a child run of the sweep run.
Both use Optuna's seeded RandomSampler, whose cost per trial is flat, so the difference is
labkeep's own work per trial (a run started, its config and summary journaled, the run
finished into the store, the controller reading its objective back). The order alternates over
``--repeat`` rounds and the medians are reported. Results go to ``.bench/results/sweep.json``.

    PYTHONPATH=src python benchmarks/bench_sweep.py [--trials 1000] [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import machine_info, write_results

TARGET_MS = 2.0

CHILD = r"""
import json, sys, time
import optuna
import labkeep

optuna.logging.set_verbosity(optuna.logging.WARNING)
which, trials, store = sys.argv[1], int(sys.argv[2]), sys.argv[3]

# Warm-up: imports and first-call costs belong to neither side.
optuna.create_study().optimize(lambda t: t.suggest_float("x", -2, 2), n_trials=2)
labkeep.sweep(lambda run: run.config["x"], space={"x": labkeep.uniform(-2, 2)}, n_trials=2,
              optimizer="random", store=store + "-warm")

start = time.perf_counter()
if which == "optuna":
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: (t.suggest_float("x", -2, 2) - 1) ** 2, n_trials=trials)
    done = len(study.trials)
else:
    result = labkeep.sweep(lambda run: (run.config["x"] - 1) ** 2,
                           space={"x": labkeep.uniform(-2, 2)}, n_trials=trials,
                           optimizer="random", options={"seed": 0}, store=store)
    done = result.result.completed
elapsed = time.perf_counter() - start
assert done == trials, (which, done)
print(json.dumps({"per_trial_ms": elapsed * 1000 / trials}))
"""


def _child(which: str, trials: int, store: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKEEP_")}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, which, str(trials), str(store)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(done.stdout.strip().splitlines()[-1])["per_trial_ms"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="100 trials, one round")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.repeat = 100, 1

    machine = machine_info()
    optuna_ms: list[float] = []
    labkeep_ms: list[float] = []
    with tempfile.TemporaryDirectory(prefix="labkeep-bench-sweep-") as tmp:
        for round_ in range(args.repeat):
            order = ("optuna", "labkeep") if round_ % 2 == 0 else ("labkeep", "optuna")
            for which in order:
                per_trial = _child(which, args.trials, Path(tmp) / f"store-{round_}")
                (optuna_ms if which == "optuna" else labkeep_ms).append(per_trial)
    plain = statistics.median(optuna_ms)
    with_labkeep = statistics.median(labkeep_ms)
    added = with_labkeep - plain
    rows = [
        {
            "id": "api_added_per_trial",
            "figure": f"Python API: added per trial ({args.trials:,} trials, trivial objective)",
            "unit": "ms",
            "labkeep": round(added, 3),
            "peer": None,
            "peer_text": "(baseline)",
            "ratio": None,
            "target": f"≤ {TARGET_MS:g} ms",
            "target_met": added <= TARGET_MS,
            "labkeep_detail": (
                f"{with_labkeep:.2f} ms per trial through labkeep.sweep against "
                f"{plain:.3f} ms with Optuna alone (medians of {args.repeat})"
            ),
        },
        {
            "id": "api_per_trial",
            "figure": "Python API: time per trial",
            "unit": "ms",
            "labkeep": round(with_labkeep, 3),
            "peer": round(plain, 3),
            "ratio": round(plain / with_labkeep, 3) if with_labkeep else None,
            "target": "",
            "target_met": None,
        },
    ]
    import optuna

    payload = {
        "title": "Sweeps (labkeep.sweep against Optuna alone)",
        "quick": args.quick,
        "peer": {"name": "Optuna", "version": optuna.__version__, "store": "in-memory"},
        "machine": machine,
        "trials": args.trials,
        "optuna_per_trial_ms": optuna_ms,
        "labkeep_per_trial_ms": labkeep_ms,
        "rows": rows,
    }
    path = write_results("sweep", payload)
    print(json.dumps({"added_per_trial_ms": round(added, 3), **payload}, indent=2))
    print(f"results: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
