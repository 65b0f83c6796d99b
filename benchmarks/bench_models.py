"""Storing and loading a scikit-learn model: `run.log_model` + `labkeep.load_model` against
`mlflow.sklearn.log_model` + `mlflow.sklearn.load_model`, time and bytes.

Run: ``PYTHONPATH=src python benchmarks/bench_models.py [--quick] [--repeat N]``.

Each measurement is a fresh process on a fresh store that was created before the clock
starts (labkeep: one empty run; MLflow: its database migrated and an experiment made), so
the figures are the model's cost, not the store's creation. "log" spans starting the run,
logging the model with a 5-row input example and ending the run; "load" spans loading it
back by URI. Bytes are everything the store directory holds afterwards, minus what it held
before the model was logged. MLflow runs with its defaults (it infers pip requirements and
writes a conda/virtualenv spec, which is part of what it costs a user).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    LABKEEP_STORE,
    MLFLOW_STORE,
    STORE_BYTES,
    compared_row,
    default_labkeep_interpreter,
    measure_pair,
    mlflow_peer,
    scratch,
    write_mlflow_results,
)

MODELS = {
    "iris-logreg": (
        "from sklearn.datasets import load_iris\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "X, y = load_iris(return_X_y=True)\n"
        "clf = LogisticRegression(max_iter=500).fit(X, y)\n"
        "TRUSTED = None\n"
    ),
    "digits-forest": (
        "from sklearn.datasets import load_digits\n"
        "from sklearn.ensemble import RandomForestClassifier\n"
        "X, y = load_digits(return_X_y=True)\n"
        "clf = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y)\n"
        # skops trusts no tree by default: both tools are told to, for these models.
        "TRUSTED = ['sklearn.tree._tree.Tree']\n"
    ),
}

LABKEEP = (
    STORE_BYTES
    + LABKEEP_STORE
    + """
before, files_before = size(STORE), size(f"{STORE}/blobs")
t0 = time.perf_counter()
with labkeep.init(store=STORE, capture=False, system_metrics=0) as run:
    run.log_model(clf, "model", input_example=X[:5])
t1 = time.perf_counter()
model = labkeep.load_model(f"runs:/{run.number}/model", store=STORE, trusted=TRUSTED or False)
t2 = time.perf_counter()
assert (model.predict(X) == clf.predict(X)).all()
print(json.dumps({"log_ms": (t1 - t0) * 1e3, "load_ms": (t2 - t1) * 1e3,
                  "bytes": size(STORE) - before, "file_bytes": size(f"{STORE}/blobs") - files_before}))
"""
)

MLFLOW_CODE = (
    STORE_BYTES
    + MLFLOW_STORE
    + """
import mlflow.sklearn
before, files_before = size(STORE), size(f"{STORE}/artifacts")
t0 = time.perf_counter()
with mlflow.start_run(experiment_id=experiment):
    info = mlflow.sklearn.log_model(clf, name="model", input_example=X[:5],
                                    skops_trusted_types=TRUSTED)
t1 = time.perf_counter()
model = mlflow.sklearn.load_model(info.model_uri)
t2 = time.perf_counter()
assert (model.predict(X) == clf.predict(X)).all()
print(json.dumps({"log_ms": (t1 - t0) * 1e3, "load_ms": (t2 - t1) * 1e3,
                  "bytes": size(STORE) - before,
                  "file_bytes": size(f"{STORE}/artifacts") - files_before}))
"""
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one measured run each")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-peer", action="store_true", help="labkeep only")
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    labkeep = default_labkeep_interpreter()
    peer, peer_note = mlflow_peer(args.no_peer)
    rows: list[dict[str, Any]] = []
    raw: dict[str, Any] = {}
    with scratch() as dirs:
        for model, build in MODELS.items():
            ours, theirs = measure_pair(
                labkeep,
                build + LABKEEP,
                peer,
                build + MLFLOW_CODE,
                repeat=repeat,
                labkeep_store=dirs.new,
                peer_store=dirs.new,
            )
            raw[model] = {
                "labkeep": list(ours.runs),
                "mlflow": list(theirs.runs) if theirs else None,
            }
            for key, label, unit in (
                ("log_ms", "log_model (start run, log, end run)", "ms"),
                ("load_ms", "load_model by URI", "ms"),
                ("bytes", "bytes added to the store (database and files)", "B"),
                ("file_bytes", "bytes of the model's files", "B"),
            ):
                value = ours.figures[key]
                other = theirs.figures.get(key) if theirs else None
                rows.append(compared_row(f"{model}_{key}", f"{model}: {label}", unit, value, other))
                line = f"{model:<14} {key:<8} labkeep {value:>12,.1f}"
                if other is not None:
                    line += f"   mlflow {other:>12,.1f}"
                print(line, flush=True)
    write_mlflow_results(
        "models",
        title="Models (run.log_model/labkeep.load_model against mlflow.sklearn)",
        quick=args.quick,
        peer=peer,
        peer_note=peer_note,
        rows=rows,
        runs=raw,
        notes=[
            f"medians of {repeat} fresh processes per figure; a store made before the clock",
            "both store scikit-learn models with skops (MLflow 3.17's default format too)",
            "MLflow's log_model also infers pip requirements and writes environment files",
        ],
    )


if __name__ == "__main__":
    main()
