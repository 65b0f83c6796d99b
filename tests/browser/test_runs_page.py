"""The runs table in Chromium: rows, filter (and its inline error), sort, columns, pages,
selection, tags, delete and undo, and names that are markup shown as text."""

from __future__ import annotations

from typing import Any

import pytest

from browser.harness import XSS_NAME, Pages

pytestmark = pytest.mark.browser


def row_numbers(page: Any) -> list[int]:
    return [
        int(n)
        for n in page.locator("#runs-table tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.number)"
        )
    ]


def test_runs_table_lists_runs_with_status_colours(pages: Pages) -> None:
    page = pages.open("/")
    assert row_numbers(page) == [5, 4, 3, 2, 1]
    assert page.locator("#page-range").inner_text() == "1\u20135 of 5"
    failed = page.locator("tr[data-number='4'] .status")
    assert failed.inner_text() == "failed"
    assert "status-failed" in (failed.get_attribute("class") or "")
    colour = failed.evaluate("el => getComputedStyle(el).color")
    assert colour != page.locator("tr[data-number='1'] .status").evaluate(
        "el => getComputedStyle(el).color"
    )
    headers = page.locator("#runs-table thead th").all_inner_texts()
    assert any("lr" in h for h in headers) and any("loss" in h for h in headers)
    page.locator("#experiments a").first.wait_for()  # loaded beside the table, not before it
    sidebar = page.locator("#experiments").inner_text()
    assert "mnist" in sidebar and "<b>xss</b>" in sidebar
    pages.screenshot(page, "runs")


def test_markup_in_names_renders_as_text(pages: Pages) -> None:
    page = pages.open("/")
    cell = page.locator("tr[data-number='5'] td.name a")
    assert cell.inner_text() == XSS_NAME
    assert page.locator("#runs-table script").count() == 0
    assert page.locator("#runs-table b").count() == 0  # the experiment '<b>xss</b>' is text
    assert page.locator("tr[data-number='5'] .tag").first.inner_text().startswith("<i>tag</i>")
    assert page.evaluate("window.alerted === undefined")


def test_filter_with_the_query_language(pages: Pages) -> None:
    page = pages.open("/")
    page.fill("#filter", "params.lr < 0.05 and optimizer == 'adam'")
    page.press("#filter", "Enter")
    page.wait_for_function("document.querySelectorAll('#runs-table tbody tr').length === 2")
    assert row_numbers(page) == [3, 2]
    assert "where=" in page.url
    assert page.locator("#filter-error").is_hidden()


def test_a_bad_filter_shows_the_error_inline(pages: Pages) -> None:
    pages.watch.allow(r"status of 400")  # the API's answer to the bad filter, on purpose
    page = pages.open("/")
    page.fill("#filter", "lrr > 0.1")
    page.press("#filter", "Enter")
    error = page.locator("#filter-error")
    error.wait_for(state="visible")
    text = error.inner_text()
    assert "did you mean 'lr'" in text
    assert "^^^" in text
    assert page.locator("#filter").get_attribute("aria-invalid") == "true"
    assert row_numbers(page) == [5, 4, 3, 2, 1]  # the table keeps the last good result
    pages.screenshot(page, "bad-filter")
    page.fill("#filter", "lr > 0.05")
    page.press("#filter", "Enter")
    error.wait_for(state="hidden")
    assert row_numbers(page) == [4, 1]


def test_sort_by_clicking_headers(pages: Pages) -> None:
    page = pages.open("/?experiment=mnist")
    header = page.locator("#runs-table th[data-sort='params.lr']")
    header.click()
    page.wait_for_selector("#runs-table[data-query*='sort=-params.lr']")
    assert "sort=-params.lr" in page.url
    assert row_numbers(page) == [4, 1, 2, 3]
    page.locator("#runs-table th[data-sort='params.lr']").click()
    page.wait_for_selector("#runs-table[data-query*='sort=params.lr']")
    assert row_numbers(page) == [3, 2, 1, 4]
    assert page.locator("#runs-table th[data-sort='params.lr'] .arrow").inner_text() == "▲"


