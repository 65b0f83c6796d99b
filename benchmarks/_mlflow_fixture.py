"""MLflow stores of the query benchmark's runs, for measuring MLflow's ``search_runs``.

Runs inside the MLflow virtualenv (``.bench/mlflow-venv``); imports only the standard library
at module level. Two ways to write the same runs:

- ``build_with_client``: ``MlflowClient.create_run`` + ``log_batch`` + ``set_terminated``, every
  step of every metric. Faithful by construction, but about 6 runs/s on SQLite: 100,000 runs
  would take hours.
- ``bulk_load``: MLflow creates its own schema, the experiments and one template run; the runs
  are then inserted with ``sqlite3.executemany`` (one transaction per chunk) into the tables
  that ``search_runs`` reads: ``runs``, ``params``, ``tags`` and ``latest_metrics``. Column
  values the benchmark does not vary are copied from the template run, which is then removed.
  The per-step ``metrics`` table is left empty: ``search_runs`` never reads it, and it would
  hold 100 M rows at 100,000 runs.

``check_loader`` builds a small store both ways and compares what MLflow's searches return.
"""

from __future__ import annotations

import json
import math
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench_query import MLFLOW_WHERE, STEPS, run_values

EXPERIMENTS = ("cifar", "mnist")  # run i goes to EXPERIMENTS[i % 2], as in labkeep's fixture
T0_MS = 1_700_000_000_000
CHUNK = 5_000


def experiment_of(i: int) -> str:
    return EXPERIMENTS[i % 2]


def run_fields(i: int) -> dict[str, Any]:
    """What labkeep's fixture records about run i, in MLflow's units (ms, upper-case status)."""
    start = T0_MS + i * 60_000
    return {
        "name": f"run-{i}",
        "start_time": start,
        "end_time": start + 50_000,
        "status": "FAILED" if i % 17 == 0 else "FINISHED",
    }


def metric_points(first: float, last: float) -> Iterator[tuple[int, float]]:
    """(step, value) of one metric: geometric from first to last, as labkeep's fixture logs."""
    ratio = (last / first) ** (1 / (STEPS - 1)) if first > 0 and last > 0 else 1.0
    for s in range(STEPS):
        yield s, last if s == STEPS - 1 else first * ratio**s


