"""Trials of ``labkeep.sweep`` run in this process on the sweep run's own journal: each is an
ordinary child run in the store (own number, params, metrics, summary, status), and a SIGKILL
of the process loses none of what the trials logged."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

import labkeep
from conftest import LiveServer, child_env, start_python
from labkeep import RunStatus
from labkeep._client import Client
from labkeep.errors import RunStateError

pytest.importorskip("optuna")


def _journals(store: Path) -> list[str]:
    root = store / "journals"
    return sorted(os.listdir(root)) if root.is_dir() else []


def test_trials_share_the_sweep_runs_journal(tmp_path: Path) -> None:
    """No trial opens a journal of its own: the sweep's writer takes every trial's records."""
    store = tmp_path / "store"
    seen: list[list[str]] = []

    def objective(run: labkeep.Run) -> float:
        seen.append(_journals(store))
        return float(run.config["x"])

    result = labkeep.sweep(objective, space={"x": [1, 2, 3]}, minimize="x", store=str(store))
    assert [len(s) for s in seen] == [1, 1, 1]  # the sweep run's journal, and only it
    assert seen[0][0].startswith(result.result.uuid)
    assert _journals(store) == []  # drained and removed at the end


def test_each_trial_keeps_its_own_metrics_params_and_summary(tmp_path: Path) -> None:
    """Trials logging different keys (each run numbers its keys from 0) side by side: every
    point lands in its own trial, at its step."""
    store = tmp_path / "store"
    both_running = threading.Barrier(2, timeout=30)
    journals: set[str] = set()

    def objective(run: labkeep.Run) -> float:
        x = run.config["x"]
        key = "acc" if x % 2 else "loss"
        both_running.wait()  # the two trials of a pair log at the same time
        journals.update(_journals(store))
        for step in range(50):
            run.log({key: x * 100 + step, "shared": -x}, step=step)
        run.summary["note"] = f"trial {x}"
        return float(x)

    result = labkeep.sweep(
        objective,
        space={"x": [1, 2, 3, 4, 5, 6]},
        minimize="x",
        optimizer="grid",
        parallel=2,
        store=str(store),
    )
    assert len(journals) <= 3  # the sweep run's, and one per worker thread: none per trial
    trials = result.trials
    assert len(trials) == 6 and len({t.number for t in trials}) == 6
    assert {t.info.parent_uuid for t in trials} == {result.result.uuid}
    for trial in trials:
        x = trial.config["x"]
        key = "acc" if x % 2 else "loss"
        assert trial.status is RunStatus.COMPLETED
        assert sorted(trial.metrics) == sorted([key, "shared"])
        series = trial.series(key)
        assert series.steps.tolist() == list(range(50))
        assert series.values.tolist() == [x * 100.0 + s for s in range(50)]
        assert trial.series("shared").values.tolist() == [-float(x)] * 50
        assert trial.summary["note"] == f"trial {x}"
        assert trial.summary["labkeep.sweep"] == result.number
    client = Client(store)
    try:
        found = client.runs(where=f"sweep == {result.number}", sort="number")
        assert [r.number for r in found] == [t.number for t in trials]
    finally:
        client.close()
    assert result.best is not None and result.best.config["x"] == 1


def test_a_failing_trial_fails_alone_and_the_next_ones_log(tmp_path: Path) -> None:
    def objective(run: labkeep.Run) -> float:
        run.log({"loss": float(run.config["x"])}, step=0)
        if run.config["x"] == 2:
            raise RuntimeError("bad trial")
        run.log({"loss": float(run.config["x"]) / 2}, step=1)
        return float(run.config["x"])

    result = labkeep.sweep(
        objective, space={"x": [1, 2, 3]}, minimize="x", store=str(tmp_path / "store")
    )
    by_x = {t.config["x"]: t for t in result.trials}
    assert by_x[2].status is RunStatus.FAILED and "bad trial" in (by_x[2].info.error or "")
    assert by_x[2].series("loss").values.tolist() == [2.0]
    for x in (1, 3):
        assert by_x[x].status is RunStatus.COMPLETED
        assert by_x[x].series("loss").values.tolist() == [float(x), x / 2]
    assert (result.result.completed, result.result.failed) == (2, 1)


_KILLED_MID_SWEEP = """
import os, signal, sys, time
import labkeep

parallel = int(sys.argv[2])
logged_3 = os.path.join(sys.argv[1] + ".trial3-logged")

def objective(run):
    x = run.config["x"]
    for step in range(20):
        run.log({"loss": x * 1000 + step}, step=step)
    if x == 4:
        # With parallel trials, trial 3 may have been handed out but not yet begun: wait until
        # it has logged, so that the kill finds it mid-trial (what the test is about).
        deadline = time.monotonic() + 60
        while parallel > 1 and not os.path.exists(logged_3) and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGKILL)  # right after logging: nothing ingested yet
    if x == 3 and parallel > 1:
        open(logged_3, "w").close()
        time.sleep(60)  # still running beside trial 4 when the process dies
    return float(x)

