"""The sweep page in Chromium over a real grid sweep of four trials (``labkeep.sweep`` in a
subprocess) whose last trial waits for the test: the open page shows the running sweep, then
follows it to its end without a reload (objective per trial with the best so far, parallel
coordinates, importances, slices, the trials), and links to and from the runs pages."""

from __future__ import annotations

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
pytest.importorskip("optuna")

#: x moves the loss a lot and opt a little; the fourth trial waits for the file ``go``.
SWEEP_SCRIPT = """\
import os, time
import labkeep

calls = []

def objective(run):
    calls.append(1)
    if len(calls) == 4:
        deadline = time.time() + 90
        while not os.path.exists("go") and time.time() < deadline:
            time.sleep(0.05)
    x, opt = run.config["x"], run.config["opt"]
    loss = (x - 1.0) ** 2 + (0.01 if opt == "sgd" else 0.0)
    run.log({"loss": loss}, step=0)
    return loss

labkeep.sweep(objective, space={"x": [0.0, 3.0], "opt": ["adam", "sgd"]},
              minimize="loss", optimizer="grid", name="grid4")
"""

#: How long the open page may take to show what reached the store.
UI_DEADLINE_MS = 3000


class RunningSweep:
    """The sweep's process, the file that lets its last trial go, and the server."""

    def __init__(self, work: Path, process: subprocess.Popen[bytes], live: LiveServer) -> None:
        self.work = work
        self.process = process
        self.live = live

    def sweep(self) -> dict[str, Any] | None:
        response = httpx.get(f"{self.live.url}/api/v1/sweeps/1", timeout=30)
        return response.json() if response.status_code == 200 else None

    def wait(self, ready: Any) -> dict[str, Any]:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            body = self.sweep()
            if body is not None and ready(body):
                return body
            time.sleep(0.1)
        raise AssertionError(f"the sweep did not get there: {self.sweep()}")

    def release(self) -> dict[str, Any]:
        """Let the last trial finish; returns the sweep once it completed."""
        (self.work / "go").write_text("")
        self.process.wait(60)
        assert self.process.returncode == 0, self.process.stderr
        return self.wait(lambda body: body["sweep"]["status"] == "completed")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSweep]:
    root = tmp_path_factory.mktemp("sweep_ui")
    work = root / "work"
    work.mkdir()
    (work / "sweep4.py").write_text(SWEEP_SCRIPT)
    process = subprocess.Popen(
        [sys.executable, "sweep4.py"],
        cwd=work,
        env=child_env(root / "store"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    live = LiveServer(root / "store").start()
    running = RunningSweep(work, process, live)
    try:
        running.wait(lambda body: body["counts"]["completed"] == 3)
        yield running
    finally:
        (work / "go").write_text("")
        try:
            process.wait(30)
        finally:
            if process.poll() is None:
                process.kill()
            live.stop()


@pytest.fixture(scope="module")
def server(sweep: RunningSweep) -> LiveServer:
    """The pages of this module open on the sweep's store."""
    return sweep.live


def plot_points(page: Any, selector: str) -> int:
    count: int = page.locator(selector).evaluate("el => el.data ? el.data[0].x.length : -1")
    return count


def test_sweep_page_follows_the_running_sweep_to_its_end(pages: Pages, sweep: RunningSweep) -> None:
    page = pages.open("/sweeps/1")
    assert page.locator("#sweep-status").inner_text() == "running"
    page.wait_for_selector("#objective-plot[data-rendered=true]")
    assert plot_points(page, "#objective-plot") == 3
    assert page.locator("#trials-table tbody tr").count() == 4  # the fourth is running
    assert page.locator("#sweep-parcoords polyline").count() == 4
    pages.screenshot(page, "sweep-running")

    body = sweep.release()
    page.wait_for_function(
        "document.getElementById('objective-plot').dataset.points === '4'",
        timeout=UI_DEADLINE_MS + 2000,
    )
    page.wait_for_function(
        "document.getElementById('sweep-status').innerText === 'completed'",
        timeout=UI_DEADLINE_MS,
    )
    assert page.url.endswith("/sweeps/1")  # no reload: the same page followed the sweep
    assert "4 of 4 trials done (4 completed, 0 failed)" in page.inner_text("#sweep-progress")

    # objective per trial, with the best so far as a step line
    traces = page.locator("#objective-plot").evaluate(
        "el => el.data.map(t => ({name: t.name, x: Array.from(t.x), y: Array.from(t.y)}))"
    )
    values = {t["index"]: t["value"] for t in body["trials"]}
    assert traces[0]["x"] == [1, 2, 3, 4]
    assert traces[0]["y"] == pytest.approx([values[i] for i in (1, 2, 3, 4)])
    assert traces[1]["name"] == "best so far"
    running_best = [min(values[j] for j in range(1, i + 1)) for i in (1, 2, 3, 4)]
    assert traces[1]["y"] == pytest.approx(running_best)

    # best trial, parallel coordinates, importances (x moves the loss, opt hardly), slices
    best = body["best"]
    assert best["value"] == 1.0
    assert page.locator("#sweep-best a").get_attribute("href") == f"/runs/{best['number']}"
    axes = page.locator("#sweep-parcoords svg > text").evaluate_all(
        "texts => texts.map(t => t.textContent)"
    )
    assert {"x", "opt", "loss"} <= set(axes)
    assert page.locator("#sweep-parcoords polyline").count() == 4
    importances = page.locator("#importances-plot")
    importances.wait_for()
    assert importances.get_attribute("data-params") == "x,opt"
    for param in ("x", "opt"):
        page.wait_for_selector(f"#slices [data-param='{param}'][data-points='4']")
    slice_x = page.locator("#slices [data-param='opt']").evaluate("el => Array.from(el.data[0].x)")
    assert sorted(slice_x) == ["adam", "adam", "sgd", "sgd"]

    # the trials, best first, each linking to its run
    rows = page.locator("#trials-table tbody tr")
    assert rows.count() == 4
    assert rows.first.get_attribute("data-number") == str(best["number"])
    assert page.locator("#trials-table .status-completed").count() == 4
    pages.screenshot(page, "sweep-done")


def test_sweep_page_links_to_its_trials_and_the_sweep_run_links_back(
    pages: Pages, sweep: RunningSweep
) -> None:
    body = sweep.release()
    trials = sorted(t["number"] for t in body["trials"])
    # Under the UI's Content-Security-Policy every chart still draws (a violation is a
    # console error, which fails the test).
    strict = pages.open("/sweeps/1", enforce_csp=True)
    strict.wait_for_selector("#importances-plot[data-rendered=true]")
    strict.wait_for_selector("#slices [data-param='x'][data-rendered=true]")
    page = pages.open("/sweeps/1")
    page.click("#sweep-runs-link")
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_function("document.querySelectorAll('#runs-table tbody tr').length === 4")
    numbers = page.locator("#runs-table tbody tr").evaluate_all(
        "rows => rows.map(r => Number(r.dataset.number))"
    )
    assert sorted(numbers) == trials  # the sweep's trials, not the sweep run itself
    assert page.input_value("#filter") == "sweep == 1"

    run_page = pages.open("/runs/1")
    assert run_page.locator("#sweep-link").get_attribute("href") == "/sweeps/1"
    run_page.click("#sweep-link")
    run_page.wait_for_selector("#objective-plot[data-rendered=true]")
    trial_page = pages.open(f"/runs/{trials[0]}")
    assert trial_page.locator("#sweep-link").get_attribute("href") == "/sweeps/1"


def test_a_run_that_is_no_sweep_says_so(pages: Pages, sweep: RunningSweep) -> None:
    body = sweep.release()
    trial = body["trials"][0]["number"]
    pages.watch.allow("status of 404")
    page = pages.open(f"/sweeps/{trial}", wait_ready=False)
    error = page.locator("#sweep-error")
    error.wait_for()
    assert "not a sweep" in error.inner_text()
