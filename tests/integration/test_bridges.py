"""Bridges: scripts written for MLflow, W&B, TensorBoard and Sacred, tracked by ``labkeep run``.

Each script has the shape of its tool's quickstart and runs unchanged in a real ``labkeep run``
subprocess with the real tool installed; what labkeep recorded is compared field by field with
what the script logged (and, where the tool ran too, with what the tool wrote itself).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from bridge_helpers import SRC, TOOL_MODULES, labkeep_run, last_run, series, write

from labkeep._client import Client
from labkeep._views import RunView

MLFLOW_SCRIPT = """
    import mlflow

    alpha = 0.5

    with mlflow.start_run(tags={"team": "vision"}) as run:
        mlflow.log_params({"alpha": alpha, "l1_ratio": 0.1})
        mlflow.log_param("solver", "adam")
        mlflow.set_tag("stage", "dev")
        mlflow.set_tags({"owner": "ada"})
        for i in range(3):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
        mlflow.log_metrics({"rmse": 0.7, "r2": 0.3}, step=2)
        with open("weights.txt", "w") as f:
            f.write("weights")
        mlflow.log_artifact("weights.txt", artifact_path="model")
        mlflow.log_dict({"layers": [64, 32]}, "config/net.json")
        mlflow.log_text("fine", "notes.txt")
        print("mlflow run", run.info.run_id)
"""


def check_mlflow_run(run: RunView, alpha: float) -> None:
    assert run.params == {"alpha": alpha, "l1_ratio": 0.1, "solver": "adam"}
    assert series(run, "loss") == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]
    assert series(run, "rmse") == [(2, 0.7)]
    assert series(run, "r2") == [(2, 0.3)]
    assert set(run.tags) == {"team=vision", "stage=dev", "owner=ada"}
    assert "model/weights.txt" in [a.path for a in run.artifacts]
    assert run.artifact_path("model/weights.txt").read_text() == "weights"
    assert json.loads(run.artifact_path("config/net.json").read_text()) == {"layers": [64, 32]}
    assert run.artifact_path("notes.txt").read_text() == "fine"


def test_mlflow_bridge_only_records_without_mlflow_writing(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    write(tmp_path / "mlflow_train.py", MLFLOW_SCRIPT)
    labkeep_run(tmp_path, tmp_path / "store", "--bridge-only", "mlflow_train.py")
    check_mlflow_run(last_run(tmp_path / "store"), alpha=0.5)
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()


def test_mlflow_runs_too_and_labkeep_matches_what_mlflow_recorded(tmp_path: Path) -> None:
    mlflow = pytest.importorskip("mlflow")
    write(tmp_path / "mlflow_train.py", MLFLOW_SCRIPT)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = labkeep_run(tmp_path, tmp_path / "store", "mlflow_train.py", MLFLOW_TRACKING_URI=uri)
    run = last_run(tmp_path / "store")
    check_mlflow_run(run, alpha=0.5)
    # What MLflow stored itself, field by field against labkeep's record.
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    run_id = done.stdout.split("mlflow run ")[1].split()[0]
    theirs = client.get_run(run_id)
    assert theirs.data.params == {k: str(v) for k, v in run.params.items()}
    for key in ("loss", "rmse", "r2"):
        history = [(m.step, m.value) for m in client.get_metric_history(run_id, key)]
        assert sorted(history) == series(run, key)
    mine = {t.partition("=")[0]: t.partition("=")[2] for t in run.tags}
    assert {k: v for k, v in theirs.data.tags.items() if not k.startswith("mlflow.")} == mine
    # MLflow's own store is neither code nor an output of the run.
    assert all(not a.path.startswith(("mlflow.db", "mlruns")) for a in run.artifacts)


WANDB_SCRIPT = """
    import argparse

    import wandb

    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    run = wandb.init(project="quickstart", config=args, tags=["baseline"])
    run.config.update({"dropout": 0.2})
    for epoch in range(wandb.config.epochs):
        wandb.log({"loss": 1.0 / (epoch + 1), "acc": 0.5 + 0.1 * epoch})
    wandb.log({"val_loss": 0.4}, step=10)
    run.summary["best_acc"] = 0.7
    run.finish()
"""

WANDB_DICT_SCRIPT = """
    import wandb

    config = {"learning_rate": 0.01, "epochs": 2, "arch": "cnn"}

    wandb.init(project="demo", config=config)
    print("lr from wandb:", wandb.config.learning_rate)
    for epoch in range(wandb.config.epochs):
        wandb.log({"loss": wandb.config.learning_rate * (2 - epoch)})
    wandb.summary["final"] = 1.5
    wandb.finish()
