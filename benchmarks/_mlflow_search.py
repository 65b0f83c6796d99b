"""MLflow's searches measured in its own virtualenv (``.bench/mlflow-venv``), for
``bench_query.py``.

The script below runs there: it opens (or first writes) an MLflow store of the benchmark's runs
and times ``MlflowClient.search_runs`` with the closest equivalent of labkeep's filter, and
``mlflow.search_runs`` of every run as pandas, each call stopped after a timeout. How the stores
are written: ``_mlflow_fixture.py``.

MLflow never runs SQLite's ``ANALYZE``, and without table statistics SQLite joins the sort
metric's ``latest_metrics`` rows by scanning all of them once per run that passes the filter:
the filtered search grows with the square of the run count. The bulk-loaded store is therefore
also measured as a copy after ``ANALYZE``, where SQLite builds an automatic index instead.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / ".bench"
MLFLOW_VENV = BENCH / "mlflow-venv"

# How each store was written, as a row's detail says it; the notes say more.
MLFLOW_STORES = {
    "client": "store written through MlflowClient.log_batch",
    "bulk": "store bulk-loaded by SQL into MLflow's schema (see notes)",
}

BULK_NOTE = (
    "bulk-loaded by SQL into the schema MLflow creates: the rows of runs, params, tags and "
    "latest_metrics, as MlflowClient writes them (copied from a run it created); the per-step "
    "metrics table is left empty, since search_runs does not read it; experiments (cifar, mnist), "
    "names, start and end times and statuses as in labkeep's fixture"
)


MLFLOW_SCRIPT = textwrap.dedent(
    """
    import json, os, signal, statistics, sys, time
    sys.path.insert(0, {bench_dir!r})
    os.environ["MLFLOW_ENABLE_ASYNC_LOGGING"] = "false"
    import mlflow
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient
    from bench_query import run_values, STEPS, WHERE, MLFLOW_WHERE, LIMIT
    import _mlflow_fixture

    db, n_runs, loader = {db!r}, {n_runs}, {loader!r}
    repeat, pandas_repeat, timeout = {repeat}, {pandas_repeat}, {timeout}
    uri = "sqlite:///" + db
    built = None
    if loader == "bulk":  # before any client opens the file: a half-built one is replaced
        built = _mlflow_fixture.bulk_fixture(db, n_runs)
        names = _mlflow_fixture.EXPERIMENTS
    else:
        names = ["bench"]
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    if loader == "client" and not os.path.exists(db + ".complete"):
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
    exps = [client.get_experiment_by_name(name).experiment_id for name in names]

    class Expired(BaseException):  # not an Exception: MLflow would wrap that in its own
        pass

    def expired(signum, frame):
        raise Expired

    signal.signal(signal.SIGALRM, expired)

    def timed(fn, times_wanted):
        times = []
        result = None
        for _ in range(times_wanted):
            signal.alarm(timeout)
            start = time.perf_counter()
            try:
                result = fn()
            except Expired:
                return {{"timeout_s": timeout, "completed": times}}
            finally:
                signal.alarm(0)
            times.append(time.perf_counter() - start)
        return {{"times": [statistics.median(times), min(times), max(times)], "result": result}}

    filtered = timed(lambda: client.search_runs(
        exps, MLFLOW_WHERE, order_by=["metrics.loss ASC"], max_results=LIMIT), repeat)
    if "result" in filtered:
        runs = filtered.pop("result")
        filtered["n"] = len(runs)
        filtered["names"] = [r.info.run_name for r in runs]
    frame = timed(lambda: mlflow.search_runs(exps, max_results=n_runs + 1), pandas_repeat)
    if "result" in frame:
        frame["shape"] = list(frame.pop("result").shape)
    analyzed = None
    if loader == "bulk" and {analyzed!r}:
        # MLflow never runs ANALYZE on its SQLite stores, so its queries are planned without
        # table statistics; a copy with them shows what they would change.
        import shutil, sqlite3
        copy = db[:-3] + "-analyzed.db"
        if built is not None or not os.path.exists(copy + ".complete"):
            shutil.copyfile(db, copy)
            con = sqlite3.connect(copy)
            con.execute("ANALYZE")
            con.close()
            open(copy + ".complete", "w").write("{{}}")
        stats_client = MlflowClient("sqlite:///" + copy)
        analyzed = timed(lambda: stats_client.search_runs(
            exps, MLFLOW_WHERE, order_by=["metrics.loss ASC"], max_results=LIMIT), repeat)
        if "result" in analyzed:
            analyzed["n"] = len(analyzed.pop("result"))
    print(json.dumps({{
        "version": mlflow.__version__,
        "loader": loader,
        "build_s": built,
        "experiments": list(names),
        "filtered": filtered,
        "pandas": frame,
        "filtered_analyzed": analyzed,
    }}))
    """
)


def measure_mlflow(
    n_runs: int, loader: str, repeat: int, pandas_repeat: int, timeout: int, analyzed: bool = False
) -> dict[str, Any]:
    """MLflow's searches on ``n_runs`` runs, in the MLflow virtualenv.

    ``loader`` is ``client`` (the store written through ``log_batch``, ``.bench/mlflow-N.db``)
    or ``bulk`` (``.bench/mlflow-bulk-N.db``, see ``_mlflow_fixture``). Each call stops after
    ``timeout`` seconds; a failure comes back as ``{"error": …}``. With ``analyzed``, the
    filtered search is also timed on a copy of the bulk-loaded store after ``ANALYZE``.
    """
    python = mlflow_python()
    name = f"mlflow-{n_runs}.db" if loader == "client" else f"mlflow-{loader}-{n_runs}.db"
    db = BENCH / name
    script = MLFLOW_SCRIPT.format(
        bench_dir=str(ROOT / "benchmarks"),
        db=str(db),
        n_runs=n_runs,
        loader=loader,
        repeat=repeat,
        pandas_repeat=pandas_repeat,
        timeout=timeout,
        analyzed=analyzed,
    )
    print(f"MLflow: {n_runs:,} runs ({loader}-built store) …", flush=True)
    result = subprocess.run([str(python), "-c", script], capture_output=True, text=True)
    if result.returncode != 0:
        print(result.stderr[-3000:], file=sys.stderr)
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr else "failed"}
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    data["db"] = name
    marker = BENCH / (name + ".complete")
    if marker.exists():
        text = marker.read_text()
        data["fixture_s"] = json.loads(text)["seconds"] if text.startswith("{") else float(text)
    return data


def check_mlflow_loader(n_runs: int) -> dict[str, Any]:
    """Build ``n_runs`` through MlflowClient and through the bulk loader; compare searches."""
    code = (
        f"import json, sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); "
        f"import _mlflow_fixture; print(json.dumps(_mlflow_fixture.check_loader({n_runs})))"
    )
    print(f"checking the MLflow bulk loader against MlflowClient on {n_runs} runs …", flush=True)
    result = subprocess.run([str(mlflow_python()), "-c", code], capture_output=True, text=True)
    if result.returncode != 0:
        print(result.stderr[-3000:], file=sys.stderr)
        return {"runs": n_runs, "identical": False, "error": result.stderr[-500:]}
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def mlflow_python() -> Path:
    python = MLFLOW_VENV / "bin" / "python"
    if not python.exists():
        print("creating the MLflow virtualenv …", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "mlflow==3.*"], check=True)
    return python
