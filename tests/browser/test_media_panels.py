"""The media panels in Chromium: images with a step slider, a plotly figure, histograms over
steps, a table that sorts on a click, and the compare page's media side by side.

The store is this module's own (``populate_media.py``): runs 1 and 2 log 12 steps of images
whose red channel is ``20 * step`` and green ``200 * run``, a pair of images, a histogram and
a table per step; run 1 a plotly figure; run 3 only a scalar."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser.harness import LiveServer, Pages, child_env

pytestmark = pytest.mark.browser
POPULATE = Path(__file__).with_name("populate_media.py")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server on a store of runs that logged media (what ``pages`` opens)."""
    store = tmp_path_factory.mktemp("media") / "store"
    env = child_env(store)
    env["LABKEEP_CAPTURE"] = "0"
    env["LABKEEP_SYSTEM_METRICS"] = "0"
    subprocess.run(
        [sys.executable, str(POPULATE), str(store)],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    live = LiveServer(store).start()
    yield live
    live.stop()


def open_media(pages: Pages, run: int) -> Any:
    page = pages.open(f"/runs/{run}#media")
    page.wait_for_selector("#panel-media:not([hidden])")
    return page


def card(page: Any, key: str) -> Any:
    return page.locator(f".media-card[data-key='{key}']")


def slide(page: Any, key: str, index: int) -> None:
    card(page, key).locator(".media-step").evaluate(
        "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", str(index)
    )


def wait_image(page: Any, key: str, step: int, index: int = 0) -> Any:
    image = card(page, key).locator(f"img.media-image[data-step='{step}'][data-index='{index}']")
    image.wait_for()
    page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=image.element_handle())
    return image


def red_of(image: Any) -> int:
    """The red channel of an image's top-left pixel, read back through a canvas."""
    return int(
        image.evaluate(
            "img => { const c = document.createElement('canvas'); c.width = img.naturalWidth; "
            "c.height = img.naturalHeight; const g = c.getContext('2d'); g.drawImage(img, 0, 0); "
            "return g.getImageData(0, 0, 1, 1).data[0]; }"
        )
    )


def test_the_media_tab_lists_every_key_with_its_kind(pages: Pages) -> None:
    page = open_media(pages, 1)
    assert page.locator("#tabs a[data-tab=media] .badge").inner_text() == "5"
    page.wait_for_selector("#media-grid")
    kinds = page.locator(".media-card").evaluate_all(
        "cards => cards.map(c => [c.dataset.key, c.dataset.kind])"
    )
    assert kinds == [
        ["figure", "plotly"],
        ["pair", "image"],
        ["preds", "table"],
        ["samples", "image"],
        ["weights", "histogram"],
    ]


def test_the_image_slider_shows_each_step(pages: Pages) -> None:
    page = open_media(pages, 1)
    latest = wait_image(page, "samples", 11)  # the last step first
    assert red_of(latest) == 220
    assert card(page, "samples").locator("figcaption").inner_text() == "run 0 step 11"
    slide(page, "samples", 3)
    image = wait_image(page, "samples", 3)
    assert red_of(image) == 60
    assert card(page, "samples").locator(".media-step-label").inner_text() == "step 3"
    assert card(page, "samples").locator("figcaption").inner_text() == "run 0 step 3"
    slide(page, "pair", 4)
    first, second = wait_image(page, "pair", 4, 0), wait_image(page, "pair", 4, 1)
    assert (red_of(first), red_of(second)) == (80, 175)
    pages.screenshot(page, "media-run")


def test_a_plotly_figure_draws_with_the_bundled_plotly(pages: Pages) -> None:
    page = open_media(pages, 1)
    plot = card(page, "figure").locator(".media-plotly")
    plot.locator(".main-svg").first.wait_for()
    assert plot.locator(".barlayer .point").count() == 3
    assert card(page, "figure").get_attribute("data-step") == "5"


def test_histograms_over_steps_and_at_the_chosen_step(pages: Pages) -> None:
    page = open_media(pages, 2)
    weights = card(page, "weights")
    weights.locator(".media-heatmap .main-svg").first.wait_for()
    bars = weights.locator(".media-bars")
    bars.locator(".barlayer .point").first.wait_for()
    assert bars.locator(".barlayer .point").count() == 20
    last = bars.get_attribute("data-counts")
    slide(page, "weights", 0)
    page.wait_for_function(
        "([el, before]) => el.dataset.counts !== before", arg=[bars.element_handle(), last]
    )
    counts = [int(c) for c in (bars.get_attribute("data-counts") or "").split(",")]
    assert sum(counts) == 500
    assert weights.locator(".media-step-label").inner_text() == "step 0"