def build_with_client(db: str, n_runs: int) -> float:
    """Write runs 0..n_runs-1 through MlflowClient, every step; return seconds taken."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    started = time.perf_counter()
    client = MlflowClient("sqlite:///" + db)
    experiments = {name: client.create_experiment(name) for name in EXPERIMENTS}
    for i in range(n_runs):
        params, metrics = run_values(i)
        fields = run_fields(i)
        run = client.create_run(
            experiments[experiment_of(i)],
            start_time=fields["start_time"],
            run_name=fields["name"],
        )
        points = [
            Metric(key, value, fields["start_time"] + s * 500, s)
            for key, (first, last) in metrics.items()
            for s, value in metric_points(first, last)
        ]
        client.log_batch(
            run.info.run_id, metrics=points, params=[Param(k, str(v)) for k, v in params.items()]
        )
        client.set_terminated(run.info.run_id, fields["status"], end_time=fields["end_time"])
    return time.perf_counter() - started


def _template(client: Any, con: sqlite3.Connection, experiment_id: str) -> dict[str, Any]:
    """Create a run through the client, read back the rows MLflow wrote for it, delete it."""
    run = client.create_run(experiment_id, start_time=T0_MS, run_name="template")
    client.set_terminated(run.info.run_id, "FINISHED", end_time=T0_MS + 1)
    run_id = run.info.run_id
    cursor = con.execute("SELECT * FROM runs WHERE run_uuid = ?", (run_id,))
    row = dict(zip([d[0] for d in cursor.description], cursor.fetchone(), strict=True))
    tags = dict(con.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (run_id,)))
    location = client.get_experiment(experiment_id).artifact_location
    if row["artifact_uri"] != f"{location}/{run_id}/artifacts":
        raise RuntimeError(f"unexpected artifact_uri layout: {row['artifact_uri']}")
    if tags.get("mlflow.runName") != "template":
        raise RuntimeError(f"unexpected tags on a client-created run: {tags}")
    with con:
        for table in ("tags", "params", "latest_metrics", "metrics", "runs"):
            con.execute(f"DELETE FROM {table} WHERE run_uuid = ?", (run_id,))
    return {"row": row, "tags": tags}


def bulk_load(db: str, n_runs: int, chunk: int = CHUNK) -> float:
    """Write runs 0..n_runs-1 by bulk SQL into a store MLflow created; return seconds taken."""
    from mlflow.tracking import MlflowClient

    started = time.perf_counter()
    client = MlflowClient("sqlite:///" + db)
    experiments = {name: client.create_experiment(name) for name in EXPERIMENTS}
    locations = {
        name: client.get_experiment(eid).artifact_location for name, eid in experiments.items()
    }
    con = sqlite3.connect(db)
    con.execute("PRAGMA synchronous = OFF")  # this connection only; the file keeps its settings
    template = _template(client, con, experiments[EXPERIMENTS[0]])
    columns = list(template["row"])
    insert_run = f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    other_tags = {k: v for k, v in template["tags"].items() if k != "mlflow.runName"}
    for low in range(0, n_runs, chunk):
        runs, params, tags, latest = [], [], [], []
        for i in range(low, min(low + chunk, n_runs)):
            run_params, metrics = run_values(i)
            fields = run_fields(i)
            run_id = uuid.UUID(int=i + 1).hex
            exp = experiment_of(i)
            row = {
                **template["row"],
                **fields,
                "run_uuid": run_id,
                "experiment_id": int(experiments[exp]),
                "artifact_uri": f"{locations[exp]}/{run_id}/artifacts",
            }
            runs.append([row[c] for c in columns])
            params += [(k, str(v), run_id) for k, v in run_params.items()]
            tags.append(("mlflow.runName", fields["name"], run_id))
            tags += [(k, v, run_id) for k, v in other_tags.items()]
            last_ts = fields["start_time"] + (STEPS - 1) * 500
            for key, (_, last) in metrics.items():
                nan = math.isnan(last)
                latest.append((key, 0.0 if nan else last, last_ts, STEPS - 1, nan, run_id))
        with con:  # one transaction per chunk
            con.executemany(insert_run, runs)
            con.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", params)
            con.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", tags)
            con.executemany(
                "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                latest,
            )
    con.close()
    return time.perf_counter() - started


# -- faithfulness check ---------------------------------------------------------------------

CHECK_FILTERS = (
    "",
    MLFLOW_WHERE,
    "params.model = 'vit'",
    "metrics.acc > 0.5 and attributes.status = 'FINISHED'",
    "attributes.status = 'FAILED'",
    "tags.mlflow.runName LIKE 'run-1%'",
    "params.optimizer != 'sgd' and metrics.val_loss <= 0.4",
)
CHECK_ORDERS = (["metrics.loss ASC"], [], ["params.lr DESC"], ["attributes.start_time ASC"])


def _normal_run(run: Any, names: dict[str, str]) -> dict[str, Any]:
    info = run.info
    return {
        "name": info.run_name,
        "experiment": names[info.experiment_id],
        "status": info.status,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "lifecycle_stage": info.lifecycle_stage,
        "user_id": info.user_id,
        "artifact_uri": info.artifact_uri.replace(info.run_id, "<run_id>"),
        "params": run.data.params,
        "metrics": run.data.metrics,
        "tags": run.data.tags,
    }


def _search_everything(db: str) -> dict[str, Any]:
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = "sqlite:///" + db
    client = MlflowClient(uri)
    exps = [client.get_experiment_by_name(name) for name in EXPERIMENTS]
    ids = [e.experiment_id for e in exps]
    names = {e.experiment_id: e.name for e in exps}
    out: dict[str, Any] = {}
    for where in CHECK_FILTERS:
        for order in CHECK_ORDERS:
            runs = client.search_runs(ids, where, order_by=order, max_results=1000)
            out[f"search_runs({where!r}, order_by={order})"] = [_normal_run(r, names) for r in runs]
    mlflow.set_tracking_uri(uri)
    frame = mlflow.search_runs(ids)
    frame["artifact_uri"] = [
        u.replace(r, "<run_id>") for u, r in zip(frame.artifact_uri, frame.run_id, strict=True)
    ]
    frame = frame.drop(columns=["run_id"])
    out["mlflow.search_runs()"] = frame.to_dict(orient="list")
    latest = sqlite3.connect(db).execute(
        "SELECT t.value, m.key, m.value, m.timestamp, m.step, m.is_nan FROM latest_metrics m "
        "JOIN tags t ON t.run_uuid = m.run_uuid AND t.key = 'mlflow.runName' ORDER BY 1, 2"
    )
    out["latest_metrics rows"] = latest.fetchall()
    return out


def check_loader(n_runs: int = 50) -> dict[str, Any]:
    """Build ``n_runs`` through the client and through ``bulk_load``; compare MLflow's answers."""
    with tempfile.TemporaryDirectory() as tmp:
        client_db, bulk_db = str(Path(tmp) / "client.db"), str(Path(tmp) / "bulk.db")
        client_s = build_with_client(client_db, n_runs)
        bulk_s = bulk_load(bulk_db, n_runs, chunk=max(1, n_runs // 3))
        expected, got = _search_everything(client_db), _search_everything(bulk_db)
    mismatches = [key for key in expected if expected[key] != got.get(key)]
    return {
        "runs": n_runs,
        "queries": len(expected),
        "runs_compared": sum(len(v) for k, v in expected.items() if k.startswith("search_runs(")),
        "identical": not mismatches,
        "mismatches": mismatches,
        "client_s": client_s,
        "bulk_s": bulk_s,
    }


def bulk_fixture(db: str, n_runs: int) -> float | None:
    """Bulk-load ``db`` unless its ``.complete`` marker exists; seconds taken when built now."""
    marker = Path(db + ".complete")
    if marker.exists():
        return None
    Path(db).unlink(missing_ok=True)  # a load that did not finish
    seconds = bulk_load(db, n_runs)
    marker.write_text(json.dumps({"runs": n_runs, "seconds": seconds, "loader": "bulk"}))
    return seconds
