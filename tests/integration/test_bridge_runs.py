"""Bridges and the shape of runs: MLflow's nested runs become labkeep child runs, and a tool's
calls made before labkeep has a run (or before the bridge is installed) still land in one."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from bridge_helpers import SRC, labkeep_run, series, write

from labkeep._client import Client

# MLflow's hyperparameter-tuning example: one parent run, a nested run per trial.
MLFLOW_NESTED_SCRIPT = """
    import mlflow

    with mlflow.start_run(run_name="search") as parent:
        mlflow.log_param("trials", 2)
        for i, lr in enumerate([0.1, 0.01]):
            with mlflow.start_run(run_name=f"trial-{i}", nested=True, tags={"trial": i}):
                mlflow.log_param("lr", lr)
                for step in range(3):
                    mlflow.log_metric("loss", lr * (3 - step), step=step)
        mlflow.log_metric("best_loss", 0.01)
    try:
        with mlflow.start_run(run_name="broken", nested=False):
            with mlflow.start_run(run_name="dies", nested=True):
                mlflow.log_metric("x", 1.0)
                raise ValueError("boom")
    except ValueError:
        pass
"""


@pytest.mark.parametrize("mode", ["--bridge-only", None])
def test_mlflow_nested_runs_become_child_runs(tmp_path: Path, mode: str | None) -> None:
    pytest.importorskip("mlflow")
    write(tmp_path / "tune.py", MLFLOW_NESTED_SCRIPT)
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    labkeep_run(tmp_path, tmp_path / "store", *([mode] if mode else []), "tune.py", **env)
    client = Client(tmp_path / "store")
    try:
        runs = sorted(client.runs(), key=lambda r: r.number)
        parent = runs[0]
        assert parent.parent_uuid is None
        assert parent.params == {"trials": 2}
        assert series(parent, "best_loss") == [(0, 0.01)]
        assert "loss" not in parent.metrics and "x" not in parent.metrics
        children = list(parent.children)
        assert [c.name for c in children] == ["trial-0", "trial-1", "dies"]
        for child, lr in zip(children[:2], [0.1, 0.01], strict=True):
            assert child.parent_uuid == parent.uuid
            assert child.params == {"lr": lr}
            assert series(child, "loss") == [(s, pytest.approx(lr * (3 - s))) for s in range(3)]
            assert child.status.value == "completed"
        assert [list(c.tags) for c in children[:2]] == [["trial=0"], ["trial=1"]]
        assert children[2].status.value == "failed"
        assert series(children[2], "x") == [(0, 1.0)]
        assert len(runs) == 4  # the runner's run and its three children, nothing else
    finally:
        client.close()
