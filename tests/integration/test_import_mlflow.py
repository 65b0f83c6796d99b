"""``labkeep import mlflow`` on stores MLflow writes itself (SQLite, file store, a tracking
server), compared field by field with what MLflow's own client reads back."""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from import_helpers import (
    blob_text,
    close_to,
    error_lines,
    history,
    imported_runs,
    labkeep_import,
    run_count,
    run_script,
    summary_line,
)

mlflow = pytest.importorskip("mlflow", reason="the interop extra (mlflow) is not installed")
ViewType = pytest.importorskip("mlflow.entities").ViewType

# The shape of MLflow's quickstart: start_run, log_params, a metric per step, tags, an artifact;
# a nested run, a deleted run, and a run that fails.
QUICKSTART = """
    import sys
    import mlflow

    mlflow.set_tracking_uri(sys.argv[1])
    mlflow.set_experiment("quickstart")
    params = {"alpha": 0.3, "l1_ratio": 0.5, "solver": "saga", "epochs": 4, "shuffle": True}
    with mlflow.start_run(run_name="elasticnet") as run:
        mlflow.log_params(params)
        for step in range(params["epochs"]):
            mlflow.log_metric("rmse", 1.0 / (step + 1), step=step)
            mlflow.log_metric("r2", 0.2 * step, step=step)
        mlflow.set_tag("team", "vision")
        mlflow.set_tag("reviewed", "")
        with open("model.txt", "w") as f:
            f.write("weights")
        mlflow.log_artifact("model.txt")
        mlflow.log_artifact("model.txt", artifact_path="nested/dir")
        with mlflow.start_run(run_name="fold-1", nested=True):
            mlflow.log_metric("rmse", 0.7, step=0)
    with mlflow.start_run(run_name="discarded") as discarded:
        mlflow.log_param("alpha", 9.0)
    mlflow.delete_run(discarded.info.run_id)
    mlflow.set_experiment("second")
    with mlflow.start_run(run_name="broken"):
        mlflow.log_param("alpha", "auto")
        mlflow.log_metric("rmse", float("nan"), step=3)
        mlflow.end_run("FAILED")
"""

STATUS = {"FINISHED": "completed", "FAILED": "failed", "KILLED": "interrupted"}


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("mlflow-sqlite")
    run_script(directory, QUICKSTART, f"sqlite:///{directory / 'mlflow.db'}")
    return directory / "mlflow.db"


@pytest.fixture(scope="module")
def file_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("mlflow-files")
    mlruns = directory / "mlruns"
    run_script(directory, QUICKSTART, mlruns.as_uri(), env={"MLFLOW_ALLOW_FILE_STORE": "true"})
    return mlruns


def check_field_by_field(tracking_uri: str, store: Path) -> None:
    """Every MLflow run is in the store with the same fields, as MLflow's client reads them."""
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    client = mlflow.MlflowClient(tracking_uri)
    experiments = {e.experiment_id: e.name for e in client.search_experiments()}
    runs = client.search_runs(list(experiments), run_view_type=ViewType.ALL)
    imported = imported_runs(store)
    assert sorted(imported) == sorted(r.info.run_id for r in runs)
    for run in runs:
        record = imported[run.info.run_id]
        info = record.info
        assert info.experiment == experiments[run.info.experiment_id]
        assert info.name == run.info.run_name
        assert info.deleted == (run.info.lifecycle_stage == "deleted")
        assert info.status.value == STATUS[run.info.status]
        assert close_to(info.start_time, run.info.start_time / 1000)
        assert close_to(info.end_time or 0, run.info.end_time / 1000)
        assert info.user == run.data.tags["mlflow.user"]
        parent = run.data.tags.get("mlflow.parentRunId")
        assert (info.parent_uuid is None) == (parent is None)
        if parent is not None:
            assert info.parent_uuid == imported[parent].info.uuid
        # Params come back typed: MLflow keeps their text.
        assert {k: str(v) for k, v in record.params.items()} == run.data.params
        user_tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
        assert set(record.tags) == {f"{k}={v}" if v else k for k, v in user_tags.items()}
        for key in run.data.metrics:
            expected = sorted(
                client.get_metric_history(run.info.run_id, key), key=lambda m: m.timestamp
            )
            steps, values, times = history(store, info.number, key)
            assert steps == [m.step for m in expected]
            assert len(values) == len(expected)
            for got, want in zip(values, expected, strict=True):
                assert got == want.value or (got != got and want.value != want.value)
            assert times == [m.timestamp / 1000 for m in expected]
        assert record.summary["import.source"] == "mlflow"
        paths = {a.path: a for a in record.artifacts}
        if run.info.run_name == "elasticnet":
            assert set(paths) == {"model.txt", "nested/dir/model.txt"}
            assert paths["model.txt"].sha256 == hashlib.sha256(b"weights").hexdigest()
            assert blob_text(store, paths["nested/dir/model.txt"].sha256) == "weights"
        else:
            assert paths == {}