def test_column_picker_adds_and_removes_columns(pages: Pages) -> None:
    page = pages.open("/")
    page.click("#columns-button")
    picker = page.locator("#column-picker")
    picker.wait_for(state="visible")
    page.fill("#column-search", "best")
    picker.locator("label[data-key='best_acc'] input").check()
    page.wait_for_selector("#runs-table th[data-sort='summary.best_acc']")
    page.fill("#column-search", "cpu")
    picker.locator("label[data-key='sys/cpu_percent'] input").check()
    page.wait_for_selector("#runs-table th[data-sort=\"metrics['sys/cpu_percent']\"]")
    assert page.locator("tr[data-number='1'] td.col-summary").inner_text() == "1"
    picker.locator("label[data-key='sys/cpu_percent'] input").uncheck()
    page.wait_for_selector(
        "#runs-table th[data-sort=\"metrics['sys/cpu_percent']\"]", state="detached"
    )
    page.click("text=Reset to automatic")
    page.wait_for_selector("#runs-table th[data-sort='summary.best_acc']", state="detached")


def test_pages(pages: Pages) -> None:
    page = pages.open("/?limit=25")
    assert page.locator("#next-page").is_disabled()
    page = pages.open("/?offset=2&limit=25")
    assert row_numbers(page) == [3, 2, 1]
    assert page.locator("#page-range").inner_text() == "3\u20135 of 5"
    page.click("#prev-page")
    page.wait_for_function("document.querySelectorAll('#runs-table tbody tr').length === 5")


def test_select_and_compare(pages: Pages) -> None:
    page = pages.open("/")
    page.check("tr[data-number='1'] td.check input")
    page.check("tr[data-number='2'] td.check input")
    assert page.locator("#selection-bar").is_visible()
    assert page.locator("#compare-nav").inner_text() == "Compare (2)"
    page.click("#compare-selected")
    page.wait_for_url("**/compare?runs=1,2")
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator(".run-chip").count() == 2


def test_tags_from_the_table(pages: Pages) -> None:
    page = pages.open("/")
    page.check("tr[data-number='3'] td.check input")
    page.fill("#tag-input", "promising")
    page.click("#add-tag")
    tag = page.locator("tr[data-number='3'] .tag", has_text="promising")
    tag.wait_for()
    tag.locator("button").click()
    tag.wait_for(state="detached")


def test_delete_undo_and_trash(pages: Pages) -> None:
    page = pages.open("/")
    page.check("tr[data-number='2'] td.check input")
    page.click("#delete-selected")
    page.wait_for_function("!document.querySelector(\"#runs-table tr[data-number='2']\")")
    page.locator("#toast button", has_text="Undo").click()
    page.wait_for_selector("#runs-table tr[data-number='2']")
    page.check("tr[data-number='2'] td.check input")
    page.click("#delete-selected")
    page.wait_for_function("!document.querySelector(\"#runs-table tr[data-number='2']\")")
    page.click("#experiments a:has-text('Trash')")
    page.wait_for_selector("#runs-table tr[data-number='2']")
    assert row_numbers(page) == [2]
    page.check("tr[data-number='2'] td.check input")
    assert page.locator("#delete-selected").inner_text() == "Restore"
    page.click("#delete-selected")
    page.wait_for_selector("#runs-table td.empty")
    page.click("#experiments a:has-text('All runs')")
    page.wait_for_selector("#runs-table tr[data-number='2']")


def test_metric_columns_are_on_screen_at_1400_px_and_the_run_column_stays(
    pages: Pages,
) -> None:
    page = pages.open("/")
    page.set_viewport_size({"width": 1400, "height": 900})
    wrap = page.locator(".table-wrap").bounding_box()
    metrics = page.locator("#runs-table th.col-metric")
    assert metrics.count() >= 3  # loss, acc, val/loss
    for box in metrics.evaluate_all("els => els.map(e => e.getBoundingClientRect().toJSON())"):
        assert box["right"] <= wrap["x"] + wrap["width"] + 0.5, box
    # Params that are the same in every run listed are not the ones shown first.
    headers = page.locator("#runs-table thead th").all_inner_texts()
    assert not any(h.endswith("batch_size") for h in headers), headers
    pages.screenshot(page, "runs-1400")
    # Narrower, the table scrolls sideways and the run's number stays in view.
    page.set_viewport_size({"width": 900, "height": 900})
    page.locator(".table-wrap").evaluate("el => { el.scrollLeft = el.scrollWidth; }")
    number = page.locator("tr[data-number='1'] td.number").bounding_box()
    wrap = page.locator(".table-wrap").bounding_box()
    assert page.locator(".table-wrap").evaluate("el => el.scrollLeft") > 0
    assert number["x"] >= wrap["x"] - 0.5
    pages.screenshot(page, "runs-scrolled")
