"""A run's page in Chromium shows its models with the registry's versions of them, and the
artifact versions it used and produced, linked to the runs on the other end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import labkeep
from browser.harness import Pages
from conftest import LiveServer

pytestmark = pytest.mark.browser


@pytest.fixture
def lineage_pages(
    browser: Any,
    screenshot_dir: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Pages]:
    """Run 1 logs a model, registered as iris-clf v1 @production, and train-set v0; run 2
    uses train-set:latest and logs predictions v0."""
    monkeypatch.setenv("LABKEEP_CAPTURE", "0")
    monkeypatch.setenv("LABKEEP_SYSTEM_METRICS", "0")
    store = tmp_path / "store"
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("x,y\n1,2\n")
    X, y = load_iris(return_X_y=True)
    with labkeep.init(store=str(store)) as run:
        run.log_model(LogisticRegression(max_iter=500).fit(X, y), "model")
        run.log_artifact(data, name="train-set", type="dataset")
    labkeep.register_model("runs:/1/model", "iris-clf", store=str(store))
    labkeep.set_alias("iris-clf", "production", version=1, store=str(store))
    preds = tmp_path / "preds.csv"
    preds.write_text("0\n1\n")
    with labkeep.init(store=str(store)) as run:
        run.use_artifact("train-set:latest")
        run.log_artifact(preds, name="predictions", type="predictions")
    server = LiveServer(store).start()
    opened = Pages(browser, server, screenshot_dir, request.node.name)
    yield opened
    opened.close()
    server.stop()


def test_run_page_shows_models_and_artifact_versions(lineage_pages: Pages) -> None:
    page = lineage_pages.open("/runs/1", enforce_csp=True)  # a violation fails the test
    page.wait_for_selector("#models-card:not([hidden])")
    row = page.locator("#models-table tr[data-model=model]")
    assert "sklearn" in row.inner_text()
    assert row.locator(".registered").inner_text() == "iris-clf v1 @production"
    produced = page.locator("#produced-artifacts tr[data-artifact='train-set:v0']")
    assert "dataset" in produced.inner_text()
    assert produced.locator("a").inner_text() == "2"  # the run that used it
    lineage_pages.screenshot(page, "lineage-producer")
    assert produced.locator("a").get_attribute("href") == "/runs/2"
    page = lineage_pages.open("/runs/2")
    page.wait_for_selector("#lineage-card:not([hidden])")
    used = page.locator("#used-artifacts tr[data-artifact='train-set:v0']")
    assert used.locator("a").inner_text() == "1"  # the run that produced it
    assert page.locator("#produced-artifacts tr[data-artifact='predictions:v0']").count() == 1
    assert page.locator("#models-card").is_hidden()  # run 2 has no model
    lineage_pages.screenshot(page, "lineage-consumer")