def test_sqlite_store_is_imported_field_by_field_and_only_once(
    sqlite_store: Path, tmp_path: Path
) -> None:
    store = tmp_path / "labkeep"
    before = sqlite_store.read_bytes()
    work = tmp_path / "work"
    work.mkdir()
    first = labkeep_import(store, "mlflow", f"sqlite:///{sqlite_store}", cwd=work)
    assert first.returncode == 0, first.stderr
    # Read-only: an MLflow newer than the writer would otherwise upgrade the database.
    assert sqlite_store.read_bytes() == before
    # ... and MLflow's "parent directory" of that read-only URI (./file:/…) is not left behind.
    assert list(work.iterdir()) == []
    assert summary_line(first).startswith("imported 4 run(s) from mlflow")
    check_field_by_field(f"sqlite:///{sqlite_store}", store)
    records = imported_runs(store)
    elastic = next(r for r in records.values() if r.info.name == "elasticnet")
    assert elastic.params == {
        "alpha": 0.3,
        "l1_ratio": 0.5,
        "solver": "saga",
        "epochs": 4,
        "shuffle": True,
    }
    assert elastic.info.status.value == "completed"

    # A plain path to the .db file is the same store: nothing new.
    again = labkeep_import(store, "mlflow", str(sqlite_store))
    assert again.returncode == 0, again.stderr
    assert "imported 0 run(s)" in summary_line(again)
    assert "skipped 4 already imported" in summary_line(again)
    assert run_count(store) == 4


