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


def test_a_script_init_after_a_bridged_call_continues_the_same_run(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    write(
        tmp_path / "train.py",
        """
        import mlflow
        import labkeep

        mlflow.log_param("alpha", 0.3)   # the bridge's first call: the runner's run
        run = labkeep.init(config={"batch": 8}, tags=["api"])  # the same run, no error
        mlflow.log_metric("loss", 0.5, step=0)
        run.log({"acc": 0.9}, step=0)
        print("same run:", labkeep.active_run() is run)
        """,
    )
    done = labkeep_run(tmp_path, tmp_path / "store", "--bridge-only", "train.py")
    assert "same run: True" in done.stdout
    client = Client(tmp_path / "store")
    try:
        runs = list(client.runs())
        assert len(runs) == 1
        run = runs[0]
        assert run.params == {"alpha": 0.3, "batch": 8}
        assert series(run, "loss") == [(0, 0.5)] and series(run, "acc") == [(0, 0.9)]
        assert "api" in run.tags
    finally:
        client.close()


def _python(tmp_path: Path, script: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABKEEP_", "WANDB_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, env.get("PYTHONPATH")) if p)
    env["LABKEEP_HOME"] = str(tmp_path / "store")
    env["WANDB_MODE"] = "offline"
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_mlflow_calls_before_labkeep_bridge_land_in_the_run(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    _python(
        tmp_path,
        f"""
        import mlflow

        mlflow.set_tracking_uri("sqlite:///{tmp_path / "mlflow.db"}")
        mlflow.start_run()
        mlflow.log_param("alpha", 0.3)
        mlflow.set_tag("team", "vision")
        mlflow.log_metric("loss", 0.5, step=0)

        import labkeep

        labkeep.bridge()                   # late: MLflow's run already holds values
        mlflow.log_metric("loss", 0.25, step=1)
        mlflow.end_run()
        run = labkeep.init(config={{"batch": 8}})   # continues the bridged run
        run.finish()
        """,
    )
    client = Client(tmp_path / "store")
    try:
        runs = list(client.runs())
        assert len(runs) == 1
        assert runs[0].params == {"alpha": 0.3, "batch": 8}
        assert series(runs[0], "loss") == [(0, 0.5), (1, 0.25)]
        assert list(runs[0].tags) == ["team=vision"]
    finally:
        client.close()


def test_wandb_run_started_before_labkeep_bridge_is_recorded(tmp_path: Path) -> None:
    pytest.importorskip("wandb")
    _python(
        tmp_path,
        """
        import wandb

        run = wandb.init(project="late", config={"lr": 0.1})

        import labkeep

        labkeep.bridge()
        for step in range(2):
            wandb.log({"loss": 1.0 / (step + 1)})
        run.summary["best"] = 0.5
        wandb.finish()
        """,
    )
    client = Client(tmp_path / "store")
    try:
        (run,) = list(client.runs())
        assert run.params == {"lr": 0.1}
        assert series(run, "loss") == [(0, 1.0), (1, 0.5)]
        assert run.summary["best"] == 0.5
    finally:
        client.close()
