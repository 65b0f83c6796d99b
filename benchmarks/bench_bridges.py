"""What a bridged ``mlflow.log_metric`` costs in a training loop (issue 16: at most 5 µs).

Run: ``PYTHONPATH=src python benchmarks/bench_bridges.py [--quick]``. Three loops log one
metric per step: ``run.log`` directly, ``mlflow.log_metric`` bridged with
``labkeep.bridge(only=True)`` (what ``labkeep run --bridge-only`` installs), and MLflow's own
``log_metric`` on a SQLite tracking store, for scale. Needs MLflow installed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def per_call_us(calls: int, seconds: float) -> float:
    return seconds / calls * 1e6


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    calls = 20_000 if quick else 200_000
    mlflow_calls = 50 if quick else 300
    try:
        import mlflow
    except ImportError:
        print("mlflow is not installed: nothing to measure")
        return 0
    import labkeep

    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        run = labkeep.init(store=Path(tmp) / "store", capture=False, system_metrics=0)
        start = time.perf_counter()
        for i in range(calls):
            run.log({"direct": 0.5}, step=i)
        direct = per_call_us(calls, time.perf_counter() - start)

        labkeep.bridge(only=True)
        log_metric = mlflow.log_metric
        with mlflow.start_run():
            start = time.perf_counter()
            for i in range(calls):
                log_metric("bridged", 0.5, step=i)
            bridged = per_call_us(calls, time.perf_counter() - start)
        labkeep.finish()

        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        import mlflow as real  # the bridge patched the module: use MLflow's own function

        own = real.log_metric.__wrapped__  # type: ignore[attr-defined]
        real.tracking.fluent.start_run()
        own("warm", 0.0, step=0)
        start = time.perf_counter()
        for i in range(mlflow_calls):
            own("own", 0.5, step=i)
        mlflow_own = per_call_us(mlflow_calls, time.perf_counter() - start)
        real.tracking.fluent.end_run()
    print(f"run.log direct            {direct:10.2f} µs/call  ({calls:,} calls)")
    print(f"mlflow.log_metric bridged {bridged:10.2f} µs/call  ({calls:,} calls, --bridge-only)")
    print(f"mlflow.log_metric itself  {mlflow_own:10.2f} µs/call  ({mlflow_calls:,} calls, SQLite)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