def test_runs_read_ahead_in_small_windows_are_imported_whole_and_in_order(
    sqlite_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SQL store is read a window of runs at a time by two threads ahead of the writer:
    with windows of one run and groups of two, every run is there, numbered in MLflow's
    order as with the default windows."""
    from labkeep.integrations import _importing, _mlflow
    from labkeep.integrations._mlflow import MlflowSource
    from labkeep.store import locate_store, open_store

    def numbered(store_path: Path) -> list[str]:
        store = open_store(locate_store(str(store_path)))
        try:
            source = MlflowSource(f"sqlite:///{sqlite_store}")
            try:
                report = _importing.import_runs(store, source)
            finally:
                source.close()
            assert not report.failed
            records = store.get_records(report.imported)
            return [str(r.summary["import.id"]) for r in records]
        finally:
            store.close()

    default = numbered(tmp_path / "default")
    monkeypatch.setattr(_mlflow, "_READ_FIRST", 1)
    monkeypatch.setattr(_mlflow, "_READ_AHEAD", 1)
    monkeypatch.setattr(_importing, "GROUP_RUNS", 2)
    assert numbered(tmp_path / "small") == default and len(default) == 4
    check_field_by_field(f"sqlite:///{sqlite_store}", tmp_path / "small")


def test_file_store_is_imported_field_by_field(file_store: Path, tmp_path: Path) -> None:
    store = tmp_path / "labkeep"
    done = labkeep_import(store, "mlflow", str(file_store))
    assert done.returncode == 0, done.stderr
    check_field_by_field(file_store.as_uri(), store)
    assert "skipped 4" in summary_line(labkeep_import(store, "mlflow", str(file_store)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def mlflow_server(sqlite_store: Path) -> Iterator[str]:
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{sqlite_store}",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=sqlite_store.parent,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"mlflow server did not start: {server.stderr.read()[-2000:]!r}")  # type: ignore[union-attr]
                time.sleep(0.5)
        yield uri
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_tracking_server_is_imported_field_by_field(mlflow_server: str, tmp_path: Path) -> None:
    store = tmp_path / "labkeep"
    done = labkeep_import(store, "mlflow", mlflow_server)
    assert done.returncode == 0, done.stderr
    check_field_by_field(mlflow_server, store)


def test_unreachable_server_is_one_line_and_nothing_imported(tmp_path: Path) -> None:
    store = tmp_path / "labkeep"
    done = labkeep_import(store, "mlflow", f"http://127.0.0.1:{_free_port()}")
    assert done.returncode != 0
    assert error_lines(done) == [error_lines(done)[0]]
    assert "cannot reach the MLflow server" in done.stderr
    assert run_count(store) == 0


def test_foreign_directory_and_files_are_refused_untouched(tmp_path: Path) -> None:
    store = tmp_path / "labkeep"
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"\xff\xd8")
    done = labkeep_import(store, "mlflow", str(foreign))
    assert done.returncode != 0
    assert len(error_lines(done)) == 1
    assert "is not an MLflow file store" in done.stderr

    other_db = tmp_path / "app.db"
    with sqlite3.connect(other_db) as db:
        db.execute("CREATE TABLE users (id INTEGER)")
    before = other_db.read_bytes()
    done = labkeep_import(store, "mlflow", f"sqlite:///{other_db}")
    assert done.returncode != 0
    assert "is not an MLflow database" in error_lines(done)[0]
    assert len(error_lines(done)) == 1
    assert other_db.read_bytes() == before  # MLflow was not let in to create its tables

    corrupt = tmp_path / "mlflow.db"
    corrupt.write_bytes(b"not a database at all" * 100)
    done = labkeep_import(store, "mlflow", str(corrupt))
    assert done.returncode != 0
    assert "is not an SQLite database" in error_lines(done)[0]
    missing = labkeep_import(store, "mlflow", str(tmp_path / "nowhere"))
    assert missing.returncode != 0
    assert "no MLflow store at" in error_lines(missing)[0]
    assert run_count(store) == 0


def test_store_of_another_mlflow_version_is_named(sqlite_store: Path, tmp_path: Path) -> None:
    copy = tmp_path / "old.db"
    copy.write_bytes(sqlite_store.read_bytes())
    with sqlite3.connect(copy) as db:
        db.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    store = tmp_path / "labkeep"
    done = labkeep_import(store, "mlflow", str(copy))
    assert done.returncode != 0
    assert len(error_lines(done)) == 1
    assert "found version ffffffffffff" in done.stderr
    assert "another MLflow version" in done.stderr
    assert run_count(store) == 0


@pytest.mark.parametrize("reader", ["adbc", "sqlite3"])
def test_sqlite_histories_read_as_columns_are_mlflows_points_bit_for_bit(
    tmp_path: Path, reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SQLite store's points are read as columns (through ADBC's driver into Arrow; where
    it is not installed, steps and times as text and values as rows): NaN, infinities, -0.0,
    the extremes of float64, several points at one step and times out of step order come back
    as MLflow's client gives them, and as the row-per-point read."""
    import math
    import struct
    import sys

    if reader == "adbc":
        pytest.importorskip("adbc_driver_sqlite")
    else:  # what a machine without the driver does
        monkeypatch.setitem(sys.modules, "adbc_driver_sqlite.dbapi", None)

    from mlflow.entities import Metric
    from mlflow.store.tracking.dbmodels.models import SqlMetric

    from labkeep.integrations._mlflow import MlflowSource

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("edge")
    values = [0.1, -0.0, 1 / 3, 5e-324, 1.7976931348623157e308, -2.5e-310, math.nan, math.inf]
    values += [-math.inf, 123456789.12345679, 2.0**60, 1e22]
    run_ids = []
    for r in range(3):
        run = client.create_run(experiment)
        run_ids.append(run.info.run_id)
        points = [Metric("edge", v, 1_000 + i, i // 2) for i, v in enumerate(values)]
        # A step logged again earlier in time, and a key whose times run against its steps.
        points.append(Metric("edge", 7.0 + r, 999, 3))
        points += [Metric("late", float(s), 5_000 - s, s) for s in range(4)]
        # In time order, two points at one step and time: they keep the order logged.
        points += [Metric("same", 5.0, 100, 0), Metric("same", 1.0, 100, 0)]
        client.log_batch(run.info.run_id, metrics=points)
        client.set_terminated(run.info.run_id)

    source = MlflowSource(uri)
    try:
        source.run_ids()
        tables = source._tables
        assert tables is not None
        window = SqlMetric.__table__.c.run_uuid.in_(run_ids)
        columns = tables._sqlite_histories(window)
        rows = tables._histories(window)
        assert columns is not None and len(columns) == len(rows) == 9

        def bits(column: Any) -> list[bytes]:
            return [struct.pack("<d", float(x)) for x in column]

        for (run_id, key, got), (run_id2, key2, want) in zip(columns, rows, strict=True):
            assert (run_id, key) == (run_id2, key2)
            assert list(got[0]) == list(want[0])
            assert bits(got[1]) == bits(want[1])
            assert list(got[2]) == list(want[2])
            assert list(got[2]) == sorted(got[2])  # in logging order
            # MLflow's client gives the points of one step and time in an order of its own.
            points = sorted(zip(got[2], got[0], bits(got[1]), strict=True))
            expected = sorted(
                (m.timestamp / 1000, m.step, struct.pack("<d", m.value))
                for m in client.get_metric_history(run_id, key)
            )
            assert points == expected
    finally:
        source.close()