def test_a_table_sorts_on_a_click(pages: Pages) -> None:
    page = open_media(pages, 1)
    table = card(page, "preds").locator("table.media-table")
    table.locator("tbody tr").first.wait_for()

    def column(n: int) -> list[str]:
        return [
            str(t)
            for t in table.locator(f"tbody tr td:nth-child({n})").evaluate_all(
                "cells => cells.map(c => c.textContent)"
            )
        ]

    assert column(1) == ["0", "1", "2", "3", "4", "5"]
    table.locator("th", has_text="score").click()
    assert column(3) == ["0", "0.1", "0.4", "0.5", "0.7", "0.8"]
    table.locator("th", has_text="score").click()
    assert column(3) == ["0.8", "0.7", "0.5", "0.4", "0.1", "0"]
    assert "desc" in (table.locator("th", has_text="score").get_attribute("class") or "")
    table.locator("th", has_text="label").click()
    assert column(2) == ["cat", "cat", "cat", "cat", "dog", "dog"]
    assert card(page, "preds").locator(".media-table-note").inner_text() == "6 rows"


def test_a_run_without_media_says_so(pages: Pages) -> None:
    page = open_media(pages, 3)
    assert "No media logged" in page.locator("#media-empty").inner_text()
    assert page.locator("#tabs a[data-tab=media] .badge").count() == 0


def test_the_compare_page_shows_media_side_by_side(pages: Pages) -> None:
    page = pages.open("/compare?runs=1,2,3")
    section = page.locator("#media-section")
    section.scroll_into_view_if_needed()
    samples = card(page, "samples")
    cells = samples.locator(".media-cell")
    cells.first.wait_for()
    assert cells.evaluate_all("cells => cells.map(c => c.dataset.run)") == ["1", "2", "3"]
    assert samples.locator(".media-run").all_inner_texts() == ["#1", "#2", "#3"]
    latest = samples.locator(".media-cell[data-run='1'] img[data-step='11']")
    latest.wait_for()
    page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=latest.element_handle())
    assert red_of(latest) == 220
    assert "not logged in this run" in cells.nth(2).inner_text()
    slide(page, "samples", 2)
    one = samples.locator(".media-cell[data-run='1'] img[data-step='2']")
    two = samples.locator(".media-cell[data-run='2'] img[data-step='2']")
    for image in (one, two):
        image.wait_for()
        page.wait_for_function(
            "el => el.complete && el.naturalWidth > 0", arg=image.element_handle()
        )
    assert (red_of(one), red_of(two)) == (40, 40)
    green = int(
        two.evaluate(
            "img => { const c = document.createElement('canvas'); c.width = 1; c.height = 1; "
            "const g = c.getContext('2d'); g.drawImage(img, 0, 0); "
            "return g.getImageData(0, 0, 1, 1).data[1]; }"
        )
    )
    assert green == 200
    keys = page.locator("#media-grid .media-card").evaluate_all(
        "cards => cards.map(c => c.dataset.key)"
    )
    assert keys == ["figure", "pair", "preds", "samples", "weights"]
    pages.screenshot(page, "media-compare")


def test_media_panels_under_the_content_security_policy(pages: Pages) -> None:
    """Images, plotly figures, heatmaps and tables draw with the UI's CSP enforced (a
    violation is a console error and fails the test)."""
    page = pages.open("/runs/1#media", enforce_csp=True)
    page.wait_for_selector(".media-card[data-key='samples'] img.media-image[data-step='11']")
    page.wait_for_selector(".media-card[data-key='weights'] .media-heatmap .main-svg")
    page.wait_for_selector(".media-card[data-key='figure'] .media-plotly .main-svg")
    page.wait_for_selector(".media-card[data-key='preds'] table.media-table tbody tr")
    page = pages.open("/compare?runs=1,2", enforce_csp=True)
    page.locator("#media-section").scroll_into_view_if_needed()
    page.wait_for_selector(".media-cell[data-run='2'] img.media-image[data-step='11']")
