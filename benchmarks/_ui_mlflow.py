"""MLflow's side of the web UI benchmark: the fixture logged through ``MlflowClient`` into a
SQLite store, served by ``mlflow server``, timed over HTTP and in Chromium.

The store is built once under ``.bench/`` (MLflow logs some 15-20 runs a second here, so
10,000 runs and a 1,000,000-point metric take minutes) and kept while its ``.complete``
marker, which records what the build took, is there. Every step raises ``PeerError`` with the
reason when it fails, so that the benchmark still reports labkeep's figures.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
from _peers import BENCH_DIR, MLFLOW

BENCH_SCRIPTS = Path(__file__).resolve().parent
# What the server's environment switches off: the job runner (a pool of huey workers for GenAI
# jobs, which the tracking UI does not use, competing for the same cores) and telemetry (there
# is no network to send it to).
SERVER_ENV = {
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
}
# What MLflow's runs table asks for (seen in the browser): 100 runs, newest first.
RUNS_TABLE_BODY: dict[str, Any] = {
    "run_view_type": "ACTIVE_ONLY",
    "max_results": 100,
    "order_by": ["attributes.start_time DESC"],
}
# What its run page asks for to chart a metric: 320 points picked on the server.
CHART_MAX_RESULTS = 320


class PeerError(RuntimeError):
    """An MLflow step failed; the message says which and why, for the results file."""


# Runs inside MLflow's venv. One log_batch per run (60 metric points, the summary value as a
# one-point metric, 4 params), the long metric in log_batch calls of 1,000 points (MLflow's
# limit per call). labkeep's tags are labels; MLflow's are key=value, so a label becomes a tag
# whose value is empty.
BUILD_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    sys.path.insert(0, {bench_dir!r})
    os.environ["MLFLOW_ENABLE_ASYNC_LOGGING"] = "false"
    import mlflow
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient
    from _ui_fixture import (
        BIG_EXPERIMENT, BIG_METRIC, BIG_NAME, STEPS, T0, fixture_runs, million_points,
    )

    db, runs, points = {db!r}, {runs}, {points}
    status = {{"completed": "FINISHED", "failed": "FAILED"}}

    def ms(seconds):
        return int(round(seconds * 1000))

    started = time.perf_counter()
    client = MlflowClient("sqlite:///" + db)
    experiments = {{}}
    for run in fixture_runs(runs):
        if run.experiment not in experiments:
            experiments[run.experiment] = client.create_experiment(run.experiment)
        created = client.create_run(
            experiments[run.experiment],
            start_time=ms(run.start_time),
            tags={{tag: "" for tag in run.tags}},
            run_name=run.name,
        )
        run_id = created.info.run_id
        times = [ms(t) for t in run.metric_times()]
        metrics = [
            Metric(key, value, times[step], step)
            for key, values in run.metrics.items()
            for step, value in enumerate(values)
        ]
        metrics += [Metric(k, v, ms(run.end_time), 0) for k, v in run.summary.items()]
        params = [Param(k, str(v)) for k, v in run.params.items()]
        client.log_batch(run_id, metrics=metrics, params=params, synchronous=True)
        client.set_terminated(run_id, status[run.status], end_time=ms(run.end_time))
        if (run.index + 1) % 500 == 0:
            rate = (run.index + 1) / (time.perf_counter() - started)
            print(f"  MLflow: {{run.index + 1:,}} runs logged ({{rate:.1f}} runs/s)",
                  file=sys.stderr, flush=True)
    runs_s = time.perf_counter() - started
    big_started = time.perf_counter()
    experiments[BIG_EXPERIMENT] = client.create_experiment(BIG_EXPERIMENT)
    big = client.create_run(experiments[BIG_EXPERIMENT], start_time=ms(T0), run_name=BIG_NAME)
    steps, values, times = million_points(points)
    steps, values = steps.tolist(), values.tolist()
    times = [ms(t) for t in times.tolist()]
    for chunk in range(0, points, 1000):
        client.log_batch(
            big.info.run_id,
            metrics=[
                Metric(BIG_METRIC, values[i], times[i], steps[i])
                for i in range(chunk, min(chunk + 1000, points))
            ],
            synchronous=True,
        )
    client.set_terminated(big.info.run_id, "FINISHED", end_time=ms(T0 + points * 0.01))
    big_s = time.perf_counter() - big_started
    print(json.dumps({{
        "version": mlflow.__version__,
        "runs": runs,
        "points": points,
        "build_s": time.perf_counter() - started,
        "runs_build_s": runs_s,
        "big_build_s": big_s,
        "experiments": experiments,
        "big_run_id": big.info.run_id,
    }}))
    """
)


