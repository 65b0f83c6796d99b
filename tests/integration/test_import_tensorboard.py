"""``labkeep import tensorboard`` on event files TensorBoard's own writer and tensorboardX's
``SummaryWriter`` write, compared field by field with TensorBoard's event reader."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from import_helpers import (
    close_to,
    error_lines,
    history,
    imported_runs,
    labkeep_import,
    run_count,
    run_script,
    summary_line,
)

pytest.importorskip("tensorboard", reason="the interop extra (tensorboard) is not installed")
pytest.importorskip("tensorboardX", reason="the interop extra (tensorboardX) is not installed")

# A SummaryWriter loop as in PyTorch's TensorBoard tutorial (tensorboardX has the same API,
# without torch), with add_hparams; and tensorboard's own writer (scalars as tensors).
SCRIPT = """
    from tensorboard.summary import Writer
    from tensorboardX import SummaryWriter

    writer = SummaryWriter("runs/lr_0.1")
    for step in range(5):
        writer.add_scalar("loss/train", 1.0 / (step + 1), step)
        writer.add_scalar("accuracy", 0.5 + 0.1 * step, step * 10)
    writer.add_hparams(
        {"lr": 0.1, "optimizer": "adam", "batch_norm": True, "layers": 3},
        {"hparam/accuracy": 0.9},
    )
    writer.close()

    plain = Writer("runs/plain")
    for step in range(3):
        plain.add_scalar("val/loss", 0.3 * step, step=step)
    plain.close()
"""


@pytest.fixture(scope="module")
def logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tensorboard")
    run_script(directory, SCRIPT)
    return directory / "runs"


def scalars_read_by_tensorboard(directory: Path) -> dict[str, list[tuple[int, float, float]]]:
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.util import tensor_util

    accumulator = ea.EventAccumulator(str(directory), size_guidance={ea.SCALARS: 0, ea.TENSORS: 0})
    accumulator.Reload()
    found = {
        tag: [(e.step, e.value, e.wall_time) for e in accumulator.Scalars(tag)]
        for tag in accumulator.Tags()["scalars"]
    }
    for tag in accumulator.Tags()["tensors"]:
        found[tag] = [
            (e.step, float(tensor_util.make_ndarray(e.tensor_proto)), e.wall_time)
            for e in accumulator.Tensors(tag)
        ]
    return found


def test_event_directories_are_imported_field_by_field_and_only_once(
    logdir: Path, tmp_path: Path
) -> None:
    store = tmp_path / "labkeep"
    done = labkeep_import(store, "tensorboard", str(logdir))
    assert done.returncode == 0, done.stderr
    assert summary_line(done).startswith("imported 2 run(s) from tensorboard")
    runs = {r.info.name: r for r in imported_runs(store).values()}
    assert sorted(runs) == ["lr_0.1", "plain"]

    main = runs["lr_0.1"]
    assert main.params == {"lr": 0.1, "optimizer": "adam", "batch_norm": True, "layers": 3}
    assert main.info.experiment == "runs"
    assert main.info.status.value == "completed"
    session = next(d for d in (logdir / "lr_0.1").iterdir() if d.is_dir())
    expected = {**scalars_read_by_tensorboard(logdir / "lr_0.1")}
    expected.update(scalars_read_by_tensorboard(session))
    assert sorted(main.metrics) == sorted(expected) == ["accuracy", "hparam/accuracy", "loss/train"]
    plain_expected = scalars_read_by_tensorboard(logdir / "plain")
    assert sorted(runs["plain"].metrics) == ["val/loss"]
    for record, wanted in ((main, expected), (runs["plain"], plain_expected)):
        for key, points in wanted.items():
            steps, values, times = history(store, record.info.number, key)
            assert steps == [p[0] for p in points]
            assert values == [p[1] for p in points]
            assert times == [p[2] for p in points]
        all_times = [p[2] for points in wanted.values() for p in points]
        assert close_to(record.info.start_time, min(all_times))
        assert close_to(record.info.end_time or 0, max(all_times))
        assert record.summary["import.source"] == "tensorboard"

    again = labkeep_import(store, "tensorboard", str(logdir))
    assert again.returncode == 0
    assert "imported 0 run(s)" in summary_line(again)
    assert "skipped 2 already imported" in summary_line(again)
    assert run_count(store) == 2


def test_directory_without_event_files_is_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("nothing to see")
    store = tmp_path / "labkeep"
    done = labkeep_import(store, "tensorboard", str(foreign))
    assert done.returncode != 0
    assert error_lines(done) == [
        f"labkeep: {foreign} holds no TensorBoard event files (events.out.tfevents.*)"
    ]
    assert run_count(store) == 0


def test_damaged_event_file_is_reported_and_the_rest_imported(logdir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "runs"
    shutil.copytree(logdir, copy)
    broken = copy / "broken"
    broken.mkdir()
    (broken / "events.out.tfevents.1.host").write_bytes(b"\x00garbage" * 50)
    store = tmp_path / "labkeep"
    done = labkeep_import(store, "tensorboard", str(copy))
    assert done.returncode == 1
    assert "1 not understood (not imported)" in summary_line(done)
    assert error_lines(done) == [
        f"labkeep: not imported: TensorBoard cannot read the event files in {broken} "
        "(events.out.tfevents.1.host): damaged, or not event files"
    ]
    assert sorted(r.info.name for r in imported_runs(store).values()) == ["lr_0.1", "plain"]


def test_event_files_are_read_and_written_without_loading_tensorflow(
    logdir: Path, tmp_path: Path
) -> None:
    """TensorFlow's import takes seconds and prints CPU notices to stderr on some hosts:
    reading and writing event files needs only TensorBoard's own stub of it."""
    done = run_script(
        tmp_path,
        f"""
        import sys
        from pathlib import Path
        import labkeep
        from labkeep._client import Client
        from labkeep.integrations._tensorboard import read_event_dir
        from labkeep.integrations._tensorboard_export import export_runs

        data = read_event_dir(Path({str(logdir / "plain")!r}))
        with labkeep.init("tb", config={{"lr": 0.1}}) as run:
            run.log({{"loss": 0.5}})
        export_runs(Client().store, [1], Path("tb"))
        print("tensorflow" in sys.modules, sorted(data.metrics))
        """,
    )
    assert done.stdout.split("\n")[0] == "False ['val/loss']", done.stderr
