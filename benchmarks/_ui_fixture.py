"""The runs of the web UI benchmark as plain values, so that labkeep and MLflow store the same data.

``fixture_runs(n)`` yields the 10,000 small runs (experiment, name, params, a 20-step series per
metric, tags, start and end times, status) and ``million_points(n)`` the one long series.
Only the standard library is imported at module level: the MLflow side imports this module
inside MLflow's own virtual environment, where labkeep is not installed.

    for run in fixture_runs(3):
        print(run.name, run.status, run.params["lr"], run.metrics["loss"][-1])
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

T0 = 1.7e9  # start time of the first run, seconds since the epoch
STEPS = 20
METRICS = (("loss", 1.0), ("acc", -1.0), ("val/loss", 1.1))
BIG_EXPERIMENT = "big"
BIG_NAME = "million"
BIG_METRIC = "loss"


@dataclass(frozen=True)
class FixtureRun:
    """One run of the fixture; times are seconds since the epoch, metric steps are 0..19."""

    index: int
    uuid: str
    experiment: str
    name: str
    start_time: float
    end_time: float
    status: str  # "completed" or "failed"
    params: dict[str, Any]
    summary: dict[str, float]
    tags: list[str]
    metrics: dict[str, list[float]]

    def metric_times(self) -> list[float]:
        """Wall-clock time of each step, one second apart from the run's start."""
        return [self.start_time + step for step in range(STEPS)]


def fixture_runs(runs: int) -> Iterator[FixtureRun]:
    """The first ``runs`` runs of the fixture, always the same values (one seeded generator)."""
    rng = random.Random(42)
    for i in range(runs):
        run_uuid = str(uuid.UUID(int=rng.getrandbits(128)))
        lr = 10 ** rng.uniform(-4, -1)
        metrics = {
            key: [scale * (1 / (1 + s * lr * 50)) + rng.gauss(0, 0.01) for s in range(STEPS)]
            for key, scale in METRICS
        }
        params = {
            "lr": lr,
            "batch_size": rng.choice([16, 32, 64, 128]),
            "optimizer": rng.choice(["sgd", "adam", "adamw"]),
            "model.depth": rng.randint(2, 12),
        }
        start_time = T0 + i * 60
        yield FixtureRun(
            index=i,
            uuid=run_uuid,
            experiment=f"exp{i % 5}",
            name=f"run-{i}",
            start_time=start_time,
            end_time=start_time + 30,
            status="completed" if i % 37 else "failed",
            params=params,
            summary={"best_acc": rng.random()},
            tags=["sweep"] + (["baseline"] if i % 100 == 0 else []),
            metrics=metrics,
        )


def million_points(points: int) -> tuple[Any, Any, Any]:
    """Steps (int64), values (float64) and times (float64, seconds) of the long metric, as
    numpy arrays: a slow sine wave with noise, 10 ms apart."""
    import numpy as np

    steps = np.arange(points, dtype="<i8")
    values = np.sin(steps / 5000.0) + np.random.default_rng(1).normal(0, 0.05, points)
    times = T0 + steps * 0.01
    return steps, values.astype("<f8"), times.astype("<f8")