def mlflow_fixture(runs: int, points: int) -> dict[str, Any]:
    """The MLflow SQLite store of the fixture under ``.bench/``: what building it took
    (``build_s``...), the experiment ids by name, the big run's id and the ``db`` path."""
    python = MLFLOW.python
    if not python.exists():
        raise PeerError(f"no MLflow venv at {MLFLOW.venv_dir} (python benchmarks/_peers.py mlflow)")
    db = BENCH_DIR / f"mlflow-ui-{runs}-{points}.db"
    marker = db.with_name(db.name + ".complete")
    if marker.exists():
        built: dict[str, Any] = json.loads(marker.read_text())
        built["db"] = str(db)
        return built
    db.unlink(missing_ok=True)
    print(f"building the MLflow fixture: {runs:,} runs + one of {points:,} points …", flush=True)
    script = BUILD_SCRIPT.format(bench_dir=str(BENCH_SCRIPTS), db=str(db), runs=runs, points=points)
    # Run beside the store: MLflow records its cwd in each experiment's artifact location.
    proc = subprocess.run(
        [str(python), "-c", script], cwd=BENCH_DIR, stdout=subprocess.PIPE, text=True, check=False
    )
    if proc.returncode != 0:
        raise PeerError(f"building the MLflow store failed (exit {proc.returncode})")
    built = json.loads(proc.stdout.strip().splitlines()[-1])
    marker.write_text(json.dumps(built))
    built["db"] = str(db)
    return built


