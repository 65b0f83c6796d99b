"""A run's page in Chromium: overview, charts and their controls, system metrics, console,
code browser with highlighting, artifact previews, and markup shown as text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from browser.harness import XSS_NAME, Pages

pytestmark = pytest.mark.browser


def open_tab(page: Any, tab: str) -> None:
    page.click(f"#tabs a[data-tab={tab}]")
    page.wait_for_selector(f"#panel-{tab}:not([hidden])")


def test_overview(pages: Pages) -> None:
    page = pages.open("/runs/1")
    assert page.locator("#run-name").inner_text() == "lr-0.1"
    details = page.locator("#run-details").inner_text()
    assert "completed" in details and "train.py" in details and "not a git repository" in details
    params = page.locator("#params").inner_text()
    assert "optimizer" in params and "sgd" in params and "model.depth" in params
    metrics = page.locator("#metrics-table").inner_text()
    assert "val/loss" in metrics and "sys/cpu_percent" not in metrics
    assert page.locator("#tags .tag").first.inner_text().startswith("baseline")
    pages.screenshot(page, "overview")


def test_failed_run_shows_its_traceback(pages: Pages) -> None:
    page = pages.open("/runs/4")
    assert "FloatingPointError: loss is NaN at step 1" in page.locator("#traceback").inner_text()
    assert page.locator("#run-head .status").first.inner_text() == "failed"


def test_notes_and_tags_edit(pages: Pages) -> None:
    page = pages.open("/runs/3")
    page.fill("#notes", "try a larger batch <next>")
    page.click("#save-notes")
    page.locator("#toast", has_text="Notes saved").wait_for()
    page.fill("#new-tag", "candidate")
    page.press("#new-tag", "Enter")
    page.locator("#tags .tag", has_text="candidate").wait_for()
    again = pages.open("/runs/3")
    assert again.locator("#notes").input_value() == "try a larger batch <next>"
    again.locator("#tags .tag", has_text="candidate").locator("button").click()
    again.locator("#tags .tag", has_text="candidate").wait_for(state="detached")


def test_metric_charts_and_controls(pages: Pages) -> None:
    page = pages.open("/runs/1#charts")
    chart = page.locator("#panel-charts .chart[data-key='loss']")
    page.wait_for_selector("#panel-charts .chart[data-key='loss'][data-rendered=true]")
    assert chart.get_attribute("data-points") == "60"
    assert page.locator("#panel-charts .chart-card").count() == 3
    assert chart.locator(".scatterlayer .trace").count() == 1
    page.check("#log-scale")
    page.wait_for_function(
        "() => document.querySelector(\"#panel-charts .chart[data-key='loss']\").layout.yaxis.type === 'log'"
    )
    page.select_option("#x-axis", "rel")
    page.wait_for_function(
        "() => document.querySelector(\"#panel-charts .chart[data-key='loss']\").layout.xaxis.title.text === 'time (s)'"
    )
    page.locator("#smoothing").fill("0.6")
    page.locator("#smoothing").dispatch_event("change")
    page.wait_for_function(
        "() => document.querySelector(\"#panel-charts .chart[data-key='loss']\").data.length === 2"
    )
    pages.screenshot(page, "charts")
    page.select_option("#x-axis", "step")
    page.uncheck("#log-scale")
    page.locator("#smoothing").fill("0")
    page.locator("#smoothing").dispatch_event("change")


def hold_plotly(held: list[Any]) -> Callable[[Any], object]:
    """A ``prepare`` for Pages.open that holds every request for plotly.js in ``held``."""
    return lambda context: context.route("**/vendor/plotly.min.js", lambda r: held.append(r))


def test_chart_sketch_until_plotly_runs(pages: Pages) -> None:
    """Charts are drawn as still SVG sketches as soon as their histories arrive, and replaced
    by plotly.js's interactive charts once plotly.js has run."""
    held: list[Any] = []
    page = pages.open("/runs/1#charts", prepare=hold_plotly(held))
    sketch = "#panel-charts .chart[data-key='loss'][data-drawn=true] > svg.chart-sketch"
    page.wait_for_selector(f"{sketch} .trace")
    chart = page.locator("#panel-charts .chart[data-key='loss']")
    assert chart.get_attribute("data-rendered") is None
    assert chart.get_attribute("data-points") == "60"
    assert page.locator(f"{sketch} .trace").count() == 1
    labels = page.locator(f"{sketch} text").all_text_contents()
    assert "step" in labels and "0" in labels
    pages.screenshot(page, "sketch")
    assert held, "the page asked for plotly.js once a chart was sketched"
    for route in held:
        route.continue_()
    page.wait_for_selector("#panel-charts .chart[data-key='loss'][data-rendered=true]")
    assert page.locator("#panel-charts svg.chart-sketch").count() == 0
    assert chart.locator(".scatterlayer .trace").count() == 1


