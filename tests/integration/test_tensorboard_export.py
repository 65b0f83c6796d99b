"""``labkeep tensorboard``: runs logged with labkeep, written as event files and read back with
TensorBoard's own reader field by field; a round trip through ``labkeep import tensorboard``;
TensorBoard itself started on them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from import_helpers import SRC, history, imported_runs, labkeep_import

import labkeep
from labkeep.integrations._tensorboard_export import run_dirname
from labkeep.store import Store, locate_store, open_store

pytest.importorskip("tensorboard", reason="the interop extra (tensorboard) is not installed")

PARAMS = [
    {"lr": 0.1, "optimizer": "adam", "batch_norm": True, "layers": 3, "sizes": [32, 16]},
    {"lr": 0.01, "optimizer": "sgd", "batch_norm": False, "layers": 4, "sizes": [64]},
]


CLI = [sys.executable, "-m", "labkeep.cli"]


def labkeep_cli(
    store: Path, *args: str, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("LABKEEP_HOME", None)
    return subprocess.run(
        [sys.executable, "-m", "labkeep.cli", "--store", str(store), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """Two runs of experiment ``mnist`` with params and metrics over steps, one of ``other``."""
    path = tmp_path / "store"
    for i, params in enumerate(PARAMS):
        with labkeep.init(
            "mnist", config=params, name=f"trial {i}", store=path, capture=False
        ) as run:
            for step in range(5):
                run.log(
                    {"loss": params["lr"] / (step + 1) + 1e-12, "acc": 0.5 + 0.1 * step},
                    step=step * 10,
                )
            run.log({"val/loss": 0.25 + i}, step=40)
    with labkeep.init("other", config={"lr": 1.0}, store=path, capture=False) as run:
        run.log({"loss": 3.0}, step=0)
    return path


def as_float32(values: Any) -> list[float]:
    import numpy as np

    return [float(np.float32(v)) for v in values]


def wait_for_points(path: Path, number: int, key: str, count: int) -> None:
    """Until the run's ingester has moved ``count`` points of ``key`` into the store."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        labkeep_store = open_labkeep(path)
        try:
            metrics = labkeep_store.get_records([number])[0].metrics
        finally:
            labkeep_store.close()
        if key in metrics and metrics[key].count >= count:
            return
        time.sleep(0.1)
    pytest.fail(f"{count} points of {key} did not reach the store")


def open_labkeep(path: Path) -> Store:
    return open_store(locate_store(str(path)))


def read_events(directory: Path) -> Any:
    from tensorboard.backend.event_processing import event_accumulator as ea

    accumulator = ea.EventAccumulator(str(directory), size_guidance={ea.SCALARS: 0, ea.TENSORS: 0})
    accumulator.Reload()
    return accumulator


def scalars(accumulator: Any) -> dict[str, list[tuple[int, float, float]]]:
    from tensorboard.util import tensor_util

    found: dict[str, list[tuple[int, float, float]]] = {}
    for tag in accumulator.Tags()["tensors"]:
        if accumulator.SummaryMetadata(tag).plugin_data.plugin_name != "scalars":
            continue
        found[tag] = [
            (e.step, tensor_util.make_ndarray(e.tensor_proto).item(), e.wall_time)
            for e in accumulator.Tensors(tag)
        ]
    return found


def hparams_data(accumulator: Any) -> dict[str, Any]:
    from tensorboard.plugins.hparams import plugin_data_pb2

    return {
        tag: plugin_data_pb2.HParamsPluginData.FromString(content)
        for tag, content in accumulator.PluginTagToContent("hparams").items()
    }


