"""The web UI at scale: the runs table of 10,000 runs and a chart of a 1,000,000-point metric.

Builds a store of 10,000 runs (params, metric series, tags) written through the store's batch
path, plus one run with a 1,000,000-point metric, serves it with uvicorn in a subprocess and
measures:

- the first page of the runs table: server time (the app's own ``Server-Timing``) and the
  request's wall time, plain, filtered and sorted by the query language, and a deep page;
- the runs table in Chromium: from navigation start until the table is rendered and
  interactive (``window.labkeepReadyAt``), cold browser cache;
- the 1,000,000-point chart: the history request (downsampled on the server to 1,500 points)
  and, in Chromium, navigation start until the chart is drawn (``window.labkeepChartAt``: the
  first drawing on screen, the page's still SVG sketch while plotly.js is not running yet) and
  until plotly.js has drawn the interactive chart (``window.labkeepChartInteractiveAt``); cold:
  plotly.js downloaded and compiled on this visit; warm: plotly.js from the browser cache.

Beside it, MLflow's UI on the same data (``benchmarks/_ui_mlflow.py``): the same runs and
metric logged through ``MlflowClient`` into a SQLite store (built once under ``.bench/``, which
takes minutes; the build time is reported), served by ``mlflow server``, with the same
timings where MLflow has a counterpart: its runs search and experiment page, its sampled and
full metric history, and its run page's chart. ``--no-mlflow`` skips it; when an MLflow step
fails, labkeep's figures are reported with the reason MLflow's are missing.

Run: ``PYTHONPATH=src python benchmarks/bench_ui.py [--runs 10000] [--points 1000000]``.
Writes ``.bench/results/ui.json``.

Targets: first page <= 300 ms server time and interactive in the browser <= 1 s; the
1,000,000-point chart drawn <= 1 s.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from array import array
from pathlib import Path
from typing import Any

import httpx
from _harness import machine_info, scratch, write_results
from _ui_fixture import (
    BIG_EXPERIMENT,
    BIG_METRIC,
    BIG_NAME,
    STEPS,
    T0,
    fixture_runs,
    million_points,
)
from _ui_mlflow import (
    CHART_MAX_RESULTS,
    PeerError,
    mlflow_browser_timings,
    mlflow_fixture,
    mlflow_requests,
    start_mlflow_server,
    stop_mlflow_server,
)

import labkeep
from labkeep._client import Client
from labkeep.store._base import MetricColumns, RunFinish, RunStart, WriteBatch

CHROMIUM = os.environ.get("LABKEEP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FILTER = "params.lr < 0.01 and metrics.loss < 0.5"
SORT = "-metrics.acc"


def build_store(store: Path, runs: int, points: int) -> tuple[int, float]:
    """The fixture's ``runs`` runs (4 params, 3 metrics of 20 points, a tag or two), then one
    run with a ``points``-point metric, through the store's batch path; returns (the big run's
    number, seconds it took)."""
    client = Client(store)
    started = time.perf_counter()
    for run in fixture_runs(runs):
        times = array("d", run.metric_times())
        client.store.apply(
            WriteBatch(
                run_uuid=run.uuid,
                writer=f"bench-{run.index}",
                position=1,
                start=RunStart(
                    uuid=run.uuid,
                    experiment=run.experiment,
                    name=run.name,
                    start_time=run.start_time,
                ),
                params=run.params,
                summary=run.summary,
                tags_added=run.tags,
                metrics={
                    key: MetricColumns(array("q", range(STEPS)), array("d", values), times)
                    for key, values in run.metrics.items()
                },
                finish=RunFinish(run.status, run.end_time),
            )
        )
    big_uuid = str(uuid.uuid4())
    np_steps, np_values, np_times = million_points(points)
    steps, vals, times = array("q"), array("d"), array("d")
    steps.frombytes(np_steps.tobytes())
    vals.frombytes(np_values.tobytes())
    times.frombytes(np_times.tobytes())
    number = client.store.apply(
        WriteBatch(
            run_uuid=big_uuid,
            writer="bench-big",
            position=1,
            start=RunStart(uuid=big_uuid, experiment=BIG_EXPERIMENT, name=BIG_NAME, start_time=T0),
            metrics={BIG_METRIC: MetricColumns(steps, vals, times)},
            finish=RunFinish("completed", T0 + points * 0.01),
        )
    )
    client.close()
    return number, time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(store: Path, port: int) -> subprocess.Popen[bytes]:
    code = (
        "import uvicorn, sys\n"
        "from labkeep.server import create_app\n"
        f"uvicorn.run(create_app({str(store)!r}), host='127.0.0.1', port={port}, "
        "log_level='warning')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(labkeep.__file__).parents[1])}
    process = subprocess.Popen([sys.executable, "-c", code], env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the server did not start")


def time_request(
    client: httpx.Client, path: str, params: dict[str, Any], repeat: int
) -> dict[str, float]:
    """Median and worst wall time of ``repeat`` requests (after one warm-up), and the median
    server time from ``Server-Timing`` when the route reports it."""
    client.get(path, params=params).raise_for_status()
    walls, apps = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(path, params=params)
        walls.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
        timing = response.headers.get("server-timing", "")
        if "dur=" in timing:
            apps.append(float(timing.split("dur=")[1]))
    result = {
        "wall_ms": statistics.median(walls),
        "wall_max_ms": max(walls),
        "bytes": len(response.content),
    }
    if apps:
        result["server_ms"] = statistics.median(apps)
    return result


def browser_timings(base: str, big: int, repeat: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    table, table_filtered, chart_cold, chart_warm = [], [], [], []
    interactive_cold, interactive_warm = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(repeat):
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            page = context.new_page()
            page.goto(f"{base}/")
            page.wait_for_selector("body[data-ready=true]")
            assert page.locator("#runs-table tbody tr").count() == 50
            table.append(page.evaluate("window.labkeepReadyAt"))
            page.goto(f"{base}/?where={FILTER.replace(' ', '+')}&sort={SORT}")
            page.wait_for_selector("body[data-ready=true]")
            table_filtered.append(page.evaluate("window.labkeepReadyAt"))
            page.goto(f"{base}/runs/{big}#charts")
            page.wait_for_selector(".chart[data-rendered=true]")
            chart_cold.append(page.evaluate("window.labkeepChartAt"))
            interactive_cold.append(page.evaluate("window.labkeepChartInteractiveAt"))
            page.goto(f"{base}/runs/{big}#overview")
            page.goto(f"{base}/runs/{big}#charts")
            page.reload()
            page.wait_for_selector(".chart[data-rendered=true]")
            chart_warm.append(page.evaluate("window.labkeepChartAt"))
            interactive_warm.append(page.evaluate("window.labkeepChartInteractiveAt"))
            context.close()
        browser.close()
    return {
        "table_ready_ms": statistics.median(table),
        "table_filtered_ready_ms": statistics.median(table_filtered),
        "chart_cold_ms": statistics.median(chart_cold),
        "chart_warm_ms": statistics.median(chart_warm),
        "chart_interactive_cold_ms": statistics.median(interactive_cold),
        "chart_interactive_warm_ms": statistics.median(interactive_warm),
    }


def row(
    figure: str,
    value: float,
    target: float | None,
    detail: str,
    peer: float | None = None,
    peer_detail: str = "",
    peer_error: str | None = None,
    peer_text: str | None = None,
) -> dict[str, Any]:
    """One figure of the table; ``peer_text`` stands in the peer's cell when it has no
    value (a chart that did not render in time)."""
    return {
        "figure": figure,
        "unit": "ms",
        "labkeep": round(value, 1),
        "peer": None if peer is None else round(peer, 1),
        "ratio": None if peer is None or value <= 0 else round(peer / value, 2),
        "target": f"<= {target:,.0f} ms" if target else "",
        "target_met": None if target is None else value <= target,
        "labkeep_detail": detail,
        "peer_detail": peer_detail,
        "peer_error": peer_error,
        "peer_text": peer_text,
    }


def measure_peer(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """MLflow's figures, as far as they got: ``error`` names the step that failed and why,
    ``chart_error`` the chart that did not render in time."""
    peer: dict[str, Any] = {}
    try:
        peer["fixture"] = mlflow_fixture(args.runs, args.points)
        peer["version"] = peer["fixture"]["version"]
        peer["load_avg_1m"] = round(os.getloadavg()[0], 2)
        port = free_port()
        server = start_mlflow_server(peer["fixture"]["db"], port, workdir)
        base = f"http://127.0.0.1:{port}"
        try:
            peer["requests"] = mlflow_requests(base, peer["fixture"], args.repeat)
            peer["browser"] = mlflow_browser_timings(
                base,
                peer["fixture"],
                peer["requests"]["newest_run_id"],
                args.browser_repeat,
                CHROMIUM,
                CHROMIUM_ARGS,
                args.chart_timeout,
            )
        finally:
            stop_mlflow_server(server)
    except Exception as exc:  # any failure of the peer leaves labkeep's figures standing
        peer["error"] = f"{type(exc).__name__}: {exc}".strip()[:300]
        print(f"MLflow: {peer['error']}", file=sys.stderr)
    return peer


def peer_note(peer: dict[str, Any], runs: int, points: int) -> str:
    """What the MLflow column measured, or why it is empty."""
    if "fixture" not in peer:
        return f"MLflow was not measured: {peer.get('error', 'skipped (--no-mlflow)')}."
    built = peer["fixture"]
    per_experiment = runs // 5
    note = (
        f"MLflow {built['version']}: the same {runs:,} runs and {points:,}-point metric logged "
        f"through MlflowClient into SQLite (create_run, log_batch, set_terminated) in "
        f"{built['build_s']:,.0f} s ({built['runs_build_s']:,.0f} s for the runs, "
        f"{runs / built['runs_build_s']:,.1f} runs/s; {built['big_build_s']:,.0f} s for the long "
        "metric), built once and reused; served by `mlflow server --workers 1` (job runner and "
        "telemetry off). Its runs table is an experiment's page: one experiment "
        f"({per_experiment:,} of the {runs:,} runs, spread over 5 experiments as in labkeep's "
        "store), 100 runs per request; labkeep's table lists every run, 50 per page. Its run "
        f"page charts {CHART_MAX_RESULTS} points sampled on the server "
        "(get-history-bulk-interval); get-history returns every point."
    )
    if peer.get("error"):
        note += f" Then it failed: {peer['error']}."
    return note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--browser-repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1,000 runs, 100,000 points")
    parser.add_argument("--no-mlflow", action="store_true", help="measure labkeep only")
    parser.add_argument(
        "--chart-timeout",
        type=float,
        default=60.0,
        help="seconds to wait for MLflow's chart before reporting that it did not render",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.points, args.repeat, args.browser_repeat = 1000, 100_000, 5, 2
    machine = machine_info()
    peer: dict[str, Any] = {}
    if not args.no_mlflow:
        try:  # built first (minutes, once) so that building does not overlap any timing
            peer["fixture"] = mlflow_fixture(args.runs, args.points)
        except PeerError as exc:
            peer["error"] = str(exc)
    with scratch() as tmp:
        store = tmp.new("ui") / "store"
        big, build_s = build_store(store, args.runs, args.points)
        print(f"store: {args.runs:,} runs + one of {args.points:,} points in {build_s:.1f} s")
        labkeep_load = round(os.getloadavg()[0], 2)
        port = free_port()
        server = start_server(store, port)
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=f"{base}/api/v1", timeout=60) as client:
                first = time_request(client, "/runs", {"limit": 50}, args.repeat)
                filtered = time_request(
                    client, "/runs", {"limit": 50, "where": FILTER, "sort": SORT}, args.repeat
                )
                deep = time_request(
                    client,
                    "/runs",
                    {"limit": 50, "offset": args.runs - 50, "sort": "-params.lr"},
                    args.repeat,
                )
                history = time_request(
                    client, f"/runs/{big}/metrics/loss/history", {"points": 1500}, args.repeat
                )
                full = time_request(client, f"/store/history/{big}", {"key": "loss"}, args.repeat)
            browser = browser_timings(base, big, args.browser_repeat)
        finally:
            server.terminate()
            server.wait(10)
        if not args.no_mlflow and "error" not in peer:
            peer = measure_peer(args, tmp.new("mlflow"))
    requests: dict[str, Any] = peer.get("requests", {})
    shown: dict[str, Any] = peer.get("browser", {})
    missing = peer.get("error") or "not measured"

    def theirs(
        figures: dict[str, Any], key: str, detail: str, failed: str | None = None
    ) -> dict[str, Any]:
        """The peer's half of a row: its value, or why it is missing. ``failed`` is a chart
        that did not render in time: a finding shown in the table, not an error."""
        if args.no_mlflow:
            return {"peer": None, "peer_detail": "not measured (--no-mlflow)"}
        if key in figures:
            return {"peer": figures[key], "peer_detail": detail}
        if failed:
            return {
                "peer": None,
                "peer_text": f"> {args.chart_timeout:,.0f} s",
                "peer_detail": f"{detail}; {failed}",
            }
        return {"peer": None, "peer_detail": "", "peer_error": missing}

    def wall(name: str) -> dict[str, Any]:
        return {"wall_ms": requests[name]["wall_ms"]} if name in requests else {}

    search_all = requests.get("search_all", {}).get("wall_ms")
    no_peer = {"peer_detail": "MLflow has no counterpart measured here"}
    chart_failed = shown.get("chart_error")
    chart_peer = (
        f"navigation start to plotly's line drawn ({CHART_MAX_RESULTS} points sampled on the "
        "server), MLflow's app loaded on the runs table visit before; the history answered at "
        f"{shown.get('chart_cold_data_ms', 0):,.0f} ms"
    )
    rows = [
        row(
            "runs table, first page of 50: server time",
            first["server_ms"],
            300,
            f"{args.runs:,} runs; request wall {first['wall_ms']:.0f} ms (max {first['wall_max_ms']:.0f}), {first['bytes']:,} bytes",
            peer_detail="MLflow reports no server time; see the request's wall time below",
        ),
        row(
            "runs table, first page: request wall time",
            first["wall_ms"],
            None,
            f"GET /api/v1/runs?limit=50 over all {args.runs:,} runs",
            **theirs(
                wall("search_one"),
                "wall_ms",
                f"POST /api/2.0/mlflow/runs/search, max_results=100 as its table asks, one "
                f"experiment of {args.runs // 5:,} runs; "
                + (
                    f"all 5 experiments ({args.runs:,} runs) at once: {search_all:,.0f} ms"
                    if search_all is not None
                    else ""
                ),
            ),
        ),
        row(
            "runs table, first page, filtered and sorted: server time",
            filtered["server_ms"],
            300,
            f"where `{FILTER}`, sort `{SORT}`; request wall {filtered['wall_ms']:.0f} ms",
            **no_peer,
        ),
        row(
            "runs table, last page sorted by a param: server time",
            deep["server_ms"],
            None,
            f"offset {args.runs - 50:,}; request wall {deep['wall_ms']:.0f} ms",
            **no_peer,
        ),
        row(
            "runs table interactive in Chromium",
            browser["table_ready_ms"],
            1000,
            "navigation start to the table rendered with its handlers, cold cache",
            **theirs(
                shown,
                "table_ready_ms",
                "navigation start to the experiment page's table showing its newest run "
                f"({shown.get('table_rows_rendered', '?')} rows rendered), cold cache; its "
                f"runs/search answered at {shown.get('table_data_ms', 0):,.0f} ms",
            ),
        ),
        row(
            "runs table, filtered and sorted, interactive in Chromium",
            browser["table_filtered_ready_ms"],
            1000,
            "navigation start to the table rendered",
            **no_peer,
        ),
        row(
            f"history of a {args.points:,}-point metric, downsampled",
            history["wall_ms"],
            None,
            f"to 1,500 points; request wall time; {history['bytes']:,} bytes",
            **theirs(
                wall("sampled"),
                "wall_ms",
                f"GET get-history-bulk-interval, {CHART_MAX_RESULTS} points, what its chart "
                f"requests; {requests.get('sampled', {}).get('bytes', 0):,} bytes",
            ),
        ),
        row(
            f"every point of a {args.points:,}-point metric over HTTP",
            full["wall_ms"],
            None,
            f"GET /api/v1/store/history (binary columns); {full['bytes']:,} bytes",
            **theirs(
                wall("full"),
                "wall_ms",
                f"GET /api/2.0/mlflow/metrics/get-history (JSON), "
                f"{requests.get('full_points', 0):,} points, "
                f"{requests.get('full', {}).get('bytes', 0):,} bytes",
            ),
        ),
        row(
            f"chart of a {args.points:,}-point metric drawn, cold",
            browser["chart_cold_ms"],
            1000,
            "navigation start to the chart drawn (its sketch until plotly.js runs), "
            "plotly.js (4.8 MB) loaded and parsed on this visit",
            **theirs(shown, "chart_cold_ms", chart_peer, chart_failed),
        ),
        row(
            f"chart of a {args.points:,}-point metric drawn, plotly.js cached",
            browser["chart_warm_ms"],
            1000,
            "navigation start to the chart drawn",
            **theirs(shown, "chart_warm_ms", "the chart page reloaded", chart_failed),
        ),
        row(
            f"chart of a {args.points:,}-point metric interactive (plotly.js), cold",
            browser["chart_interactive_cold_ms"],
            None,
            "navigation start to plotly.js's chart drawn, plotly.js loaded and parsed on this visit",
            **theirs(shown, "chart_cold_ms", "its first drawing is plotly's", chart_failed),
        ),
        row(
            f"chart of a {args.points:,}-point metric interactive (plotly.js), cached",
            browser["chart_interactive_warm_ms"],
            None,
            "navigation start to plotly.js's chart drawn",
            **theirs(shown, "chart_warm_ms", "the chart page reloaded", chart_failed),
        ),
    ]
    note = peer_note(peer, args.runs, args.points)
    version = peer.get("fixture", {}).get("version")
    width = max(len(r["figure"]) for r in rows)
    print(f"\n{'figure':<{width}}  {'labkeep':>11}  {'MLflow':>11}  {'ratio':>7}  target")
    for r in rows:
        met = "" if r["target_met"] is None else ("  ok" if r["target_met"] else "  MISSED")
        if r["peer"] is not None:
            other = f"{r['peer']:>8,.1f} ms"
        else:
            other = f"{r.get('peer_text') or ('error' if r.get('peer_error') else '-'):>11}"
        ratio = f"{r['ratio']:,.2f}x" if r["ratio"] is not None else "-"
        print(
            f"{r['figure']:<{width}}  {r['labkeep']:>8,.1f} ms  {other}  {ratio:>7}  "
            f"{r['target']}{met}"
        )
    print(
        f"load average (1 min): {machine['load_avg_1m']} at the start, {labkeep_load} before "
        f"labkeep's timings, {peer.get('load_avg_1m', '-')} before MLflow's"
    )
    print(note)
    if chart_failed:
        print(f"MLflow's chart: {chart_failed}")
    if shown.get("foreign_requests"):
        print(f"MLflow's UI asked for other hosts: {', '.join(shown['foreign_requests'])}")
    path = write_results(
        "ui",
        {
            "title": "Web UI at scale",
            "labkeep_version": labkeep.__version__,
            "quick": args.quick,
            "machine": machine,
            "peer": {
                "name": "MLflow UI",
                "version": version or "not measured",
                "store": "SQLite" if version else None,
            },
            "peer_note": note,
            "sizes": {
                "runs": args.runs,
                "points": args.points,
                "store_build_s": round(build_s, 1),
                "mlflow_store_build_s": (
                    round(peer["fixture"]["build_s"], 1) if "fixture" in peer else None
                ),
                "load_avg_1m_labkeep": labkeep_load,
                "load_avg_1m_mlflow": peer.get("load_avg_1m"),
            },
            "mlflow": {k: v for k, v in peer.items() if k != "fixture"} if peer else None,
            "rows": rows,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