def test_chart_sketch_follows_the_options(pages: Pages) -> None:
    """The sketch draws what plotly.js will: wall time on x, log scale, a smoothed line over
    the raw one; an option changed before plotly.js runs redraws it."""
    held: list[Any] = []

    def prepare(context: Any) -> None:
        context.add_init_script(
            """localStorage.setItem("labkeep.chart", '{"x": "wall", "log": true, "smooth": 0.6}')"""
        )
        hold_plotly(held)(context)

    page = pages.open("/runs/1#charts", prepare=prepare)
    sketch = "#panel-charts .chart[data-key='loss'] > svg.chart-sketch"
    # the test runs logged their points within a millisecond: one x for all, a line of no width
    page.wait_for_selector(f"{sketch} .trace", state="attached")
    assert page.locator(f"{sketch} .trace[stroke-width='1.8']").count() == 1  # the smoothed line
    assert page.locator(f"{sketch} .trace[opacity='0.25']").count() == 1  # the raw line
    labels = page.locator(f"{sketch} text").all_text_contents()
    assert "wall time" in labels
    assert "1" in labels and any(t.startswith("1e\u2212") for t in labels)  # decades of loss
    page.select_option("#x-axis", "step")
    page.wait_for_function(
        f"() => [...document.querySelectorAll(\"{sketch} text\")].some((t) => t.textContent === 'step')"
    )
    for route in held:
        route.continue_()
    page.wait_for_selector("#panel-charts .chart[data-key='loss'][data-rendered=true]")
    assert page.locator("#panel-charts svg.chart-sketch").count() == 0
    page.select_option("#x-axis", "step")


def test_system_metrics_tab(pages: Pages) -> None:
    page = pages.open("/runs/1#system")
    page.wait_for_selector("#panel-system .chart[data-key='sys/cpu_percent'][data-rendered=true]")
    assert page.locator("#panel-system .chart-card").count() == 2


def test_console(pages: Pages) -> None:
    page = pages.open("/runs/1#console")
    page.wait_for_selector("#console .line")
    lines = page.locator("#console .line").all_inner_texts()
    assert lines == ["training with lr=0.1", "epoch 1 done", "epoch 2 done", "a warning on stderr"]
    assert "stderr" in (page.locator("#console .line").nth(3).get_attribute("class") or "")


def test_code_browser_highlights(pages: Pages) -> None:
    page = pages.open("/runs/1#code")
    page.wait_for_selector("#code-view .code-body")
    assert page.locator("#file-list a.active").inner_text().endswith("train.py")
    assert page.locator("#code-view .t-kn", has_text="import").count() > 0
    text = page.locator("#code-view pre.code").inner_text()
    assert 'XSS_NAME = "<script>alert(1)</script>"' in text
    assert page.locator("#code-view script").count() == 0
    page.click("#file-list a:has-text('installed packages')")
    page.wait_for_selector("#code-view table")
    pages.screenshot(page, "code")


def test_artifact_previews(pages: Pages) -> None:
    page = pages.open("/runs/1#artifacts")
    image = page.locator("#artifact-preview img")
    image.wait_for()
    page.wait_for_function(
        "() => document.querySelector('#artifact-preview img').naturalWidth === 48"
    )
    page.click("#artifact-list a[data-path='predictions.csv']")
    page.wait_for_selector("#artifact-preview table")
    assert page.locator("#artifact-preview thead th").all_inner_texts() == ["id", "label", "score"]
    assert page.locator("#artifact-preview tbody tr").count() == 20
    page.click("#artifact-list a[data-path='notes.txt']")
    page.locator("#artifact-preview pre", has_text="plain text artifact").wait_for()
    page.click("#artifact-list a[data-path='report.html']")
    frame = page.locator("#artifact-preview iframe")
    frame.wait_for()
    assert frame.get_attribute("sandbox") == "allow-scripts"
    assert page.frame_locator("#artifact-preview iframe").locator("h1").inner_text() == "Report"
    page.click("#artifact-list a[data-path='train.ipynb']")
    notebook = page.locator("#artifact-preview iframe")
    assert notebook.get_attribute("sandbox") == ""
    assert (notebook.get_attribute("src") or "").endswith("train.ipynb?render=html")
    pages.screenshot(page, "artifacts")


def test_markup_run_renders_as_text(pages: Pages) -> None:
    page = pages.open("/runs/5")
    assert page.locator("#run-name").inner_text() == XSS_NAME
    assert page.locator("#notes").input_value() == "<script>alert(3)</script>"
    assert "<img src=x onerror=alert(2)>" in page.locator("#params").inner_text()
    assert page.locator("#params img").count() == 0
    assert page.title() == f"labkeep · 5 {XSS_NAME}"
    open_tab(page, "console")
    page.locator("#console .line", has_text="<script>alert(4)</script>").wait_for()
    open_tab(page, "charts")
    page.wait_for_selector("#panel-charts .chart[data-rendered=true]")
    assert page.locator("#panel-main script, #panels script").count() == 0
    pages.screenshot(page, "xss")


def test_unknown_run_says_so(pages: Pages) -> None:
    pages.watch.allow(r"status of 404")
    page = pages.open("/runs/999", wait_ready=False)
    assert "no run '999'" in page.locator("#run-error").inner_text()


def test_pages_under_the_content_security_policy(pages: Pages) -> None:
    """With the UI's CSP enforced, every page (plotly charts, parallel coordinates included)
    works without a violation: a violation is a console error and fails this test."""
    page = pages.open("/runs/1#charts", enforce_csp=True)
    page.wait_for_selector("#panel-charts .chart[data-rendered=true]")
    page = pages.open("/compare?runs=1,2,3", enforce_csp=True)
    page.wait_for_selector("#compare-charts .chart[data-rendered=true]")
    page.locator("#scatter").scroll_into_view_if_needed()
    page.wait_for_selector("#scatter[data-rendered=true]")
    page = pages.open("/", enforce_csp=True)
    page.wait_for_selector("#runs-table tbody tr")
