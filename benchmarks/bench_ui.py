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

Run: ``PYTHONPATH=src python benchmarks/bench_ui.py [--runs 10000] [--points 1000000]``.
Writes ``.bench/results/ui.json``. MLflow's UI is not measured here (see ``PEER_NOTE``).

Targets: first page <= 300 ms server time and interactive in the browser <= 1 s; the
1,000,000-point chart drawn <= 1 s.
"""

from __future__ import annotations

import argparse
import os
import random
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
PEER_NOTE = (
    "MLflow's UI was not measured in this run: it needs `.bench/mlflow-venv` "
    "(benchmarks/_peers.py) and an `mlflow server` on the same 10,000 runs logged through "
    "MlflowClient (about 10-20 min on 2 cores), then the same two timings: "
    "POST /api/2.0/mlflow/runs/search (max_results=100, what its runs table requests) and the "
    "React experiment page until its table renders; and for the chart, "
    "GET /api/2.0/mlflow/metrics/get-history of the 1,000,000-point metric (MLflow returns "
    "every point, no server-side downsampling) until the run page's chart renders."
)
FILTER = "params.lr < 0.01 and metrics.loss < 0.5"
SORT = "-metrics.acc"


def build_store(store: Path, runs: int, points: int) -> tuple[int, float]:
    """``runs`` runs of 4 params, 3 metrics of 20 points and a tag or two, then one run with
    a ``points``-point metric; returns (the big run's number, seconds it took)."""
    rng = random.Random(42)
    client = Client(store)
    started = time.perf_counter()
    t0 = 1.7e9
    for i in range(runs):
        run_uuid = str(uuid.UUID(int=rng.getrandbits(128)))
        lr = 10 ** rng.uniform(-4, -1)
        metrics = {}
        for key, scale in (("loss", 1.0), ("acc", -1.0), ("val/loss", 1.1)):
            steps = array("q", range(20))
            values = array(
                "d", (scale * (1 / (1 + s * lr * 50)) + rng.gauss(0, 0.01) for s in range(20))
            )
            times = array("d", (t0 + i * 60 + s for s in range(20)))
            metrics[key] = MetricColumns(steps, values, times)
        client.store.apply(
            WriteBatch(
                run_uuid=run_uuid,
                writer=f"bench-{i}",
                position=1,
                start=RunStart(
                    uuid=run_uuid, experiment=f"exp{i % 5}", name=f"run-{i}", start_time=t0 + i * 60
                ),
                params={
                    "lr": lr,
                    "batch_size": rng.choice([16, 32, 64, 128]),
                    "optimizer": rng.choice(["sgd", "adam", "adamw"]),
                    "model.depth": rng.randint(2, 12),
                },
                summary={"best_acc": rng.random()},
                tags_added=["sweep"] + (["baseline"] if i % 100 == 0 else []),
                metrics=metrics,
                finish=RunFinish("completed" if i % 37 else "failed", t0 + i * 60 + 30),
            )
        )
    import numpy as np

    big_uuid = str(uuid.uuid4())
    values = np.sin(np.arange(points) / 5000.0) + np.random.default_rng(1).normal(0, 0.05, points)
    steps, vals, times = array("q"), array("d"), array("d")
    steps.frombytes(np.arange(points, dtype="<i8").tobytes())
    vals.frombytes(values.astype("<f8").tobytes())
    times.frombytes((t0 + np.arange(points) * 0.01).astype("<f8").tobytes())
    number = client.store.apply(
        WriteBatch(
            run_uuid=big_uuid,
            writer="bench-big",
            position=1,
            start=RunStart(uuid=big_uuid, experiment="big", name="million", start_time=t0),
            metrics={"loss": MetricColumns(steps, vals, times)},
            finish=RunFinish("completed", t0 + points * 0.01),
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


def row(figure: str, value: float, target: float | None, detail: str) -> dict[str, Any]:
    return {
        "figure": figure,
        "unit": "ms",
        "labkeep": round(value, 1),
        "peer": None,
        "ratio": None,
        "target": f"<= {target:,.0f} ms" if target else "",
        "target_met": None if target is None else value <= target,
        "labkeep_detail": detail,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--browser-repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1,000 runs, 100,000 points")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.points, args.repeat, args.browser_repeat = 1000, 100_000, 5, 2
    machine = machine_info()
    with scratch() as tmp:
        store = tmp.new("ui") / "store"
        big, build_s = build_store(store, args.runs, args.points)
        print(f"store: {args.runs:,} runs + one of {args.points:,} points in {build_s:.1f} s")
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
            browser = browser_timings(base, big, args.browser_repeat)
        finally:
            server.terminate()
            server.wait(10)
    rows = [
        row(
            "runs table, first page of 50: server time",
            first["server_ms"],
            300,
            f"{args.runs:,} runs; request wall {first['wall_ms']:.0f} ms (max {first['wall_max_ms']:.0f}), {first['bytes']:,} bytes",
        ),
        row(
            "runs table, first page, filtered and sorted: server time",
            filtered["server_ms"],
            300,
            f"where `{FILTER}`, sort `{SORT}`; request wall {filtered['wall_ms']:.0f} ms",
        ),
        row(
            "runs table, last page sorted by a param: server time",
            deep["server_ms"],
            None,
            f"offset {args.runs - 50:,}; request wall {deep['wall_ms']:.0f} ms",
        ),
        row(
            "runs table interactive in Chromium",
            browser["table_ready_ms"],
            1000,
            "navigation start to the table rendered with its handlers, cold cache",
        ),
        row(
            "runs table, filtered and sorted, interactive in Chromium",
            browser["table_filtered_ready_ms"],
            1000,
            "navigation start to the table rendered",
        ),
        row(
            f"history of a {args.points:,}-point metric, downsampled to 1,500",
            history["wall_ms"],
            None,
            f"request wall time; {history['bytes']:,} bytes",
        ),
        row(
            f"chart of a {args.points:,}-point metric drawn, cold",
            browser["chart_cold_ms"],
            1000,
            "navigation start to the chart drawn (its sketch until plotly.js runs), "
            "plotly.js (4.8 MB) loaded and parsed on this visit",
        ),
        row(
            f"chart of a {args.points:,}-point metric drawn, plotly.js cached",
            browser["chart_warm_ms"],
            1000,
            "navigation start to the chart drawn",
        ),
        row(
            f"chart of a {args.points:,}-point metric interactive (plotly.js), cold",
            browser["chart_interactive_cold_ms"],
            None,
            "navigation start to plotly.js's chart drawn, plotly.js loaded and parsed on this visit",
        ),
        row(
            f"chart of a {args.points:,}-point metric interactive (plotly.js), cached",
            browser["chart_interactive_warm_ms"],
            None,
            "navigation start to plotly.js's chart drawn",
        ),
    ]
    width = max(len(r["figure"]) for r in rows)
    for r in rows:
        met = "" if r["target_met"] is None else ("  ok" if r["target_met"] else "  MISSED")
        print(f"{r['figure']:<{width}}  {r['labkeep']:>8,.1f} ms  {r['target']}{met}")
    print(PEER_NOTE)
    path = write_results(
        "ui",
        {
            "title": "Web UI at scale",
            "labkeep_version": labkeep.__version__,
            "quick": args.quick,
            "machine": machine,
            "peer": {"name": "MLflow UI", "version": "not measured"},
            "peer_note": PEER_NOTE,
            "sizes": {"runs": args.runs, "points": args.points, "store_build_s": round(build_s, 1)},
            "rows": rows,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
