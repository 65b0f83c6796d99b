"""The sweep read API (``GET /api/v1/sweeps/{ref}``) against a real uvicorn server on a
SQLite store holding a real grid sweep of four trials, made by ``labkeep.sweep`` in a
subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import LiveServer
from labkeep.server._auth import Token, TokenSet

pytest.importorskip("optuna")

SRC = Path(__file__).parents[2] / "src"

#: A grid of four trials: x moves the loss a lot, opt a little.
SWEEP_SCRIPT = """\
import sys
import labkeep

def objective(run):
    x, opt = run.config["x"], run.config["opt"]
    loss = (x - 1.0) ** 2 + (0.01 if opt == "sgd" else 0.0)
    run.log({"loss": loss}, step=0)
    return loss

labkeep.sweep(objective, space={"x": [0.0, 3.0], "opt": ["adam", "sgd"]},
              minimize="loss", optimizer="grid", name="grid4", store=sys.argv[1])
"""


def make_grid_sweep(store: Path, work: Path) -> None:
    """Four trials, in a subprocess so that the sweep's runs and threads end with it."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "sweep4.py").write_text(SWEEP_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKEEP_")}
    env["PYTHONPATH"] = str(SRC)
    subprocess.run(
        [sys.executable, "sweep4.py", str(store)],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("api_sweep")
    make_grid_sweep(root / "store", root / "work")
    return root / "store"


@pytest.fixture(scope="module")
def live(store: Path) -> Iterator[LiveServer]:
    with LiveServer(store) as server:
        yield server


@pytest.fixture(scope="module")
def api(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{live.url}/api/v1", timeout=30) as client:
        yield client


def test_sweep_route_gives_trials_best_and_importances(api: httpx.Client) -> None:
    response = api.get("/sweeps/1")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sweep"]["number"] == 1 and body["sweep"]["status"] == "completed"
    assert body["objective"] == "loss" and body["direction"] == "minimize"
    assert body["optimizer"] == "grid" and body["max_trials"] == 4
    assert sorted(body["space"]) == ["opt", "x"]
    assert body["counts"] == {"completed": 4, "failed": 0, "pruned": 0, "total": 4}
    trials = body["trials"]
    assert len(trials) == 4 and [t["index"] for t in trials] == [1, 2, 3, 4]  # in run order
    assert [t["number"] for t in trials] == [2, 3, 4, 5]
    assert sorted((t["params"]["x"], t["params"]["opt"]) for t in trials) == [
        (0.0, "adam"), (0.0, "sgd"), (3.0, "adam"), (3.0, "sgd"),
    ]  # fmt: skip
    for trial in trials:
        x, opt = trial["params"]["x"], trial["params"]["opt"]
        assert trial["status"] == "completed"
        assert trial["value"] == pytest.approx((x - 1.0) ** 2 + (0.01 if opt == "sgd" else 0.0))
    best = next(t for t in trials if t["params"] == {"x": 0.0, "opt": "adam"})
    assert body["best"] == {"number": best["number"], "value": 1.0, "index": best["index"]}
    importances = body["importances"]
    assert sorted(importances) == ["opt", "x"] and importances["x"] > importances["opt"]


def test_a_trial_or_the_sweep_run_itself_resolves_to_the_sweep(api: httpx.Client) -> None:
    """A trial's run reference is no sweep: 404 naming what to do, as for an unknown run."""
    assert api.get("/sweeps/last").json()["sweep"]["number"] == 1
    trial = api.get("/sweeps/2")
    assert trial.status_code == 404
    assert "not a sweep" in trial.json()["error"]
    assert api.get("/sweeps/99").status_code == 404


def test_sweep_route_needs_a_read_token(store: Path) -> None:
    tokens = TokenSet([Token("r" * 32, False, "reader")])
    with LiveServer(store, tokens=tokens) as live:
        url = f"{live.url}/api/v1/sweeps/1"
        assert httpx.get(url).status_code == 401
        ok = httpx.get(url, headers={"Authorization": f"Bearer {'r' * 32}"})
        assert ok.status_code == 200 and len(ok.json()["trials"]) == 4


def test_polls_of_a_sweep_reuse_its_importances(live: LiveServer, api: httpx.Client) -> None:
    """The page polls every second; importances are fitted once per set of finished trials."""
    first = [api.get("/sweeps/1").json()["importances"] for _ in range(3)]
    assert first[0] == first[1] == first[2] and first[0]
    cache = live.app.state.sweep_importances
    assert len(cache._kept) == 1
