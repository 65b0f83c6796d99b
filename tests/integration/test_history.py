"""The Python read API: ``labkeep.runs(where=…)`` (a lazy ``RunList``) and
``RunView.history()``, on real stores written through the real logging path."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_search_runs import write_run

import labkeep
from labkeep.query import QueryError
from labkeep.store import locate_store, open_store

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def logged_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two runs logged with labkeep.init/log: keys at different steps, a step logged twice."""
    path = str(tmp_path_factory.mktemp("history") / "store")
    with labkeep.init(
        "mnist", config={"lr": 0.1}, store=path, capture=False, system_metrics=0
    ) as run:
        for step in range(10):
            run.log({"loss": 1.0 / (step + 1)}, step=step)
            if step % 3 == 0:
                run.log({"acc": step / 10}, step=step)
        run.log({"loss": 0.05}, step=9)  # step 9 again: the last value wins
    with labkeep.init(
        "mnist", config={"lr": 0.01}, store=path, capture=False, system_metrics=0
    ) as run:
        for step in range(1000):
            value = math.sin(step / 50) + (5.0 if step == 437 else 0.0)
            run.log({"wave": value}, step=step)
    return path


def test_history_outer_joins_keys_on_step(logged_store: str) -> None:
    run = labkeep.get_run(1, store=logged_store)
    frame = run.history(["loss", "acc"])
    assert list(frame.columns) == ["step", "time", "loss", "acc"]
    assert frame["step"].tolist() == list(range(10))
    assert frame["loss"].tolist()[:2] == [1.0, 0.5]
    assert frame["loss"].iloc[9] == 0.05
    acc = frame["acc"].tolist()
    assert acc[0] == 0.0 and acc[3] == pytest.approx(0.3) and math.isnan(acc[1])
    assert frame["time"].notna().all()
    assert frame["time"].is_monotonic_increasing
    single = run.history("acc")
    assert single["step"].tolist() == [0, 3, 6, 9]


def test_history_downsampling_keeps_the_peaks(logged_store: str) -> None:
    run = labkeep.get_run(2, store=logged_store)
    full = run.history("wave")
    small = run.history("wave", downsample=20)
    assert len(full) == 1000
    assert len(small) <= 60
    assert small["wave"].max() == full["wave"].max()  # the spike at step 437 survives
    assert small["wave"].min() == full["wave"].min()
    assert small["step"].iloc[-1] == 999
    assert small["step"].is_monotonic_increasing
    assert len(run.history("wave", downsample=1000)) == 1000


def test_history_fills_a_key_the_run_lacks_with_nan(
    logged_store: str, caplog: pytest.LogCaptureFixture
) -> None:
    """One key missing on some steps or entirely gives NaN there, as for runs compared in a
    loop where some never logged a key; a key the run lacks is named in a log warning."""
    run = labkeep.get_run(1, store=logged_store)
    with caplog.at_level("WARNING", logger="labkeep"):
        frame = run.history(["loss", "wave", "acc"])
    assert list(frame.columns) == ["step", "time", "loss", "wave", "acc"]
    assert frame["step"].tolist() == list(range(10))
    assert frame["wave"].isna().all()
    assert frame["acc"].tolist()[3] == pytest.approx(0.3)
    assert "no metric 'wave'" in caplog.text
    nothing = run.history(["los"])
    assert list(nothing.columns) == ["step", "time", "los"] and len(nothing) == 0
    assert run.history(["wave"], downsample=5).empty


def test_history_errors(logged_store: str) -> None:
    run = labkeep.get_run(1, store=logged_store)
    with pytest.raises(labkeep.errors.InvalidInputError):
        run.history([])
    with pytest.raises(labkeep.errors.InvalidInputError):
        run.history("loss", downsample=0)


def test_runs_with_a_query_is_lazy_and_ordered(tmp_path: Path) -> None:
    path = str(tmp_path / "store")
    store = open_store(locate_store(path))
    for i in range(1, 7):
        write_run(
            store,
            i,
            experiment="mnist" if i % 2 else "cifar",
            params={"lr": i / 100, "optimizer": "adam" if i < 4 else "sgd"},
            metrics={"loss": [1.0, 1 / i]},
            tags=["baseline"] if i == 2 else [],
        )
    store.close()
    runs = labkeep.runs(where="metrics.loss < 0.5", sort="metrics.loss", limit=2, store=path)
    assert repr(runs) == "<labkeep.RunList of 2 runs>"
    assert runs.numbers == [6, 5] and runs.total == 4 and len(runs) == 2
    assert [r.number for r in runs] == [6, 5]
    assert runs[0].params["lr"] == 0.06
    mnist = labkeep.runs("mnist", where="lr > 0.02", store=path)
    assert mnist.numbers == [5, 3]
    assert labkeep.runs(where="'baseline' in tags", store=path).numbers == [2]
    assert labkeep.runs(store=path, sort=["optimizer", "-lr"], offset=1, limit=2).numbers == [2, 1]
    with pytest.raises(QueryError):
        labkeep.runs(where="lr >", store=path)  # syntax: at once
    unknown = labkeep.runs(where="params.lrr > 1", store=path)
    with pytest.raises(QueryError, match=r"did you mean params\.lr"):
        len(unknown)  # keys: on first use


def test_to_pandas_and_to_records_have_one_row_per_run(tmp_path: Path) -> None:
    path = str(tmp_path / "store")
    store = open_store(locate_store(path))
    write_run(
        store,
        1,
        params={"lr": 0.1, "batch_size": 32, "optimizer": "adam"},
        metrics={"loss": [0.5, 0.2]},
    )
    write_run(
        store,
        2,
        params={"lr": 0.01, "batch_size": 64},
        metrics={"loss": [0.4]},
        summary={"best": 1},
    )
    store.close()
    runs = labkeep.runs(store=path, sort="lr")
    frame = runs.to_pandas()
    assert frame["number"].tolist() == [2, 1]
    for column in (
        "params.lr",
        "params.batch_size",
        "metrics.loss",
        "metrics.loss.min",
        "metrics.loss.max",
        "metrics.loss.count",
        "metrics.loss.step",
        "summary.best",
        "status",
        "duration",
    ):
        assert column in frame.columns
    assert frame["params.batch_size"].dtype == np.int64
    assert frame["metrics.loss.count"].tolist() == [1, 2]
    assert frame["metrics.loss.min"].tolist() == [0.4, 0.2]
    assert frame["params.optimizer"].isna().tolist() == [True, False]
    records = runs.to_records()
    assert [r["number"] for r in records] == [2, 1]
    assert records[1]["params.optimizer"] == "adam" and records[0]["params.optimizer"] is None
    assert records[1]["metrics.loss"] == 0.2 and records[0]["summary.best"] == 1
    assert set(records[0]) == set(frame.columns)
    assert labkeep.runs(store=path, where="lr > 5").to_pandas().shape[0] == 0


def test_listing_runs_does_not_import_pandas(tmp_path: Path) -> None:
    path = str(tmp_path / "store")
    write_run(open_store(locate_store(path)), 1, params={"lr": 0.1})
    code = (
        "import sys, labkeep\n"
        f"runs = labkeep.runs(where='lr > 0', store={path!r})\n"
        "assert len(runs) == 1 and runs.to_records()[0]['params.lr'] == 0.1\n"
        "print('pandas' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
