"""Sweeps whose trials' store is a labkeep server: a real ``labkeep server`` on 127.0.0.1 over
a SQLite file. Every trial must reach the server as a child run of the sweep with its params
and objective, whether the trials are script processes (``labkeep run``), Python calls
(``labkeep.sweep``) or tasks on a Dask cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from labkeep_server import ServerProcess, server
from test_run_command import cli_env, write
from test_sweep_dask import Cluster, cluster

import labkeep
from labkeep._client import Client
from labkeep.entities import RunRecord, RunStatus
from labkeep.sweep._spec import get_sweep, sweep_trials

pytest.importorskip("optuna")

__all__ = ["cluster", "server"]  # fixtures, imported for the tests below

TRAIN = """\
x = 0.0
opt = "adam"
print(f"loss: {(x - 1.0) ** 2 + len(opt)}")
"""


def _labkeep(work: Path, store: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labkeep.cli", *args],
        cwd=work, env=cli_env(Path("."), LABKEEP_HOME=store, **env), capture_output=True,
        text=True, timeout=240, check=False,
    )  # fmt: skip


def _sweep(store: str) -> tuple[RunRecord, list[RunRecord]]:
    """The last sweep and its trials, read back through the server."""
    client = Client(store)
    try:
        record, _spec = get_sweep(client, "last")
        return record, sweep_trials(client, record)
    finally:
        client.close()


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    write(path / "train.py", TRAIN)
    return path


def _assert_script_sweep(store: str) -> None:
    sweep, trials = _sweep(store)
    assert sweep.info.status is RunStatus.COMPLETED
    assert len(trials) == 4 and [t.info.parent_uuid for t in trials] == [sweep.info.uuid] * 4
    assert all(t.info.status is RunStatus.COMPLETED for t in trials)
    points = sorted((t.params["x"], t.params["opt"]) for t in trials)
    assert points == [(x, o) for x in (0.5, 2.0) for o in ("adam", "sgd")]
    for trial in trials:
        x, opt = trial.params["x"], trial.params["opt"]
        assert trial.metrics["loss"].last == pytest.approx((x - 1.0) ** 2 + len(opt))
    assert sweep.summary["trials.completed"] == 4
    assert sweep.summary["best.value"] == pytest.approx(0.25 + 3)
    best = min(trials, key=lambda t: t.metrics["loss"].last)
    assert sweep.summary["best.run"] == best.info.number


@pytest.mark.timeout(240)
@pytest.mark.parametrize("parallel", ["1", "2"])
def test_a_script_sweep_logs_every_trial_through_the_server(
    work: Path, server: ServerProcess, parallel: str
) -> None:
    result = _labkeep(work, server.url, "run", "train.py", "x=[0.5,2.0]", "opt=[adam,sgd]",
                      "--minimize", "loss", "--parallel", parallel, "-q")  # fmt: skip
    assert result.returncode == 0, result.stderr
    _assert_script_sweep(server.url)
    # The server's own query language sees the trials as the sweep's.
    sweep, trials = _sweep(server.url)
    listed = _labkeep(work, server.url, "runs", "--where", f"sweep == {sweep.info.number}")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()[1:]]
    numbers = [int(row[0]) for row in rows if row and row[0].isdigit()]  # not the footer
    assert sorted(numbers) == sorted(t.info.number for t in trials)


@pytest.mark.timeout(240)
def test_the_python_api_sweeps_into_the_server(server: ServerProcess) -> None:
    def objective(run: labkeep.Run) -> float:
        x = run.config["x"]
        run.log({"loss": (x - 1.0) ** 2 + run.config["layers"]}, step=0)
        return (x - 1.0) ** 2 + run.config["layers"]

    result = labkeep.sweep(
        objective,
        space={"x": labkeep.uniform(-2, 2), "layers": labkeep.intrange(1, 3)},
        minimize="loss",
        n_trials=6,
        optimizer="tpe",
        options={"seed": 0},
        parallel=2,
        store=server.url,
    )
    assert result.result.completed == 6
    sweep, trials = _sweep(server.url)
    assert sweep.info.uuid == result.result.uuid and sweep.info.status is RunStatus.COMPLETED
    assert len(trials) == 6 and {t.info.parent_uuid for t in trials} == {sweep.info.uuid}
    assert all(t.info.status is RunStatus.COMPLETED for t in trials)
    losses = []
    for trial in trials:
        x, layers = trial.params["x"], trial.params["layers"]
        assert -2 <= x <= 2 and layers in (1, 2, 3)
        assert trial.metrics["loss"].last == pytest.approx((x - 1.0) ** 2 + layers)
        losses.append(trial.metrics["loss"].last)
    assert sweep.summary["best.value"] == pytest.approx(min(losses))
    assert result.best_value == pytest.approx(min(losses))


@pytest.mark.timeout(240)
def test_a_dask_sweep_logs_every_trial_through_the_server(
    work: Path, server: ServerProcess, cluster: Cluster
) -> None:
    result = _labkeep(work, server.url, "run", "train.py", "x=[0.5,2.0]", "opt=[adam,sgd]",
                      "--minimize", "loss", "--dask", cluster.address, "-q")  # fmt: skip
    assert result.returncode == 0, result.stderr
    _assert_script_sweep(server.url)
    _sweep_record, trials = _sweep(server.url)
    assert {t.info.pid for t in trials} <= cluster.worker_pids()