def test_runs_are_written_as_event_files_tensorboard_reads_field_by_field(
    store: Path, tmp_path: Path
) -> None:
    logdir = tmp_path / "tb"
    done = labkeep_cli(store, "tensorboard", "-e", "mnist", "--logdir", str(logdir), "--no-start")
    assert done.returncode == 0, done.stderr
    assert f"wrote 2 run(s) to {logdir}" in done.stdout
    assert f"tensorboard --logdir {logdir}" in done.stdout
    assert sorted(p.name for p in logdir.iterdir() if p.is_dir()) == ["1-trial_0", "2-trial_1"]

    labkeep_store = open_labkeep(store)
    try:
        records = labkeep_store.get_records([1, 2])
        for record, directory in zip(records, ["1-trial_0", "2-trial_1"], strict=True):
            events = read_events(logdir / directory)
            written = scalars(events)
            assert sorted(written) == sorted(record.metrics) == ["acc", "loss", "val/loss"]
            for key, points in written.items():
                stored = labkeep_store.get_history(record.info.number, key)
                assert [p[0] for p in points] == list(stored.steps)
                # float32, as TensorBoard's writers write scalars (and its fast loader reads)
                assert [p[1] for p in points] == as_float32(stored.values)
                assert [p[2] for p in points] == list(stored.times)

            plugin = hparams_data(events)
            start = plugin["_hparams_/session_start_info"].session_start_info
            assert start.start_time_secs == record.info.start_time
            got = {}
            for name, value in start.hparams.items():
                got[name] = getattr(value, value.WhichOneof("kind"))
            expected = dict(record.params)
            expected["sizes"] = json.dumps(expected["sizes"])
            assert got == expected
            end = plugin["_hparams_/session_end_info"].session_end_info
            assert end.status == 1  # STATUS_SUCCESS
            assert end.end_time_secs == record.info.end_time
    finally:
        labkeep_store.close()

    experiment = hparams_data(read_events(logdir))["_hparams_/experiment"].experiment
    assert [m.name.tag for m in experiment.metric_infos] == ["acc", "loss", "val/loss"]
    infos = {h.name: h for h in experiment.hparam_infos}
    assert sorted(infos) == ["batch_norm", "layers", "lr", "optimizer", "sizes"]
    assert (infos["lr"].domain_interval.min_value, infos["lr"].domain_interval.max_value) == (
        0.01,
        0.1,
    )
    assert [v.string_value for v in infos["optimizer"].domain_discrete.values] == ["adam", "sgd"]
    assert [v.bool_value for v in infos["batch_norm"].domain_discrete.values] == [False, True]
    assert infos["lr"].type == infos["layers"].type == 3  # DATA_TYPE_FLOAT64
    assert infos["sizes"].type == 1  # DATA_TYPE_STRING


def test_exporting_again_rewrites_only_runs_that_changed(store: Path, tmp_path: Path) -> None:
    logdir = tmp_path / "tb"
    first = labkeep_cli(store, "tensorboard", "-e", "mnist", "--logdir", str(logdir), "--no-start")
    assert first.returncode == 0, first.stderr
    files = {p: p.stat().st_mtime_ns for p in logdir.glob("*/events.out.tfevents.*")}
    assert len(files) == 2

    again = labkeep_cli(store, "tensorboard", "-e", "mnist", "--logdir", str(logdir), "--no-start")
    assert again.returncode == 0, again.stderr
    assert "wrote 0 run(s)" in again.stdout and "2 unchanged" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in logdir.glob("*/events.out.tfevents.*")} == files

    run = labkeep.init("mnist", name="live", store=store, capture=False)
    try:
        run.log({"loss": 0.5}, step=0)
        wait_for_points(store, run.number, "loss", 1)
        fourth = labkeep_cli(
            store, "tensorboard", "-e", "mnist", "--logdir", str(logdir), "--no-start"
        )
        assert "wrote 1 run(s)" in fourth.stdout and "2 unchanged" in fourth.stdout
        run.log({"loss": 0.001}, step=50)
        wait_for_points(store, run.number, "loss", 2)
        fifth = labkeep_cli(
            store, "tensorboard", "-e", "mnist", "--logdir", str(logdir), "--no-start"
        )
        assert fifth.returncode == 0, fifth.stderr
        assert "wrote 1 run(s)" in fifth.stdout and "2 unchanged" in fifth.stdout
    finally:
        run.finish()
    assert {p: p.stat().st_mtime_ns for p in files} == files
    live = logdir / f"{run.number}-live"
    loss = scalars(read_events(live))["loss"]
    assert [p[:2] for p in loss] == [(0, 0.5), (50, as_float32([0.001])[0])]
    marker = json.loads((live / ".labkeep-export.json").read_text())
    assert marker["last"]["loss"][0] == 50
    assert "_hparams_/session_end_info" not in hparams_data(read_events(live))
    finished = labkeep_cli(
        store, "tensorboard", "-e", "mnist", "--logdir", str(logdir), "--no-start"
    )
    assert "wrote 1 run(s)" in finished.stdout and "2 unchanged" in finished.stdout
    assert "_hparams_/session_end_info" in hparams_data(read_events(live))

    only = labkeep_cli(store, "tensorboard", "2", "--logdir", str(logdir), "--no-start")
    assert only.returncode == 0, only.stderr
    assert sorted(p.name for p in logdir.iterdir() if p.is_dir()) == ["2-trial_1"]


def test_export_then_import_gives_the_same_metrics(store: Path, tmp_path: Path) -> None:
    logdir = tmp_path / "tb"
    done = labkeep_cli(store, "tensorboard", "--logdir", str(logdir), "--no-start")
    assert done.returncode == 0, done.stderr
    assert "wrote 3 run(s)" in done.stdout

    second = tmp_path / "second"
    imported = labkeep_import(second, "tensorboard", str(logdir))
    assert imported.returncode == 0, imported.stderr
    runs = {r.info.name: r for r in imported_runs(second).values()}

    labkeep_store = open_labkeep(store)
    try:
        originals = labkeep_store.get_records([1, 2, 3])
        names = [run_dirname(r.info.number, r.info.name) for r in originals]
        assert names[:2] == ["1-trial_0", "2-trial_1"]
        assert sorted(runs) == sorted(names)
        for original, name in zip(originals, names, strict=True):
            copy = runs[name]
            assert sorted(copy.metrics) == sorted(original.metrics)
            for key in original.metrics:
                stored = labkeep_store.get_history(original.info.number, key)
                steps, values, times = history(second, copy.info.number, key)
                assert (steps, values, times) == (
                    list(stored.steps),
                    as_float32(stored.values),
                    list(stored.times),
                )
            expected = dict(original.params)
            if "sizes" in expected:
                expected["sizes"] = json.dumps(expected["sizes"])
            assert copy.params == expected
            assert copy.info.status == original.info.status
    finally:
        labkeep_store.close()


