"""``labkeep import sacred`` on the directory Sacred's own FileStorageObserver writes,
compared field by field with its run.json, config.json and metrics.json."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

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

pytest.importorskip("sacred", reason="the interop extra (sacred) is not installed")

# Sacred's quickstart shape: a config scope, @ex.automain, log_scalar, an artifact, a result.
EXPERIMENT = """
    import sys
    from sacred import Experiment
    from sacred.observers import FileStorageObserver

    ex = Experiment("iris_rbf_svm")
    ex.observers.append(FileStorageObserver("my_runs"))

    @ex.config
    def cfg():
        C = 1.0
        gamma = 0.7
        optimizer = {"name": "sgd", "momentum": 0.9}

    @ex.automain
    def run(C, gamma, _run):
        for step in range(4):
            _run.log_scalar("training.loss", 1.0 / (step + 1), step)
        print("fitted the model")
        with open("model.txt", "w") as f:
            f.write(f"svm C={C}")
        _run.add_artifact("model.txt")
        if C > 5:
            raise RuntimeError("C too large")
        return C * gamma
"""


def iso(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.fixture(scope="module")
def observer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("sacred")
    run_script(directory, EXPERIMENT, "with", "C=0.5")
    run_script(directory, EXPERIMENT)
    script = directory / "script.py"
    failed = subprocess.run(
        [sys.executable, str(script), "with", "C=10"], cwd=directory, capture_output=True
    )
    assert failed.returncode != 0
    return directory / "my_runs"


def test_observer_runs_are_imported_field_by_field_and_only_once(
    observer_dir: Path, tmp_path: Path
) -> None:
    store = tmp_path / "labkeep"
    done = labkeep_import(store, "sacred", str(observer_dir))
    assert done.returncode == 0, done.stderr
    assert summary_line(done).startswith("imported 3 run(s) from sacred")
    imported = imported_runs(store)
    assert sorted(imported) == sorted(str(observer_dir / n) for n in ("1", "2", "3"))
    for run_dir in sorted(observer_dir.glob("[0-9]*")):
        run = json.loads((run_dir / "run.json").read_text())
        config = json.loads((run_dir / "config.json").read_text())
        metrics = json.loads((run_dir / "metrics.json").read_text())
        record = imported[str(run_dir)]
        info = record.info
        assert info.experiment == run["experiment"]["name"] == "iris_rbf_svm"
        assert info.status.value == {"COMPLETED": "completed", "FAILED": "failed"}[run["status"]]
        assert close_to(info.start_time, iso(run["start_time"]))
        assert close_to(info.end_time or 0, iso(run["stop_time"]))
        assert info.host == run["host"]["hostname"]
        assert record.params == {
            "C": config["C"],
            "gamma": config["gamma"],
            "optimizer.name": config["optimizer"]["name"],
            "optimizer.momentum": config["optimizer"]["momentum"],
            "seed": config["seed"],
        }
        for key, columns in metrics.items():
            steps, values, times = history(store, info.number, key)
            assert steps == columns["steps"]
            assert values == columns["values"]
            assert all(
                close_to(t, iso(s)) for t, s in zip(times, columns["timestamps"], strict=True)
            )
        artifacts = {a.path: a for a in record.artifacts}
        assert sorted(artifacts) == sorted(run["artifacts"])
        assert blob_text(store, artifacts["model.txt"].sha256) == f"svm C={config['C']}"
        if run["status"] == "COMPLETED":
            assert record.summary["result"] == run["result"]
        else:
            assert "C too large" in (info.error or "")

    again = labkeep_import(store, "sacred", str(observer_dir))
    assert "imported 0 run(s)" in summary_line(again)
    assert "skipped 3 already imported" in summary_line(again)
    assert run_count(store) == 3


def test_foreign_directory_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "labkeep"
    foreign = tmp_path / "data"
    (foreign / "1").mkdir(parents=True)
    (foreign / "1" / "values.csv").write_text("a,b\n")
    done = labkeep_import(store, "sacred", str(foreign))
    assert done.returncode != 0
    assert error_lines(done) == [
        f"labkeep: {foreign} is not a Sacred FileStorageObserver directory: "
        "no run directory with a run.json in it"
    ]
    assert run_count(store) == 0


def test_damaged_run_is_named_and_the_others_imported(observer_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "my_runs"
    shutil.copytree(observer_dir, copy)
    (copy / "2" / "run.json").write_text('{"experiment": {"name": "x"}, "sta')
    (copy / "3" / "run.json").write_text(json.dumps({"experiment": {}, "status": "DREAMING"}))
    store = tmp_path / "labkeep"
    done = labkeep_import(store, "sacred", str(copy))
    assert done.returncode == 1
    assert "imported 1 run(s)" in summary_line(done)
    assert "2 not understood (not imported)" in summary_line(done)
    errors = error_lines(done)
    assert len(errors) == 2
    assert errors[0].startswith(f"labkeep: not imported: Sacred run {copy / '2'}: ")
    assert "status 'DREAMING'" in errors[1]
    assert run_count(store) == 1