"""


@pytest.mark.parametrize("mode", ["--bridge-only", None])
def test_wandb_argparse_config_log_summary_are_recorded(tmp_path: Path, mode: str | None) -> None:
    pytest.importorskip("wandb")
    write(tmp_path / "main.py", WANDB_SCRIPT)
    args = [mode] if mode else []
    labkeep_run(tmp_path, tmp_path / "store", *args, "main.py", "epochs=4")
    run = last_run(tmp_path / "store")
    assert run.params == {"epochs": 4, "batch_size": 32, "dropout": 0.2}
    assert series(run, "loss") == [(s, pytest.approx(1 / (s + 1))) for s in range(4)]
    assert series(run, "acc") == [(s, pytest.approx(0.5 + 0.1 * s)) for s in range(4)]
    assert series(run, "val_loss") == [(10, 0.4)]
    assert run.summary["best_acc"] == 0.7
    assert list(run.tags) == ["baseline"]
    wrote = (tmp_path / "wandb").exists()
    assert wrote is (mode is None)  # offline W&B ran, or wrote nothing at all
    assert all(not a.path.startswith("wandb/") for a in run.artifacts)


def test_wandb_init_config_dict_keys_are_flags_whose_override_wandb_returns(
    tmp_path: Path,
) -> None:
    pytest.importorskip("wandb")
    write(tmp_path / "wandb_main.py", WANDB_DICT_SCRIPT)
    done = labkeep_run(
        tmp_path, tmp_path / "store", "--bridge-only", "wandb_main.py", "learning_rate=0.1"
    )
    assert "lr from wandb: 0.1" in done.stdout
    run = last_run(tmp_path / "store")
    assert run.params == {"learning_rate": 0.1, "epochs": 2, "arch": "cnn"}
    assert series(run, "loss") == [(0, pytest.approx(0.2)), (1, pytest.approx(0.1))]
    assert run.summary["final"] == 1.5


def test_values_labkeep_cannot_store_never_break_the_script(tmp_path: Path) -> None:
    pytest.importorskip("wandb")
    write(
        tmp_path / "odd.py",
        """
        import wandb

        class Model:
            def __str__(self):
                return "Model()"

        run = wandb.init(config={"model": Model(), "lr": 0.1, "sizes": {"a": 1}})
        wandb.log({"loss": 0.5, "note": "text", "img": object(), "nested": {"acc": 0.9}})
        print("done", wandb.config.lr)
        """,
    )
    done = labkeep_run(tmp_path, tmp_path / "store", "--bridge-only", "odd.py")
    assert "done 0.1" in done.stdout
    run = last_run(tmp_path / "store")
    assert run.params == {"model": "Model()", "lr": 0.1, "sizes.a": 1}
    assert sorted(k for k in run.metrics if not k.startswith("sys/")) == ["loss", "nested.acc"]


def test_a_wandb_config_flag_with_no_bridges_is_refused_before_any_run(tmp_path: Path) -> None:
    write(tmp_path / "wandb_main.py", WANDB_DICT_SCRIPT)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LABKEEP_")}
    environ["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, environ.get("PYTHONPATH")) if p)
    environ["LABKEEP_HOME"] = str(tmp_path / "store")
    done = subprocess.run(
        [sys.executable, "-m", "labkeep.cli", "run", "--no-bridges", "wandb_main.py", "epochs=1"],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "epochs reaches the script through wandb.init(config=...)" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "wandb").exists()


TENSORBOARD_SCRIPT = """
    from tensorboardX import SummaryWriter

    writer = SummaryWriter("runs/exp1")
    for n_iter in range(4):
        writer.add_scalar("Loss/train", 1.0 / (n_iter + 1), n_iter)
        writer.add_scalars("trig", {"xsinx": n_iter * 0.5, "xcosx": n_iter * 0.25}, n_iter)
    writer.add_hparams({"lr": 0.1, "bsize": 32}, {"hparam/accuracy": 0.9})
    writer.close()
