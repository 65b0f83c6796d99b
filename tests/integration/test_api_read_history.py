"""A 1,000,000-point metric through the real server: downsampled to the requested budget
with its peaks, zoomable to full detail, and extendable with ``since``."""

from __future__ import annotations

import uuid
from array import array
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from test_api_read import LiveServer

from labkeep._client import Client
from labkeep.store._base import MetricColumns, RunFinish, RunStart, WriteBatch

N = 1_000_000
SPIKE_AT = 777_777


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, np.ndarray]]:
    """A store with one run whose metric ``x`` has a million points (and a spike), written
    through the store's own batch path, served by uvicorn."""
    store = tmp_path_factory.mktemp("big") / "store"
    rng = np.random.default_rng(7)
    values = np.sin(np.arange(N) / 5000.0) + rng.normal(scale=0.01, size=N)
    values[SPIKE_AT] = 9.0
    values[SPIKE_AT + 1] = -9.0
    steps, vals, times = array("q"), array("d"), array("d")
    steps.frombytes(np.arange(N, dtype="<i8").tobytes())
    vals.frombytes(values.astype("<f8").tobytes())
    times.frombytes((1.7e9 + np.arange(N) * 0.01).astype("<f8").tobytes())
    client = Client(store)
    run_uuid = str(uuid.uuid4())
    client.store.apply(
        WriteBatch(
            run_uuid=run_uuid,
            writer="bulk",
            position=1,
            start=RunStart(uuid=run_uuid, experiment="big", name="big", start_time=1.7e9),
            metrics={"x": MetricColumns(steps, vals, times)},
            finish=RunFinish("completed", 1.7e9 + N * 0.01),
        )
    )
    client.close()
    with LiveServer(Path(store)) as live:
        yield live.url, values


def history(url: str, **params: object) -> dict[str, object]:
    response = httpx.get(f"{url}/api/v1/runs/1/metrics/x/history", params=params, timeout=60)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_a_million_points_arrive_as_at_most_n(big: tuple[str, np.ndarray]) -> None:
    url, values = big
    body = history(url, points=1000)
    assert body["total"] == N
    assert body["downsampled"] is True
    steps = body["steps"]
    got = body["values"]
    assert isinstance(steps, list) and isinstance(got, list)
    assert len(steps) <= 1000
    assert steps[0] == 0 and steps[-1] == N - 1
    assert max(got) == 9.0 and min(got) == -9.0  # the spike survives downsampling
    assert SPIKE_AT in steps and SPIKE_AT + 1 in steps
    assert max(got) == values.max() and min(got) == values.min()
    assert len(history(url, points=200)["steps"]) <= 200  # type: ignore[arg-type]


def test_zooming_in_gives_full_detail(big: tuple[str, np.ndarray]) -> None:
    url, values = big
    body = history(url, points=1000, x_min=SPIKE_AT - 100, x_max=SPIKE_AT + 99)
    assert body["downsampled"] is False
    assert body["steps"] == list(range(SPIKE_AT - 100, SPIKE_AT + 100))
    assert body["values"] == values[SPIKE_AT - 100 : SPIKE_AT + 100].tolist()


def test_since_returns_only_new_points(big: tuple[str, np.ndarray]) -> None:
    url, _ = big
    body = history(url, since=N - 3)
    assert body["steps"] == [N - 3, N - 2, N - 1]
    assert body["total"] == N


def test_time_axis_zoom(big: tuple[str, np.ndarray]) -> None:
    url, _ = big
    start = 1.7e9 + 100.0
    body = history(url, x="time", x_min=start, x_max=start + 0.095)
    times = body["times"]
    assert isinstance(times, list)
    assert body["steps"] == list(range(10_000, 10_010))
    assert all(start <= t <= start + 0.095 for t in times)
