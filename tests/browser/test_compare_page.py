"""The compare page in Chromium: overlaid charts, params with differences, parallel
coordinates and scatter."""

from __future__ import annotations

from typing import Any

import pytest

from browser.harness import XSS_NAME, Pages

pytestmark = pytest.mark.browser


def test_compare_three_runs(pages: Pages) -> None:
    page = pages.open("/compare?runs=1,2,3")
    assert page.locator(".run-chip").count() == 3
    page.wait_for_selector("#compare-charts .chart[data-key='loss'][data-rendered=true]")
    loss = page.locator("#compare-charts .chart[data-key='loss']")
    assert loss.locator(".scatterlayer .trace").count() == 3
    assert loss.get_attribute("data-points") == "180"
    differing = page.locator("#params-table tr.differs").evaluate_all(
        "rows => rows.map(r => r.dataset.key)"
    )
    assert differing == ["lr", "model.depth", "optimizer"]
    assert page.locator("#params-table tr[data-key='batch_size']").get_attribute("class") == ""
    page.check("#only-differences")
    assert page.locator("#params-table tbody tr").count() == 3
    pages.screenshot(page, "compare")
    page.locator("#parcoords").scroll_into_view_if_needed()
    assert page.locator("#parcoords polyline").count() == 3
    assert "model.depth" in page.locator("#parcoords svg").text_content()
    page.select_option("#parcoords-metric", "val/loss")
    page.locator("#parcoords svg text", has_text="val/loss (last)").wait_for()
    page.locator("#scatter").scroll_into_view_if_needed()
    page.wait_for_selector("#scatter[data-rendered=true]")
    assert page.locator("#scatter .scatterlayer .point").count() == 3
    page.select_option("#scatter-x", "optimizer")
    page.select_option("#scatter-y", "loss")
    page.wait_for_function(
        "() => document.querySelector('#scatter').layout.xaxis.ticktext.join() === 'adam,sgd'"
    )
    pages.screenshot(page, "compare-scatter")


def test_compare_system_metrics_on_demand(pages: Pages) -> None:
    page = pages.open("/compare?runs=1,2")
    page.click("text=Show 2 system metrics")
    page.wait_for_selector("#compare-charts .chart[data-key='sys/cpu_percent'][data-rendered=true]")


def test_compare_with_a_markup_name(pages: Pages) -> None:
    page = pages.open("/compare?runs=1,5")
    assert page.locator(".run-chip[data-number='5'] a").first.inner_text() == f"#5 {XSS_NAME}"
    page.wait_for_selector("#compare-charts .chart[data-key='loss'][data-rendered=true]")
    legend = page.locator("#compare-charts .chart[data-key='loss'] .legend").text_content() or ""
    assert XSS_NAME in legend
    assert page.locator("#compare script").count() == 0


def test_compare_sketch_shows_a_markup_name_as_text(pages: Pages) -> None:
    """Before plotly.js runs, the sketch of an overlaid chart has one line and one legend
    entry per run, names shown literally."""
    held: list[Any] = []
    page = pages.open(
        "/compare?runs=1,5",
        prepare=lambda context: context.route("**/vendor/plotly.min.js", lambda r: held.append(r)),
    )
    sketch = "#compare-charts .chart[data-key='loss'] > svg.chart-sketch"
    page.wait_for_selector(f"{sketch} .trace")
    assert page.locator(f"{sketch} .trace").count() == 2
    labels = page.locator(f"{sketch} text").all_text_contents()
    assert f"#5 {XSS_NAME}" in labels and "#1 lr-0.1" in labels
    assert page.locator("#compare script").count() == 0
    for route in held:
        route.continue_()
    page.wait_for_selector("#compare-charts .chart[data-key='loss'][data-rendered=true]")


def test_compare_without_runs_offers_a_form(pages: Pages) -> None:
    page = pages.open("/compare")
    page.fill("#compare-runs", "2, 3")
    page.press("#compare-runs", "Enter")
    page.wait_for_url("**/compare?runs=2%2C3")
    page.wait_for_selector(".run-chip[data-number='3']")