"""


@pytest.mark.parametrize("mode", ["--bridge-only", None])
def test_tensorboardx_scalars_and_hparams_are_recorded(tmp_path: Path, mode: str | None) -> None:
    pytest.importorskip("tensorboardX")
    write(tmp_path / "tb_train.py", TENSORBOARD_SCRIPT)
    labkeep_run(tmp_path, tmp_path / "store", *([mode] if mode else []), "tb_train.py")
    run = last_run(tmp_path / "store")
    assert series(run, "Loss/train") == [(i, pytest.approx(1 / (i + 1))) for i in range(4)]
    assert series(run, "trig/xsinx") == [(i, i * 0.5) for i in range(4)]
    assert series(run, "trig/xcosx") == [(i, i * 0.25) for i in range(4)]
    assert run.params == {"lr": 0.1, "bsize": 32}
    assert run.summary == {"hparam/accuracy": 0.9}
    assert "hparam/accuracy" not in run.metrics
    assert run.artifacts == []  # event files are TensorBoard's, not outputs of the run
    if mode is not None:
        assert not (tmp_path / "runs").exists()
        return
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "runs" / "exp1"))
    events.Reload()
    theirs = [(e.step, e.value) for e in events.Scalars("Loss/train")]
    assert theirs == [(s, pytest.approx(v)) for s, v in series(run, "Loss/train")]


def test_no_bridges_leaves_the_tool_alone(tmp_path: Path) -> None:
    pytest.importorskip("tensorboardX")
    write(tmp_path / "tb_train.py", TENSORBOARD_SCRIPT)
    labkeep_run(tmp_path, tmp_path / "store", "--no-bridges", "tb_train.py")
    run = last_run(tmp_path / "store")
    assert [k for k in run.metrics if not k.startswith("sys/")] == [] and run.params == {}
    assert list((tmp_path / "runs" / "exp1").glob("events.out.tfevents.*"))


SACRED_SCRIPT = """
    from sacred import Experiment

    ex = Experiment("iris")


    @ex.config
    def cfg():
        C = 1.0
        gamma = 0.7


    @ex.automain
    def run(_run, C, gamma):
        for step in range(3):
            _run.log_scalar("training.loss", C / (step + 1), step)
        ex.log_scalar("val.acc", 0.9)
        return C * gamma
"""


def test_sacred_config_scope_log_scalar_and_result_are_recorded(tmp_path: Path) -> None:
    pytest.importorskip("sacred")
    write(tmp_path / "sacred_exp.py", SACRED_SCRIPT)
    labkeep_run(tmp_path, tmp_path / "store", "sacred_exp.py", "C=0.5")
    run = last_run(tmp_path / "store")
    assert run.params["C"] == 0.5 and run.params["gamma"] == 0.7
    assert isinstance(run.params["seed"], int)
    assert series(run, "training.loss") == [(s, pytest.approx(0.5 / (s + 1))) for s in range(3)]
    assert series(run, "val.acc") == [(0, 0.9)]
    assert run.summary["result"] == pytest.approx(0.35)


def test_the_hook_imports_nothing_the_script_does_not(tmp_path: Path) -> None:
    write(
        tmp_path / "plain.py",
        f"""
        import sys

        print(sorted(m for m in sys.modules if m.split(".")[0] in {TOOL_MODULES!r}))
        """,
    )
    done = labkeep_run(tmp_path, tmp_path / "store", "plain.py")
    assert done.stdout.strip() == "[]"


def test_a_script_whose_tool_is_not_installed_behaves_as_without_labkeep(tmp_path: Path) -> None:
    """An interpreter without MLflow: the script sees the same ImportError either way."""
    from labkeep.runner._launch import LaunchSpec, launch

    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    python = str(bare / "bin" / "python")
    write(
        tmp_path / "train.py",
        """
        try:
            import mlflow
        except ImportError as exc:
            print("without mlflow:", type(exc).__name__, exc)
        import mlflow
        """,
    )
    plain = subprocess.run(
        [python, "train.py"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert plain.returncode == 1
    output: list[bytes] = []
    client = Client(tmp_path / "store")
    try:
        result = launch(
            LaunchSpec(
                Path("train.py"),
                cwd=tmp_path,
                python=python,
                scalars=False,
                system_metrics=None,
                on_output=lambda _stream, data: output.append(data),
            ),
            client,
        )
    finally:
        client.close()
    assert result.exit_code == plain.returncode
    text = b"".join(output).decode()
    assert plain.stdout in text
    assert plain.stderr.strip().splitlines()[-1] in text


def test_bridge_in_process_records_into_the_active_run(tmp_path: Path) -> None:
    pytest.importorskip("tensorboardX")
    script = f"""
        import json, sys
        sys.path.insert(0, {SRC!r})
        import labkeep

        run = labkeep.init(store={str(tmp_path / "store")!r}, capture=False, system_metrics=0)
        labkeep.bridge(only=True)
        from tensorboardX import SummaryWriter

        writer = SummaryWriter()
        writer.add_scalar("loss", 0.5, 7)
        labkeep.finish()
        print(json.dumps(run.uuid))
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("LABKEEP_")},
    )
    assert done.returncode == 0, done.stderr
    run = last_run(tmp_path / "store")
    assert run.uuid == json.loads(done.stdout.strip().splitlines()[-1])
    assert series(run, "loss") == [(7, 0.5)]
    assert not (tmp_path / "runs").exists()
