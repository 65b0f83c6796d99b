"""``labkeep import wandb`` on run directories the wandb SDK writes itself in offline mode,
compared field by field with what the script logged."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from import_helpers import (
    blob_text,
    error_lines,
    history,
    imported_runs,
    labkeep_import,
    run_count,
    run_script,
    summary_line,
)

pytest.importorskip("wandb", reason="the interop extra (wandb) is not installed")

OFFLINE = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DISABLE_GIT": "true"}

# W&B's quickstart shape: argparse flags into wandb.config, wandb.log per epoch, a summary,
# a saved file; with --fail the script dies after logging.
QUICKSTART = """
    import argparse
    import json
    import wandb

    parser = argparse.ArgumentParser()
    parser.add_argument("--learning_rate", type=float, default=0.01)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--fail", action="store_true")
    args = parser.parse_args()
    run = wandb.init(
        project="quickstart", config=args, tags=["baseline", "cnn"], notes="first try",
        name=f"lr-{args.learning_rate}",
    )
    wandb.config.update({"model": {"depth": 4, "act": "relu"}})
    for epoch in range(args.epochs):
        wandb.log({"loss": 1.0 / (epoch + 1), "acc": 0.5 + 0.1 * epoch, "note": "text"})
    wandb.log({"val/loss": 0.7}, step=10)
    run.summary["best_acc"] = 0.77
    weights = f"weights-{args.learning_rate}.txt"
    with open(weights, "w") as f:
        f.write("w" + str(args.learning_rate))
    wandb.save(weights, policy="now")
    print("hello from the script")
    with open("run_id.txt", "a") as f:
        f.write(run.id + "\\n")
    if args.fail:
        raise RuntimeError("the loss diverged")
    run.finish()
"""


@pytest.fixture(scope="module")
def wandb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("wandb-runs")
    run_script(directory, QUICKSTART, "--learning_rate", "0.1", env=OFFLINE)
    failed = subprocess.run(
        [sys.executable, "script.py", "--learning_rate", "0.5", "--epochs", "2", "--fail"],
        cwd=directory,
        capture_output=True,
        env={**os.environ, **OFFLINE},
        timeout=300,
    )
    assert failed.returncode == 1, failed.stderr
    return directory / "wandb"


def test_offline_runs_are_imported_field_by_field_and_only_once(
    wandb_dir: Path, tmp_path: Path
) -> None:
    store = tmp_path / "labkeep"
    done = labkeep_import(store, "wandb", str(wandb_dir))
    assert done.returncode == 0, done.stderr
    assert summary_line(done).startswith("imported 2 run(s) from wandb")
    run_ids = (wandb_dir.parent / "run_id.txt").read_text().split()
    imported = imported_runs(store)
    assert sorted(imported) == sorted(run_ids)

    good, failed = imported[run_ids[0]], imported[run_ids[1]]
    assert good.info.name == "lr-0.1"
    assert good.info.experiment == "quickstart"
    assert good.info.status.value == "completed"
    assert good.info.exit_code == 0
    assert good.info.notes == "first try"
    assert set(good.tags) == {"baseline", "cnn"}
    assert good.params == {
        "learning_rate": 0.1,
        "epochs": 3,
        "fail": False,
        "model.depth": 4,
        "model.act": "relu",
    }
    assert good.summary["best_acc"] == 0.77
    assert good.summary["loss"] == pytest.approx(1 / 3)
    assert sorted(good.metrics) == ["acc", "loss", "val/loss"]  # the text column is no metric
    steps, values, times = history(store, good.info.number, "loss")
    assert steps == [0, 1, 2]
    assert values == [1.0, 0.5, 1 / 3]
    end = good.info.end_time or 0
    assert good.info.start_time <= times[0] <= times[1] <= times[2] <= end
    assert history(store, good.info.number, "val/loss")[:2] == ([10], [0.7])
    artifacts = {a.path: a for a in good.artifacts}
    assert sorted(artifacts) == ["weights-0.1.txt"]
    assert blob_text(store, artifacts["weights-0.1.txt"].sha256) == "w0.1"

    assert failed.info.status.value == "failed"
    assert failed.info.exit_code == 1
    assert failed.params["learning_rate"] == 0.5
    assert history(store, failed.info.number, "acc")[:2] == ([0, 1], [0.5, 0.6])

    again = labkeep_import(store, "wandb", str(wandb_dir))
    assert "imported 0 run(s)" in summary_line(again)
    assert "skipped 2 already imported" in summary_line(again)
    assert run_count(store) == 2


def test_synced_run_without_its_log_is_read_from_its_files(tmp_path: Path) -> None:
    # The files W&B keeps next to a synced run (its documented config.yaml and
    # wandb-summary.json), when the .wandb log itself is gone.
    run_dir = tmp_path / "wandb" / "run-20240101_120000-abc123xy"
    files = run_dir / "files"
    files.mkdir(parents=True)
    (files / "config.yaml").write_text(
        "wandb_version: 1\n_wandb:\n  value: {cli_version: 0.16.0}\n"
        "lr:\n  desc: null\n  value: 0.003\nlayers:\n  desc: null\n  value: [64, 32]\n"
    )
    (files / "wandb-summary.json").write_text(
        json.dumps({"loss": 0.12, "_runtime": 42.5, "_step": 99, "_wandb": {"runtime": 42}})
    )
    (files / "wandb-metadata.json").write_text(
        json.dumps({"startedAt": "2024-01-01T12:00:00.000000Z", "host": "gpu-7"})
    )
    store = tmp_path / "labkeep"
    done = labkeep_import(store, "wandb", str(tmp_path / "wandb"))
    assert done.returncode == 0, done.stderr
    record = imported_runs(store)["abc123xy"]
    assert record.params == {"lr": 0.003, "layers": [64, 32]}
    assert record.summary["loss"] == 0.12
    assert record.info.start_time == 1704110400.0
    assert record.info.end_time == 1704110400.0 + 42.5
    assert record.info.host == "gpu-7"


def test_foreign_and_damaged_directories(wandb_dir: Path, tmp_path: Path) -> None:
    store = tmp_path / "labkeep"
    foreign = tmp_path / "logs"
    foreign.mkdir()
    (foreign / "train.log").write_text("epoch 1\n")
    done = labkeep_import(store, "wandb", str(foreign))
    assert done.returncode != 0
    assert error_lines(done) == [
        f"labkeep: {foreign} is not a W&B directory: no run-*/offline-run-* directory "
        "with a .wandb file or files/config.yaml in it"
    ]

    copy = tmp_path / "wandb"
    shutil.copytree(wandb_dir, copy, symlinks=True)
    runs = sorted(copy.glob("offline-run-*"))
    cut = next(runs[0].glob("*.wandb"))
    cut.write_bytes(cut.read_bytes()[:3000])
    header = next(runs[1].glob("*.wandb"))
    data = bytearray(header.read_bytes())
    data[6] = 7  # a log format version this reader does not know
    header.write_bytes(bytes(data))
    done = labkeep_import(store, "wandb", str(copy))
    assert done.returncode == 1
    assert "2 not understood (not imported)" in summary_line(done)
    errors = error_lines(done)
    assert len(errors) == 2
    assert any("damaged" in e or "cut short" in e for e in errors)
    assert any("format version 7" in e for e in errors)
    assert run_count(store) == 0
