"""The media routes of the read API (what the UI's media panels call), against a real uvicorn
server on a store filled by ``labkeep.init()`` runs that logged media."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest

import labkeep
from conftest import LiveServer
from labkeep._media import decode_png


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    store = tmp_path_factory.mktemp("api-media") / "store"
    with labkeep.init("media", store=store) as run:
        for step in range(4):
            pixels = np.full((6, 5, 3), step * 50, dtype=np.uint8)
            run.log(
                {
                    "samples": labkeep.Image(pixels, caption=f"step {step}"),
                    "weights": labkeep.Histogram(np.arange(10.0) + step, bins=5),
                    "preds": labkeep.Table(
                        columns=["x", "y"], data=[[step, float("nan")], [1, float("inf")]]
                    ),
                },
                step=step,
            )
    with LiveServer(store) as live:
        yield live


@pytest.fixture
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + "/api/v1") as client:
        yield client


def test_keys_and_entries(api: httpx.Client) -> None:
    keys = api.get("/runs/1/media").json()
    assert keys == {
        "number": 1,
        "keys": {"preds": "table", "samples": "image", "weights": "histogram"},
    }
    entries = api.get("/runs/last/media/entries", params={"key": "samples"}).json()
    assert entries["kind"] == "image" and entries["steps"] == [0, 1, 2, 3]
    assert entries["entries"][2]["meta"] == {
        "width": 5,
        "height": 6,
        "channels": 3,
        "caption": "step 2",
    }
    one = api.get("/runs/1/media/entries", params={"key": "samples", "step": 3}).json()
    assert [e["step"] for e in one["entries"]] == [3]


def test_an_image_at_a_step_with_its_etag(api: httpx.Client) -> None:
    response = api.get("/runs/1/media/content", params={"key": "samples", "step": 2})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert decode_png(response.content)[0, 0].tolist() == [100, 100, 100]
    etag = response.headers["etag"]
    again = api.get(
        "/runs/1/media/content",
        params={"key": "samples", "step": 2},
        headers={"if-none-match": etag},
    )
    assert again.status_code == 304


def test_a_table_is_json_a_browser_parses(api: httpx.Client) -> None:
    response = api.get("/runs/1/media/content", params={"key": "preds", "step": 1})
    assert response.headers["content-type"] == "application/json"
    assert b"NaN" not in response.content
    assert response.json() == {"columns": ["x", "y"], "data": [[1, None], [1, "Infinity"]]}


def test_histograms_over_steps(api: httpx.Client) -> None:
    body = api.get("/runs/1/media/histograms", params={"key": "weights"}).json()
    assert body["steps"] == [0, 1, 2, 3]
    assert body["histograms"][0] == {"counts": [2, 2, 2, 2, 2], "edges": [0, 1.8, 3.6, 5.4, 7.2, 9]}
    assert len(body["grid"]) == 65 and body["grid"][0] == 0 and body["grid"][-1] == 12
    assert [sum(row) for row in body["z"]] == [10, 10, 10, 10]
    sampled = api.get("/runs/1/media/histograms", params={"key": "weights", "steps": 2}).json()
    assert sampled["steps"] == [0, 3]


def test_what_is_not_there_is_one_line(api: httpx.Client) -> None:
    missing = api.get("/runs/1/media/content", params={"key": "nope", "step": 0})
    assert missing.status_code == 404
    assert missing.json() == {
        "error": "run 1 has no media 'nope' (its media: preds, samples, weights)"
    }
    no_step = api.get("/runs/1/media/content", params={"key": "samples", "step": 9})
    assert no_step.status_code == 404 and "at step 9" in no_step.json()["error"]
    wrong = api.get("/runs/1/media/histograms", params={"key": "samples"})
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "'samples' holds image media, not histograms"
    assert api.get("/runs/99/media").status_code == 404
