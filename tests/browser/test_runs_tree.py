"""The runs table as a tree in Chromium: child runs under their parent behind an expander
with their count (a parent of 30 trials stays one row until opened), nested two deep,
collapsed again, listed flat by the "Flat" switch and by a filter; the run page links the
parent and lists the children."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from browser.harness import LiveServer, Pages, child_env

pytestmark = pytest.mark.browser

#: 1 plain; 2 parent of 3 (parent of 4) and 5; 6 a sweep-like parent of 30 trials (7-36).
#: Each run's number is awaited before the next starts, so the numbers are these.
FAMILY = """\
import sys, labkeep
store = sys.argv[1]
with labkeep.init("tree", name="plain", store=store, capture=False, system_metrics=0):
    pass
with labkeep.init("tree", name="parent", store=store, capture=False, system_metrics=0) as p:
    p.wait_registered(60)
    with labkeep.init(parent=p, name="kid-a") as a:
        a.wait_registered(60)
        a.log({"acc": 0.5})
        with labkeep.init(parent=a, name="grandkid") as g:
            g.wait_registered(60)
    with labkeep.init(parent=p, name="kid-b") as b:
        b.wait_registered(60)
        b.log({"acc": 0.7})
with labkeep.init("tree", name="many", store=store, capture=False, system_metrics=0) as m:
    m.wait_registered(60)
    for i in range(30):
        labkeep.init(parent=m, name=f"trial-{i}").finish("failed" if i == 0 else None)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("tree_ui")
    (root / "family.py").write_text(FAMILY)
    subprocess.run(
        [sys.executable, "family.py", str(root / "store")],
        cwd=root,
        env=child_env(root / "store"),
        check=True,
        capture_output=True,
        timeout=120,
    )
    live = LiveServer(root / "store").start()
    yield live
    live.stop()


def rows(page: Any) -> list[tuple[int, int]]:
    """(number, depth) of each run row, top to bottom."""
    found: list[list[str]] = page.locator("#runs-table tbody tr[data-number]").evaluate_all(
        "rows => rows.map(r => [r.dataset.number, r.dataset.depth])"
    )
    return [(int(n), int(d)) for n, d in found]


def wait_rows(page: Any, count: int) -> None:
    page.wait_for_function(
        f"document.querySelectorAll('#runs-table tbody tr[data-number]').length === {count}"
    )


def test_children_nest_under_their_parent_behind_an_expander(pages: Pages) -> None:
    page = pages.open("/")
    assert rows(page) == [(6, 0), (2, 0), (1, 0)]
    assert page.locator("#page-range").inner_text() == "1\u20133 of 3"
    many = page.locator("tr[data-number='6'] .expander")
    assert many.inner_text() == "\u25b8 30"
    assert "29 completed" in (many.get_attribute("title") or "")
    assert "1 failed" in (many.get_attribute("title") or "")
    assert page.locator("tr[data-number='1'] .expander").count() == 0

    page.click("tr[data-number='2'] .expander")
    wait_rows(page, 5)
    assert rows(page) == [(6, 0), (2, 0), (3, 1), (5, 1), (1, 0)]
    assert page.locator("tr[data-number='2'] .expander").get_attribute("aria-expanded") == "true"
    page.click("tr[data-number='3'] .expander")
    wait_rows(page, 6)
    assert rows(page) == [(6, 0), (2, 0), (3, 1), (4, 2), (5, 1), (1, 0)]
    indent = page.locator("tr[data-number='4'] .tree-cell").evaluate(
        "el => parseFloat(getComputedStyle(el).paddingLeft)"
    )
    assert indent > page.locator("tr[data-number='3'] .tree-cell").evaluate(
        "el => parseFloat(getComputedStyle(el).paddingLeft)"
    )
    assert page.locator("tr[data-number='5'] td.name").inner_text().endswith("kid-b")
    pages.screenshot(page, "runs-tree")

    page.click("tr[data-number='2'] .expander")  # closes the branch, grandchildren too
    wait_rows(page, 3)
    assert rows(page) == [(6, 0), (2, 0), (1, 0)]

    many.click()
    wait_rows(page, 33)
    trials = [n for n, depth in rows(page) if depth == 1]
    assert trials == list(range(7, 37))  # oldest first


def test_flat_switch_and_filters_list_every_run(pages: Pages) -> None:
    page = pages.open("/")
    page.check("#flat-toggle")
    wait_rows(page, 36)
    assert [n for n, _ in rows(page)] == list(range(36, 0, -1))
    assert page.locator("#runs-table .expander").count() == 0
    assert "flat=true" in page.url

    page = pages.open("/")
    page.fill("#filter", "name == 'kid-a' or name == 'grandkid'")
    page.press("#filter", "Enter")
    wait_rows(page, 2)
    assert rows(page) == [(4, 0), (3, 0)]
    assert page.locator("#flat-toggle").is_disabled()


def test_run_page_links_the_parent_and_lists_the_children(pages: Pages) -> None:
    page = pages.open("/runs/3")
    parent = page.locator("#run-parent")
    assert parent.inner_text() == "#2 parent"
    assert page.locator("#children-card h2").inner_text() == "Child runs (1)"
    children = page.locator("#run-children tr").evaluate_all("rs => rs.map(r => r.dataset.number)")
    assert children == ["4"]
    parent.click()
    page.wait_for_url("**/runs/2")
    page.locator("#children-card").wait_for()
    assert page.locator("#run-children tr").count() == 2
    assert "kid-b" in page.locator("#run-children").inner_text()
    pages.screenshot(page, "run-children")
