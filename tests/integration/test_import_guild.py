"""``labkeep import guild`` on Guild AI run directories.

guildai is not installed here (it pins its own dependencies and takes minutes to install), so
the runs are laid out by hand as Guild writes them (guild/run.py and the "Runs" reference:
``.guild/attrs/<name>`` YAML files, ``.guild/opref``, ``.guild/output``), and their scalars are
written to ``.guild/`` with TensorBoard's own writer, as Guild writes the scalars it parses
from a run's output."""

from __future__ import annotations

from pathlib import Path

import pytest
from import_helpers import (
    blob_text,
    error_lines,
    history,
    imported_runs,
    labkeep_import,
    run_count,
    summary_line,
)

pytest.importorskip("tensorboard", reason="the interop extra (tensorboard) is not installed")
yaml = pytest.importorskip("yaml")

STARTED = 1_700_000_000_123_456  # microseconds, as Guild stores them


def guild_run(
    runs: Path, run_id: str, *, flags: dict[str, object], exit_status: int | None, label: str = ""
) -> Path:
    from tensorboard.summary import Writer

    run = runs / run_id
    attrs = run / ".guild" / "attrs"
    attrs.mkdir(parents=True)
    values: dict[str, object] = {
        "id": run_id,
        "flags": flags,
        "started": STARTED,
        "initialized": STARTED - 1000,
        "cmd": ["python", "-um", "guild.op_main", "train", "--lr", str(flags["lr"])],
        "user": "ada",
        "host": "gpu-3",
        "tags": ["baseline"],
    }
    if exit_status is not None:
        values["exit_status"] = exit_status
        values["stopped"] = STARTED + 5_000_000
    if label:
        values["label"] = label
    for name, value in values.items():
        (attrs / name).write_text(yaml.safe_dump(value))
    (run / ".guild" / "opref").write_text(f"guildfile:'{runs}/guild.yml' 'a1b2c3' '' 'train'\n")
    (run / ".guild" / "output").write_text("epoch 1 loss 0.5\nepoch 2 loss 0.25\n")
    writer = Writer(str(run / ".guild"))
    for step, loss in ((1, 0.5), (2, 0.25)):
        writer.add_scalar("loss", loss, step=step, wall_time=STARTED / 1e6 + step)
    writer.close()
    (run / "model.txt").write_text(f"model of {run_id}")
    return run


@pytest.fixture()
def runs_dir(tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    guild_run(runs, "aaaa1111", flags={"lr": 0.1, "epochs": 2}, exit_status=0, label="lr=0.1")
    guild_run(runs, "bbbb2222", flags={"lr": 0.5, "epochs": 2}, exit_status=1)
    guild_run(runs, "cccc3333", flags={"lr": 0.9, "epochs": 2}, exit_status=-15)
    guild_run(runs, "dddd4444", flags={"lr": 1.0, "epochs": 2}, exit_status=None)
    return runs


def test_runs_are_imported_field_by_field_and_only_once(runs_dir: Path, tmp_path: Path) -> None:
    store = tmp_path / "labkeep"
    done = labkeep_import(store, "guild", str(runs_dir))
    assert done.returncode == 0, done.stderr
    assert summary_line(done).startswith("imported 4 run(s) from guild")
    runs = imported_runs(store)
    statuses = {run_id: r.info.status.value for run_id, r in runs.items()}
    assert statuses == {
        "aaaa1111": "completed",
        "bbbb2222": "failed",
        "cccc3333": "interrupted",
        "dddd4444": "killed",
    }
    first = runs["aaaa1111"]
    assert first.info.name == "lr=0.1"
    assert runs["bbbb2222"].info.name == "train-bbbb2222"
    assert first.info.experiment == "train"
    assert first.params == {"lr": 0.1, "epochs": 2}
    assert first.info.start_time == STARTED / 1e6
    assert first.info.end_time == STARTED / 1e6 + 5
    assert (first.info.user, first.info.host) == ("ada", "gpu-3")
    assert first.info.exit_code == 0
    assert first.tags == ("baseline",)
    assert first.summary["guild.op"] == "train"
    assert first.summary["guild.cmd"] == "python -um guild.op_main train --lr 0.1"
    assert history(store, first.info.number, "loss") == (
        [1, 2],
        [0.5, 0.25],
        [STARTED / 1e6 + 1, STARTED / 1e6 + 2],
    )
    assert [a.path for a in first.artifacts] == ["model.txt"]
    assert blob_text(store, first.artifacts[0].sha256) == "model of aaaa1111"

    again = labkeep_import(store, "guild", str(runs_dir))
    assert "skipped 4 already imported" in summary_line(again)
    assert run_count(store) == 4


def test_one_run_directory_is_imported(runs_dir: Path, tmp_path: Path) -> None:
    store = tmp_path / "labkeep"
    done = labkeep_import(store, "guild", str(runs_dir / "bbbb2222"))
    assert done.returncode == 0, done.stderr
    assert sorted(imported_runs(store)) == ["bbbb2222"]


def test_foreign_and_damaged_runs(runs_dir: Path, tmp_path: Path) -> None:
    store = tmp_path / "labkeep"
    foreign = tmp_path / "home"
    (foreign / "docs").mkdir(parents=True)
    done = labkeep_import(store, "guild", str(foreign))
    assert done.returncode != 0
    assert error_lines(done) == [
        f"labkeep: {foreign} is not a Guild runs directory: no run with a .guild/attrs "
        "directory in it"
    ]
    (runs_dir / "bbbb2222" / ".guild" / "attrs" / "started").write_text("yesterday\n")
    (runs_dir / "cccc3333" / ".guild" / "attrs" / "flags").write_text("lr: [unclosed\n")
    done = labkeep_import(store, "guild", str(runs_dir))
    assert done.returncode == 1
    assert "2 not understood (not imported)" in summary_line(done)
    errors = error_lines(done)
    assert any("attrs/started is 'yesterday'" in e for e in errors)
    assert any("cccc3333" in e for e in errors)
    assert sorted(imported_runs(store)) == ["aaaa1111", "dddd4444"]