def start_mlflow_server(db: str, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """``mlflow server`` on 127.0.0.1 with one worker, in its own process group (it starts
    uvicorn as a child); waits for ``/health``."""
    mlflow = MLFLOW.venv_dir / "bin" / "mlflow"
    log = (workdir / "mlflow-server.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    process = subprocess.Popen(
        [
            str(mlflow),
            "server",
            "--backend-store-uri",
            f"sqlite:///{db}",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-serve-artifacts",
        ],
        cwd=workdir,
        env={**env, **SERVER_ENV},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = (workdir / "mlflow-server.log").read_text(errors="replace")[-300:]
            raise PeerError(f"mlflow server exited {process.returncode}: {tail.strip()}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).raise_for_status()
            return process
        except httpx.HTTPError:
            time.sleep(0.2)
    stop_mlflow_server(process)
    raise PeerError("mlflow server did not answer /health within 120 s")


def stop_mlflow_server(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
    except ProcessLookupError:
        pass


def _timed(send: Any, repeat: int) -> dict[str, float]:
    """Median and worst wall time of ``repeat`` calls of ``send()`` after one warm-up;
    ``send`` returns the response body's size."""
    send()
    walls, size = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        size = send()
        walls.append((time.perf_counter() - start) * 1000)
    return {"wall_ms": statistics.median(walls), "wall_max_ms": max(walls), "bytes": size}


def mlflow_requests(base: str, fixture: dict[str, Any], repeat: int) -> dict[str, Any]:
    """Wall times of what MLflow's UI requests: the runs table's search (one experiment, and
    all five experiments at once), the run page's sampled history, and the full history."""
    experiments = fixture["experiments"]
    small = [v for k, v in experiments.items() if k.startswith("exp")]
    big_run = fixture["big_run_id"]
    out: dict[str, Any] = {}
    with httpx.Client(base_url=f"{base}/api/2.0/mlflow", timeout=600) as client:

        def search(ids: list[str]) -> int:
            response = client.post("/runs/search", json={"experiment_ids": ids, **RUNS_TABLE_BODY})
            response.raise_for_status()
            return len(response.content)

        out["search_one"] = _timed(lambda: search([experiments["exp0"]]), repeat)
        out["search_all"] = _timed(lambda: search(small), repeat)
        newest = client.post(
            "/runs/search", json={"experiment_ids": [experiments["exp0"]], **RUNS_TABLE_BODY}
        ).json()["runs"][0]["info"]
        out["newest_run_id"] = newest["run_id"]
        out["newest_run_name"] = newest["run_name"]

        def sampled() -> int:
            response = client.get(
                "/metrics/get-history-bulk-interval",
                params={"run_ids": big_run, "metric_key": "loss", "max_results": CHART_MAX_RESULTS},
            )
            response.raise_for_status()
            return len(response.content)

        out["sampled"] = _timed(sampled, repeat)

        def full() -> int:
            # get-history pages when the server says so; follow every page.
            size, token, count = 0, None, 0
            while True:
                params = {"run_id": big_run, "metric_key": "loss"}
                if token:
                    params["page_token"] = token
                response = client.get("/metrics/get-history", params=params)
                response.raise_for_status()
                size += len(response.content)
                body = response.json()
                count += len(body.get("metrics", []))
                token = body.get("next_page_token")
                if not token:
                    out["full_points"] = count
                    return size

        out["full"] = _timed(full, max(1, min(repeat, 3)))
    return out


# Set before the page's own scripts run: the moment (ms after navigation start) the runs
# table's rendered rows include the newest run, and the moment plotly has drawn a line with
# points, watched by a MutationObserver so the time is not rounded to a polling interval; and
# when the data each waited for had arrived (the last such response's end).
WATCH_SCRIPT = """
(() => {
  const newest = %s;
  performance.setResourceTimingBufferSize(5000);
  const arrived = (part) => Math.max(0, ...performance.getEntriesByType('resource')
    .filter((e) => e.name.includes(part)).map((e) => e.responseEnd));
  const check = () => {
    if (window.benchTableAt === undefined &&
        document.querySelector('.ag-row a[href$="/runs/' + newest + '"]')) {
      window.benchTableAt = performance.now();
      window.benchTableRows = document.querySelectorAll('.ag-row a[href*="/runs/"]').length;
      window.benchTableDataAt = arrived('/runs/search');
    }
    if (window.benchChartAt === undefined) {
      const line = document.querySelector('.js-plotly-plot .scatterlayer .trace path.js-line');
      if (line && (line.getAttribute('d') || '').length > 100) {
        window.benchChartAt = performance.now();
        window.benchChartDataAt = arrived('/metrics/get-history');
      }
    }
  };
  new MutationObserver(check).observe(document, {
    childList: true, subtree: true, attributes: true, attributeFilter: ['d'],
  });
})();
"""


def mlflow_browser_timings(
    base: str,
    fixture: dict[str, Any],
    newest_run_id: str,
    repeat: int,
    chromium: str,
    chromium_args: list[str],
    chart_timeout_s: float,
) -> dict[str, Any]:
    """The same visits as labkeep's: in a fresh browser context (cold cache) the experiment's
    runs table, then the big run's chart page (cold), then that page reloaded (cached)."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    experiments = fixture["experiments"]
    table_url = f"{base}/#/experiments/{experiments['exp0']}/runs"
    chart_url = (
        f"{base}/#/experiments/{experiments['big']}/runs/{fixture['big_run_id']}/model-metrics"
    )
    table: list[float] = []
    table_data: list[float] = []
    cold: list[float] = []
    cold_data: list[float] = []
    warm: list[float] = []
    rows: list[int] = []
    history_requests: set[str] = set()
    foreign: set[str] = set()
    chart_error = None

    def wait_for(page: Any, name: str, timeout_s: float) -> float | None:
        try:
            page.wait_for_function(f"window.{name} !== undefined", timeout=timeout_s * 1000)
        except PlaywrightError:
            return None
        value: float = page.evaluate(f"window.{name}")
        return value

    def watch(request: Any) -> None:
        url = request.url
        if not url.startswith(base) and not url.startswith(("data:", "blob:")):
            foreign.add(url.split("?")[0][:100])
        elif "/metrics/get-history" in url:
            history_requests.add(url.split("?")[0].rsplit("/", 1)[-1])

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=chromium_args)
        for _ in range(repeat):
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            context.add_init_script(WATCH_SCRIPT % json.dumps(newest_run_id))
            page = context.new_page()
            page.on("request", watch)
            page.goto(table_url)
            at = wait_for(page, "benchTableAt", 120)
            if at is None:
                raise PeerError("MLflow's runs table did not show its newest run within 120 s")
            table.append(at)
            table_data.append(page.evaluate("window.benchTableDataAt"))
            rows.append(page.evaluate("window.benchTableRows"))
            if chart_error is None:
                # The UI is one page with hash routes: leave it so the chart page loads anew.
                page.goto("about:blank")
                page.goto(chart_url)
                at = wait_for(page, "benchChartAt", chart_timeout_s)
                if at is None:
                    chart_error = f"did not render within {chart_timeout_s:.0f} s"
                else:
                    cold.append(at)
                    cold_data.append(page.evaluate("window.benchChartDataAt"))
                    page.reload()
                    at = wait_for(page, "benchChartAt", chart_timeout_s)
                    if at is None:
                        chart_error = f"did not render within {chart_timeout_s:.0f} s (reload)"
                    else:
                        warm.append(at)
            context.close()
        browser.close()
    result: dict[str, Any] = {
        "table_ready_ms": statistics.median(table),
        "table_data_ms": statistics.median(table_data),
        "table_rows_rendered": min(rows),
        "history_endpoints": sorted(history_requests),
        "foreign_requests": sorted(foreign),
        "chart_error": chart_error,
    }
    if cold:
        result["chart_cold_ms"] = statistics.median(cold)
        result["chart_cold_data_ms"] = statistics.median(cold_data)
    if warm:
        result["chart_warm_ms"] = statistics.median(warm)
    return result
