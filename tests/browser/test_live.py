"""A live run: a real ``labkeep run`` subprocess logs while the pages are open. Once a point
and a console line are in the store, the open run page shows them within 2 seconds, without
a reload; the runs table follows the run to its end."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from browser.harness import LiveServer, Pages, child_env

pytestmark = pytest.mark.browser

LIVE_SCRIPT = """
import os, time
from pathlib import Path
import labkeep

control = Path(os.environ["LIVE_CONTROL"])
run = labkeep.init()
run.log({"live": 0.0}, step=0)
print("marker 0", flush=True)
seen, step, deadline = "", 0, time.time() + 120
while time.time() < deadline:
    text = control.read_text() if control.exists() else ""
    if text and text != seen:
        seen = text
        if text == "stop":
            break
        step += 1
        run.log({"live": float(step * step)}, step=step)
        print(f"marker {text}", flush=True)
    time.sleep(0.05)
"""


def signal(control: Path, text: str) -> None:
    """Tell the live script ``text``: replaced whole, so it never reads a half-written file
    (an empty read would count as one more step)."""
    part = control.with_name(control.name + ".part")
    part.write_text(text)
    os.replace(part, control)


#: How long the UI may take to show what reached the store.
UI_DEADLINE_MS = 2000


@pytest.fixture()
def live_run(tmp_path: Path) -> Iterator[tuple[LiveServer, Path, subprocess.Popen[bytes]]]:
    store = tmp_path / "store"
    (tmp_path / "live.py").write_text(LIVE_SCRIPT)
    control = tmp_path / "control"
    env = child_env(store)
    env["LIVE_CONTROL"] = str(control)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "labkeep.cli",
            "run",
            "-e",
            "live",
            "-n",
            "live",
            "--no-capture",
            "-q",
            "-y",
            "live.py",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server = LiveServer(store)
    try:
        wait_in_store(store, server, lambda run, lines: "marker 0" in lines, process, started=False)
        yield server, control, process
    finally:
        signal(control, "stop")
        try:
            process.wait(30)
        finally:
            if process.poll() is None:
                process.kill()
            server.stop()


def wait_in_store(
    store: Path,
    server: LiveServer,
    ready: Any,
    process: subprocess.Popen[bytes],
    started: bool = True,
) -> dict[str, Any]:
    """Poll the API until ``ready(run_row, console_text)``; returns the run row."""
    if not started:
        while not (store / "labkeep.db").exists():
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            time.sleep(0.05)
        server.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None or not started, "the live run ended early"
        response = httpx.get(f"{server.url}/api/v1/runs/live")
        if response.status_code == 200:
            row = response.json()
            output = httpx.get(f"{server.url}/api/v1/runs/{row['number']}/output").json()
            text = "\n".join(line["text"] for line in output["lines"])
            if ready(row, text):
                return dict(row)
        time.sleep(0.02)
    raise AssertionError("the live run's data never reached the store")


def test_live_run_updates_charts_console_and_table(
    # live_run first: fixtures end in reverse, so the pages (still polling) close before
    # the live run's server stops, and a refused poll is not a console error.
    live_run: tuple[LiveServer, Path, subprocess.Popen[bytes]],
    pages: Pages,
) -> None:
    server, control, process = live_run
    pages.server = server
    charts = pages.open("/runs/live#charts")
    console = pages.open("/runs/live#console")
    table = pages.open("/?experiment=live")
    charts.wait_for_selector(".chart[data-key='live'][data-last-step='0']")
    console.locator("#console .line", has_text="marker 0").wait_for()
    assert table.locator("#live").is_visible()
    assert table.locator("tr[data-status='running']").count() == 1
    for k in (1, 2, 3):
        signal(control, str(k))
        row = wait_in_store(
            Path(),
            server,
            lambda run, lines, k=k: (
                run["metrics"]["live"]["count"] == k + 1 and f"marker {k}" in lines
            ),
            process,
        )
        assert row["status"] == "running"
        # In the store now: the open pages must show it within the deadline, without reload.
        charts.wait_for_function(
            """k => {
                const el = document.querySelector(".chart[data-key='live']");
                const path = el && el.querySelector('.scatterlayer .trace path.js-line');
                return el.dataset.lastStep === String(k) && path
                    && (path.getAttribute('d').match(/L/g) || []).length === k;
            }""",
            arg=k,
            timeout=UI_DEADLINE_MS,
        )
        console.locator("#console .line", has_text=f"marker {k}").wait_for(timeout=UI_DEADLINE_MS)
    assert charts.locator(".chart[data-key='live']").get_attribute("data-points") == "4"
    pages.screenshot(charts, "live-charts")
    pages.screenshot(console, "live-console")
    signal(control, "stop")
    assert process.wait(30) == 0
    charts.locator("#run-head .status", has_text="completed").wait_for(timeout=10_000)
    table.locator("tr[data-status='completed']").wait_for(timeout=10_000)
    table.locator("#live").wait_for(state="hidden")
