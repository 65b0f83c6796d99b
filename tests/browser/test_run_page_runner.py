"""The run page of runs that ``labkeep run`` started: the command on the overview, a short
run's system chart, and a running run's live duration and Stop button."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser.harness import LiveServer, Pages, child_env

pytestmark = pytest.mark.browser

FLAGS = """\
import argparse
import labkeep

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float, default=-1.0)
parser.add_argument("--epochs", type=int, default=3)
args = parser.parse_args()
run = labkeep.init()
run.log({"sys/cpu_percent": 12.5, "loss": 0.25}, step=0)
"""

SLEEPER = """\
import time
print("started", flush=True)
while True:
    time.sleep(0.05)
"""


def labkeep_run(work: Path, store: Path, *args: str) -> subprocess.Popen[bytes]:
    env = child_env(store)
    env["LABKEEP_SYSTEM_METRICS"] = "0"
    return subprocess.Popen(
        [sys.executable, "-m", "labkeep.cli", "run", "-y", "-q", *args],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Run 1: ``labkeep run flags.py x=2.0``, one point of each metric."""
    work = tmp_path_factory.mktemp("cli-run")
    (work / "flags.py").write_text(FLAGS)
    process = labkeep_run(work, work / "store", "flags.py", "x=2.0")
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err.decode()
    server = LiveServer(work / "store").start()
    yield server
    server.stop()


@pytest.fixture()
def running(tmp_path: Path) -> Iterator[tuple[LiveServer, subprocess.Popen[bytes]]]:
    """A ``labkeep run`` of a script that sleeps until stopped, and a server on its store."""
    (tmp_path / "sleeper.py").write_text(SLEEPER)
    store = tmp_path / "store"
    process = labkeep_run(tmp_path, store, "--no-capture", "sleeper.py")
    server = LiveServer(store)
    try:
        deadline = time.monotonic() + 60
        while not (store / "labkeep.db").exists():
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.05)
        server.start()
        yield server, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(30)
        server.stop()


def test_the_overview_shows_the_labkeep_run_command(cli_server: LiveServer, pages: Pages) -> None:
    pages.server = cli_server
    page = pages.open("/runs/1")
    details = page.locator("#run-details")
    details.wait_for()
    rows = dict(
        zip(
            details.locator("th").all_inner_texts(),
            details.locator("td").all_inner_texts(),
            strict=True,
        )
    )
    assert rows["command"] == "labkeep run flags.py x=2.0", rows
    assert "[object Object]" not in details.inner_text()
    pages.screenshot(page, "cli-run-overview")


def test_a_single_point_chart_has_a_range_around_its_point(
    cli_server: LiveServer, pages: Pages
) -> None:
    pages.server = cli_server
    page = pages.open("/runs/1#system")
    chart = page.locator(".chart[data-key='sys/cpu_percent'][data-rendered='true']")
    chart.wait_for(timeout=30_000)  # drawn by plotly.js, not the sketch
    layout: dict[str, Any] = chart.evaluate(
        """el => ({x: el._fullLayout.xaxis.range, y: el._fullLayout.yaxis.range,
                  mode: el._fullData[0].mode})"""
    )
    x_lo, x_hi = layout["x"]
    y_lo, y_hi = layout["y"]
    assert x_lo >= 0 and x_hi > 0, layout  # step 0 of a run: no negative steps
    assert y_lo <= 12.5 < y_hi, layout
    assert "markers" in layout["mode"]
    pages.screenshot(page, "single-point-system")


def test_a_running_runs_duration_advances(
    running: tuple[LiveServer, subprocess.Popen[bytes]], pages: Pages
) -> None:
    server, _ = running
    pages.server = server
    page = pages.open("/runs/1")
    duration = page.locator("#run-duration")
    first = duration.inner_text()
    assert first.startswith("duration ")
    # It ticks on (the store's duration moves only with the 30 s heartbeat): four readings.
    page.wait_for_function(
        """() => {
            const seen = (window.seenDurations ||= new Set());
            seen.add(document.querySelector('#run-duration').textContent);
            return seen.size >= 4;
        }""",
        timeout=10_000,
    )


def test_stop_ends_a_running_run(
    running: tuple[LiveServer, subprocess.Popen[bytes]], pages: Pages
) -> None:
    server, process = running
    pages.server = server
    page = pages.open("/runs/1")
    stop = page.locator("#stop-run")
    assert stop.inner_text() == "Stop"
    stop.click()
    assert stop.inner_text() == "Stop the run?"  # a second click, so one slip does not
    stop.click()
    # Interrupted; killed only if the runner took longer than the grace period to stop.
    ended = page.locator("#run-head .status:not(.status-running)")
    ended.wait_for(timeout=60_000)
    assert ended.inner_text() in ("interrupted", "killed")
    assert page.locator("#stop-run").count() == 0
    assert page.locator("#delete-run").is_visible()
    assert process.wait(30) in (130, -9)
    pages.screenshot(page, "stopped")