labkeep.sweep(objective, space={"x": [1, 2, 3, 4, 5]}, minimize="loss", optimizer="grid",
              parallel=int(sys.argv[2]), store=sys.argv[1])
"""


@pytest.mark.parametrize("parallel", [1, 2])
def test_sigkill_mid_sweep_loses_no_trials_points(tmp_path: Path, parallel: int) -> None:
    store = tmp_path / "store"
    proc = start_python(
        _KILLED_MID_SWEEP, cwd=tmp_path, env=child_env(), args=(str(store), str(parallel))
    )
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    # The sweep run's journal, and with parallel trials one per worker thread.
    assert 1 <= len(_journals(store)) <= (1 if parallel == 1 else 1 + parallel)
    client = Client(store)
    try:
        runs = {r.number: r for r in client.runs(sort="number")}
        sweep = runs.pop(min(runs))
        assert sweep.status is RunStatus.KILLED
        trials = sorted(runs.values(), key=lambda r: r.config["x"])
        assert [t.config["x"] for t in trials] == [1, 2, 3, 4]
        assert {t.info.parent_uuid for t in trials} == {sweep.uuid}
        for trial in trials:
            x = trial.config["x"]
            cut_short = x == 4 or (x == 3 and parallel > 1)
            assert trial.status is (RunStatus.KILLED if cut_short else RunStatus.COMPLETED)
            series = trial.series("loss")
            assert series.steps.tolist() == list(range(20))
            assert series.values.tolist() == [x * 1000.0 + s for s in range(20)]
    finally:
        client.close()
    assert _journals(store) == []


def test_ctrl_c_in_the_objective_interrupts_the_trial_and_the_sweep(tmp_path: Path) -> None:
    store = tmp_path / "store"

    def objective(run: labkeep.Run) -> float:
        run.log({"loss": float(run.config["x"])}, step=0)
        if run.config["x"] == 2:
            raise KeyboardInterrupt
        return float(run.config["x"])

    with pytest.raises(KeyboardInterrupt):
        labkeep.sweep(objective, space={"x": [1, 2, 3]}, minimize="x", store=str(store))
    client = Client(store)
    try:
        sweep, *trials = client.runs(sort="number")
        assert sweep.status is RunStatus.INTERRUPTED
        assert [(t.config["x"], t.status) for t in trials] == [
            (1, RunStatus.COMPLETED), (2, RunStatus.INTERRUPTED),
        ]  # fmt: skip
        assert trials[1].series("loss").values.tolist() == [2.0]
    finally:
        client.close()
    assert _journals(store) == []


def test_trials_reach_a_labkeep_server_each_as_its_own_run(tmp_path: Path) -> None:
    """Through the HTTP store: the server takes the shared journal's batches one run at a time."""
    served = tmp_path / "served"

    def objective(run: labkeep.Run) -> float:
        for step in range(3):
            run.log({f"m{run.config['x']}": float(step)}, step=step)
        return float(run.config["x"])

    with LiveServer(served) as live:
        result = labkeep.sweep(objective, space={"x": [1, 2, 3]}, minimize="x", store=live.url)
        assert result.best_value == 1.0
    client = Client(served)
    try:
        sweep, *trials = client.runs(sort="number")
        assert sweep.status is RunStatus.COMPLETED
        assert sweep.summary["trials.completed"] == 3
        for trial in trials:
            x = trial.config["x"]
            assert trial.status is RunStatus.COMPLETED and trial.info.parent_uuid == sweep.uuid
            assert list(trial.metrics) == [f"m{x}"]
            assert trial.series(f"m{x}").values.tolist() == [0.0, 1.0, 2.0]
    finally:
        client.close()


def test_every_run_writing_into_a_shared_journal_gets_heartbeats(tmp_path: Path) -> None:
    """A long trial must not leave its sweep run looking dead to another host (whose
    recovery marks runs killed when their heartbeat is stale), nor the other way round."""
    client = Client(tmp_path / "store")
    try:
        sweep = client.start_run(experiment="e", capture=False, system_metrics=None)
        trial = client.start_child_run(sweep, config={"x": 1})
        assert trial.wait_registered(30) is not None
        ingester = sweep._ingester
        ingester.heartbeat_every = 0.0  # every pass is due
        trial.log({"loss": 1.0}, step=0)  # a batch of the trial's alone
        before = time.time()
        ingester.flush(30)
        beats = {info.uuid: info.heartbeat for info in client.store.running_runs()}
        assert set(beats) == {sweep.uuid, trial.uuid}
        assert all(beat is not None and beat >= before for beat in beats.values())
        trial.finish()
        sweep.finish()
    finally:
        client.close()


def test_a_finished_run_takes_no_child_runs(tmp_path: Path) -> None:
    client = Client(tmp_path / "store")
    try:
        parent = client.start_run(experiment="e", capture=False, system_metrics=None)
        parent.finish()
        with pytest.raises(RunStateError, match="is completed: start child runs while it runs"):
            client.start_child_run(parent)
    finally:
        client.close()