def test_no_runs_matched_is_one_line_and_non_zero(store: Path, tmp_path: Path) -> None:
    done = labkeep_cli(
        store,
        "tensorboard",
        "--where",
        "params.lr > 5",
        "--no-start",
        "--logdir",
        str(tmp_path / "tb"),
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("labkeep: no runs that match in ")
    assert not (tmp_path / "tb").exists()

    foreign = tmp_path / "foreign"
    (foreign / "1-trial_0").mkdir(parents=True)
    (foreign / "1-trial_0" / "notes.txt").write_text("mine")
    refused = labkeep_cli(store, "tensorboard", "1", "--no-start", "--logdir", str(foreign))
    assert refused.returncode != 0
    assert refused.stderr.strip().splitlines() == [
        f"labkeep: {foreign / '1-trial_0'} exists and was not written by labkeep tensorboard: "
        "give another --logdir"
    ]
    assert (foreign / "1-trial_0" / "notes.txt").read_text() == "mine"

    unknown = labkeep_cli(
        store, "tensorboard", "99", "--no-start", "--logdir", str(tmp_path / "tb")
    )
    assert unknown.returncode != 0
    assert len(unknown.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "tb").exists()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_port_in_use_is_one_line_and_non_zero(store: Path, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = labkeep_cli(
            store, "tensorboard", "--port", str(port), "--logdir", str(tmp_path / "tb")
        )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {port} on 127.0.0.1 is in use" in lines[0]
    assert "--port" in lines[0]


def test_without_tensorboard_installed_the_extra_is_named(store: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "tensorboard.py").write_text("raise ImportError('not installed')\n")
    env = {**os.environ, "PYTHONPATH": f"{blocker}{os.pathsep}{SRC}", "NO_COLOR": "1"}
    env.pop("LABKEEP_HOME", None)
    done = subprocess.run(
        [sys.executable, "-m", "labkeep.cli", "--store", str(store), "tensorboard", "--no-start"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "labkeep: labkeep tensorboard needs the tensorboard package: pip install 'labkeep[interop]'"
    ]


def test_tensorboard_is_started_on_the_runs(store: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(SRC), "NO_COLOR": "1"}
    env.pop("LABKEEP_HOME", None)
    logdir = tmp_path / "tb"
    command = [*CLI, "--store", str(store), "tensorboard", "-e", "mnist", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--logdir", str(logdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        tags: dict[str, Any] = {}
        answered = False
        # TensorBoard imports TensorFlow where it is installed (the dev extra has it): seconds
        # on an idle machine, far more on a busy one.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/data/plugin/scalars/tags", timeout=5
                ) as answer:
                    tags = json.loads(answer.read())
                answered = True
                if all(len(tags.get(run, {})) == 3 for run in ("1-trial_0", "2-trial_1")):
                    break
            except OSError:
                pass
            time.sleep(0.5)
        if process.poll() is not None:
            pytest.fail(f"labkeep tensorboard exited: {process.communicate()[0]}")
        if not answered:
            pytest.fail(f"TensorBoard did not answer within 120 s: {command}")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=10) as answer:
            assert {"1-trial_0", "2-trial_1"} <= set(json.loads(answer.read()))
        assert sorted(tags["1-trial_0"]) == ["acc", "loss", "val/loss"]
        assert sorted(tags["2-trial_1"]) == ["acc", "loss", "val/loss"]

        # The HParams view: one session per run, its params and its metrics' last values.
        query = {
            "experimentName": "",
            "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE"],
            "colParams": [],
            "startIndex": 0,
            "sliceSize": 10,
        }
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/data/plugin/hparams/session_groups",
            data=json.dumps(query).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            groups = {g["name"]: g for g in json.loads(answer.read())["sessionGroups"]}
        assert sorted(groups) == ["1-trial_0", "2-trial_1"]
        first = groups["1-trial_0"]
        assert first["hparams"]["optimizer"] == "adam" and first["hparams"]["lr"] == 0.1
        last_loss = {m["name"]["tag"]: m for m in first["metricValues"]}["loss"]
        assert last_loss["trainingStep"] == 40
        assert last_loss["value"] == as_float32([0.1 / 5 + 1e-12])[0]
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)
