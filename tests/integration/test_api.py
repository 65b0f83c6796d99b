"""The public logging API against real stores: ``labkeep.init`` / ``log`` / ``config`` /
``summary`` / ``finish`` / artifacts, the read views, store location and ``mode``."""

from __future__ import annotations

import argparse
import math
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import labkeep
from conftest import child_env, run_python
from labkeep.errors import InvalidInputError, LabkeepError, NotFoundError, RunStateError
from labkeep.store._uri import _find_enclosing

NAN, INF = float("nan"), float("inf")


@dataclass
class Model:
    depth: int = 4
    act: str = "relu"


@dataclass
class Config:
    lr: float = 0.01
    model: Model = field(default_factory=Model)


def test_round_trip_on_every_backend(store_uri: str, tmp_path: Path) -> None:
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"\x00\x01" * 500)
    with labkeep.init(
        "mnist",
        config={"optimizer": {"lr": 1e-3, "name": "adam"}, "layers": [64, 32], "seed": None},
        tags=["baseline"],
        notes="first",
        store=store_uri,
    ) as run:
        assert isinstance(run, labkeep.Run)
        assert labkeep.active_run() is run
        for epoch in range(5):
            run.log({"loss": 1.0 / (epoch + 1), "acc": epoch / 10})
        run.summary["best_acc"] = 0.4
        run.log_artifact(weights)
    assert labkeep.active_run() is None
    view = labkeep.get_run(run.uuid, store=store_uri)
    assert view.uuid == run.uuid and view.number == run.number
    assert view.experiment == "mnist"
    assert view.status is labkeep.RunStatus.COMPLETED
    assert view.params == {
        "optimizer.lr": 1e-3,
        "optimizer.name": "adam",
        "layers": [64, 32],
        "seed": None,
    }
    loss = view.metrics["loss"]
    assert (loss.last, loss.min, loss.max, loss.count, loss.last_step) == (0.2, 0.2, 1.0, 5, 4)
    assert view.summary == {"best_acc": 0.4}
    assert view.tags == ["baseline"]
    assert view.notes == "first"
    assert [a.path for a in view.artifacts] == ["weights.bin"]
    assert view.artifact_path("weights.bin").read_bytes() == weights.read_bytes()
    assert view.end_time is not None and view.duration is not None


def test_steps_auto_increment_and_keep_out_of_order_and_repeats(tmp_path: Path) -> None:
    with labkeep.init(store=tmp_path / "s") as run:
        run.log({"a": 0.0})  # step 0
        run.log({"a": 1.0})  # step 1
        run.log({"a": 2.0}, step=10)
        run.log({"a": 3.0})  # step 11
        run.log({"a": 4.0}, step=3)  # out of order
        run.log({"a": 5.0}, step=3)  # repeated
    series = labkeep.get_run("last", store=tmp_path / "s").series("a")
    assert series.steps.tolist() == [0, 1, 10, 11, 3, 3]
    assert series.values.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert len(series) == 6


def test_several_keys_in_one_call_and_numpy_values(tmp_path: Path) -> None:
    import numpy as np

    with labkeep.init(store=tmp_path / "s") as run:
        run.log({"x": np.float32(0.5), "y": np.int64(3), "z": 7}, step=2)
    metrics = labkeep.get_run("last", store=tmp_path / "s").metrics
    assert {k: (m.last, m.last_step) for k, m in metrics.items()} == {
        "x": (0.5, 2),
        "y": (3.0, 2),
        "z": (7.0, 2),
    }


def test_wide_calls_of_the_same_keys_keep_every_value_in_its_key(tmp_path: Path) -> None:
    """A wide call whose keys are the previous call's, in its order, takes a shorter path:
    values still land under their own keys when the order changes, a key is added, or a
    value is not a float."""
    import numpy as np

    names = [f"k{i}" for i in range(20)]
    with labkeep.init(store=tmp_path / "s") as run:
        run.log({n: float(i) for i, n in enumerate(names)}, step=0)
        run.log({n: float(i) + 100 for i, n in enumerate(names)}, step=1)
        run.log({n: float(i) + 200 for i, n in reversed(list(enumerate(names)))}, step=2)
        run.log({**{n: float(i) + 300 for i, n in enumerate(names)}, "new": -1.0}, step=3)
        run.log({n: np.float32(i + 400) if i == 5 else i + 400 for i, n in enumerate(names)}, 4)
        with pytest.raises(LabkeepError):
            run.log({**{n: 1.0 for n in names}, "bad": "x"}, step=5)
        run.log({n: float(i) + 600 for i, n in enumerate(names)}, step=6)
    view = labkeep.get_run("last", store=tmp_path / "s")
    for i, n in enumerate(names):
        series = view.series(n)
        assert series.steps.tolist() == [0, 1, 2, 3, 4, 6], n
        assert series.values.tolist() == [i, i + 100, i + 200, i + 300, i + 400, i + 600], n
    assert view.series("new").values.tolist() == [-1.0]
    assert "bad" not in view.metrics


def test_rows_of_many_steps_logged_at_once_keep_every_point(tmp_path: Path) -> None:
    """``Run.log_rows``: the runner's path for printed scalars, one record per key."""
    with labkeep.init(store=tmp_path / "s") as run:
        run.log({"a": 9.0}, step=0)
        run.log_rows(
            [(1, [("a", 1.0), ("b", 2.0)]), (2, [("a", 3.0), ("a", 4.0)]), (5, [("b", 6)])]
        )
        run.log({"a": 7.0})  # step 6: after the last row
    view = labkeep.get_run("last", store=tmp_path / "s")
    a, b = view.series("a"), view.series("b")
    assert a.steps.tolist() == [0, 1, 2, 2, 6] and a.values.tolist() == [9.0, 1.0, 3.0, 4.0, 7.0]
    assert b.steps.tolist() == [1, 5] and b.values.tolist() == [2.0, 6.0]
    assert view.metrics["a"].count == 5


def test_config_takes_dict_namespace_and_dataclass(tmp_path: Path) -> None:
    with labkeep.init(store=tmp_path / "s", config=Config()) as run:
        run.config.update(argparse.Namespace(epochs=3, data=argparse.Namespace(path="x.csv")))
        run.config.update({"extra": {"flag": True}}, batch=32)
        run.config["dropout"] = 0.1
        assert run.config["model.depth"] == 4
        assert "epochs" in run.config and len(run.config) == 8
        with pytest.raises(InvalidInputError):
            del run.config["dropout"]
    params = labkeep.get_run("last", store=tmp_path / "s").params
    assert params == {
        "lr": 0.01,
        "model.depth": 4,
        "model.act": "relu",
        "epochs": 3,
        "data.path": "x.csv",
        "extra.flag": True,
        "batch": 32,
        "dropout": 0.1,
    }


def test_params_round_trip_exactly(tmp_path: Path) -> None:
    config = {"i": 2**62, "f": 0.1, "b": False, "s": "", "n": None, "l": [1, [2.5, "x"], None]}
    with labkeep.init(store=tmp_path / "s", config=config):
        pass
    params = labkeep.get_run("last", store=tmp_path / "s").params
    assert params == config
    assert {k: type(v) for k, v in params.items()} == {k: type(v) for k, v in config.items()}


def test_summary_tags_notes(tmp_path: Path) -> None:
    with labkeep.init(store=tmp_path / "s", tags="first") as run:
        run.summary.update({"best": 0.9, "epoch": 3})
        run.summary["best"] = 0.95
        run.tags.add("b", "a")
        run.tags.remove("first")
        run.notes = "looks good"
        assert "a" in run.tags and "first" not in run.tags
        assert run.notes == "looks good"
    view = labkeep.get_run("last", store=tmp_path / "s")
    assert view.summary == {"best": 0.95, "epoch": 3}
    assert view.tags == ["a", "b"]
    assert view.notes == "looks good"


def test_module_level_functions_forward_to_the_active_run(tmp_path: Path) -> None:
    with pytest.raises(RunStateError, match=r"labkeep\.init"):
        labkeep.log({"x": 1.0})
    run = labkeep.init(store=tmp_path / "s", config={"a": 1})
    assert labkeep.active_run() is run
    labkeep.config.update({"b": 2})
    labkeep.config["c"] = 3
    labkeep.summary["best"] = 1.5
    labkeep.log({"x": 1.0})
    labkeep.log({"x": 2.0}, step=5)
    (tmp_path / "f.txt").write_text("hi")
    assert labkeep.log_artifact(tmp_path / "f.txt", name="notes/f.txt") == "notes/f.txt"
    assert dict(labkeep.config) == {"a": 1, "b": 2, "c": 3}
    labkeep.finish()
    assert labkeep.active_run() is None
    with pytest.raises(RunStateError):
        labkeep.finish()
    view = labkeep.get_run(run.number, store=tmp_path / "s")
    assert view.params == {"a": 1, "b": 2, "c": 3}
    assert view.summary == {"best": 1.5}
    assert (view.metrics["x"].count, view.metrics["x"].last_step) == (2, 5)
    assert [a.path for a in view.artifacts] == ["notes/f.txt"]


def test_finish_with_a_status_and_twice(tmp_path: Path) -> None:
    run = labkeep.init(store=tmp_path / "s")
    run.finish("failed")
    run.finish()  # harmless
    assert run.status is labkeep.RunStatus.FAILED
    assert labkeep.get_run("last", store=tmp_path / "s").status is labkeep.RunStatus.FAILED


def test_what_the_runner_records_goes_through_the_runs_public_methods(tmp_path: Path) -> None:
    """``labkeep run`` records console lines, its command and the script's argv through
    ``log_output``, ``set_snapshot_value`` and ``set_snapshot_argv``; they reach the store."""
    from labkeep._client import Client

    client = Client(tmp_path / "s")
    run = client.start_run(experiment="e", cwd=tmp_path, argv=["a.py"], system_metrics=None)
    run.log_output([["stdout", 1.5, ["hello", "world"]], ["stderr", 2.0, ["oops"]]])
    run.set_snapshot_value("command", {"target": "a.py"})
    run.set_snapshot_argv(["a.py", "--lr", "0.1"])
    assert not run.finished
    run.finish()
    assert run.finished
    number = run.number
    lines = client.store.get_output(number)
    assert [(line.stream, line.text) for line in lines] == [
        ("stdout", "hello"),
        ("stdout", "world"),
        ("stderr", "oops"),
    ]
    snapshot = client.store.get_snapshot(number)
    assert snapshot is not None and snapshot["command"] == {"target": "a.py"}
    assert snapshot["host"]["argv"] == ["a.py", "--lr", "0.1"]  # type: ignore[index]
    client.close()


def test_logging_to_a_finished_run_is_refused(tmp_path: Path) -> None:
    run = labkeep.init(store=tmp_path / "s")
    run.log({"x": 1.0})
    run.finish()
    for call in (
        lambda: run.log({"x": 2.0}),
        lambda: run.log({"new": 2.0}),
        lambda: run.config.update({"a": 1}),
        lambda: run.summary.update({"a": 1}),
    ):
        with pytest.raises(RunStateError, match="finished"):
            call()


def test_second_init_while_a_run_is_active_is_refused(tmp_path: Path) -> None:
    with labkeep.init(store=tmp_path / "s"), pytest.raises(RunStateError, match="finish"):
        labkeep.init(store=tmp_path / "s")


def test_run_number_and_name(tmp_path: Path) -> None:
    with labkeep.init(store=tmp_path / "s", name="first") as first:
        assert first.number == 1 and first.name == "first"
    with labkeep.init(store=tmp_path / "s") as second:
        assert second.number == 2
        assert second.name.endswith("-2")
    assert labkeep.get_run("first", store=tmp_path / "s").number == 1


def test_nan_and_inf_are_stored_faithfully(tmp_path: Path) -> None:
    with labkeep.init(store=tmp_path / "s", config={"eps": INF}) as run:
        for value in (1.0, NAN, -INF, INF, 0.5, NAN):
            run.log({"v": value})
        run.summary["worst"] = -INF
    view = labkeep.get_run("last", store=tmp_path / "s")
    v = view.metrics["v"]
    assert math.isnan(v.last) and (v.min, v.max, v.count) == (-INF, INF, 6)
    values = view.series("v").values.tolist()
    assert [str(x) for x in values] == ["1.0", "nan", "-inf", "inf", "0.5", "nan"]
    assert view.params["eps"] == INF and view.summary["worst"] == -INF


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"loss": "0.5"}, "'loss'"),
        ({"loss": None}, "'loss'"),
        ({"acc": [1.0]}, "'acc'"),
        ({"": 1.0}, "empty metric key"),
        ({"k" * 300: 1.0}, "kkkkkkkk"),
        ({3: 1.0}, "3"),
    ],
)
def test_bad_metrics_raise_one_line_errors(
    tmp_path: Path, data: dict[Any, Any], fragment: str
) -> None:
    with labkeep.init(store=tmp_path / "s") as run:
        with pytest.raises(LabkeepError) as info:
            run.log(data)
        message = str(info.value)
        assert fragment in message and "\n" not in message
        run.log({"ok": 1.0})  # the run goes on
    assert list(labkeep.get_run("last", store=tmp_path / "s").metrics) == ["ok"]


def test_values_no_backend_can_hold_are_refused_before_they_reach_the_store(
    tmp_path: Path,
) -> None:
    """Refused at the call, naming what is wrong, instead of failing in the ingester."""
    store = tmp_path / "s"
    with pytest.raises(InvalidInputError, match="experiment name"):
        labkeep.init("e" * 300, store=store)
    with pytest.raises(InvalidInputError, match="run name"):
        labkeep.init(name="n" * 300, store=store)
    with pytest.raises(InvalidInputError, match="NUL"):
        labkeep.init(notes="a\x00b", store=store)
    (tmp_path / "f.txt").write_text("x")
    with labkeep.init(store=store) as run:
        with pytest.raises(InvalidInputError, match="NUL"):
            run.notes = "a\x00b"
        with pytest.raises(InvalidInputError, match="kind"):
            run.log_artifact(tmp_path / "f.txt", kind="k" * 40)
        with pytest.raises(InvalidInputError, match="does not end a run"):
            run.finish("running")
        with pytest.raises(InvalidInputError, match="does not end a run"):
            run.finish("done")
    assert labkeep.get_run("last", store=store).status is labkeep.RunStatus.COMPLETED


def test_nul_characters_are_stored_on_every_backend(store_uri: str) -> None:
    with pytest.raises(ValueError), labkeep.init(config={"sep": "a\x00b"}, store=store_uri) as run:
        run.summary["raw"] = "\x00"
        raise ValueError("bad byte \x00 in input")
    view = labkeep.get_run(run.uuid, store=store_uri)
    assert view.params == {"sep": "a\x00b"}
    assert view.summary == {"raw": "\x00"}
    assert view.status is labkeep.RunStatus.FAILED
    assert "bad byte \\x00 in input" in (view.error or "")


def test_bad_step_is_refused(tmp_path: Path) -> None:
    with labkeep.init(store=tmp_path / "s") as run:
        with pytest.raises(InvalidInputError, match="step"):
            run.log({"x": 1.0}, step=1.5)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="step"):
            run.log({"x": 1.0}, step=True)


def test_unserialisable_param_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(LabkeepError, match=r"'model\.callback'"):
        labkeep.init(store=tmp_path / "s", config={"model": {"callback": print}})
    with labkeep.init(store=tmp_path / "s") as run:
        with pytest.raises(LabkeepError, match="'tags_set'"):
            run.config["tags_set"] = {1, 2}
        with pytest.raises(LabkeepError, match="'bad'"):
            run.summary["bad"] = object()


def test_bad_artifacts_are_refused(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    with labkeep.init(store=tmp_path / "s") as run:
        with pytest.raises(InvalidInputError, match="does not exist"):
            run.log_artifact(tmp_path / "missing.txt")
        with pytest.raises(InvalidInputError, match="leaves the run"):
            run.log_artifact(tmp_path / "f.txt", name="../escape.txt")


def test_same_file_logged_1000_times_is_stored_once(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n" * 100)
    # capture=False: the snapshot's own blobs (package list, code) are not what is counted here
    with labkeep.init(store=tmp_path / "s", capture=False) as run:
        for i in range(1000):
            run.log_artifact(data, name=f"inputs/copy{i}.csv")
    view = labkeep.get_run("last", store=tmp_path / "s")
    assert len(view.artifacts) == 1000
    assert len({a.sha256 for a in view.artifacts}) == 1
    blobs = [p for p in (tmp_path / "s" / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 1
    assert blobs[0].read_bytes() == data.read_bytes()


def test_artifact_directory(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "a.txt").write_text("a")
    (out / "sub" / "b.txt").write_text("b")
    with labkeep.init(store=tmp_path / "s") as run:
        assert run.log_artifact(out) == "out"
    view = labkeep.get_run("last", store=tmp_path / "s")
    assert [a.path for a in view.artifacts] == ["out/a.txt", "out/sub/b.txt"]
    assert view.artifact_path("out/sub/b.txt").read_text() == "b"
    with pytest.raises(NotFoundError, match=r"out/a\.txt"):
        view.artifact_path("nope")


def test_runs_lists_newest_first_by_experiment(tmp_path: Path) -> None:
    store = tmp_path / "s"
    for experiment, lr in (("a", 0.1), ("b", 0.2), ("a", 0.3)):
        with labkeep.init(experiment, config={"lr": lr}, store=store) as run:
            run.log({"loss": lr})
    a_runs = labkeep.runs("a", store=store)
    assert [r.params["lr"] for r in a_runs] == [0.3, 0.1]
    assert len(labkeep.runs(store=store)) == 3
    assert a_runs[0].metrics["loss"].last == 0.3
    records = a_runs.to_records()
    assert records[0]["params.lr"] == 0.3 and records[0]["metrics.loss"] == 0.3
    assert labkeep.runs("a", store=store, limit=1)[0].params["lr"] == 0.3
    assert list(labkeep.runs("missing", store=store)) == []


def test_a_read_sees_what_this_process_logged_a_moment_before(store_uri: str) -> None:
    """A run is registered and its points ingested in the background: a read from the same
    process waits for them, as ``mlflow.search_runs()`` after ``log_metric`` sees them."""
    import threading

    run = labkeep.init("live", config={"lr": 0.1}, store=store_uri)
    run.log({"loss": 0.5})
    (view,) = labkeep.runs("live", store=store_uri)
    assert view.status == "running" and view.metrics["loss"].last == 0.5
    run.log({"loss": 0.25})
    # A run being finished on another thread (as autolog finishes its runs) is seen too.
    finishing = threading.Thread(target=run.finish)
    finishing.start()
    assert labkeep.get_run(run.uuid, store=store_uri).metrics["loss"].last == 0.25
    finishing.join()
    assert labkeep.get_run(run.uuid, store=store_uri).status == "completed"


def test_reading_a_store_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no runs yet"):
        labkeep.get_run("last", store=tmp_path / "nothing")
    assert len(labkeep.runs(store=tmp_path / "nothing")) == 0
    assert not (tmp_path / "nothing").exists()


def test_unknown_run_is_a_not_found_error(tmp_path: Path) -> None:
    with labkeep.init(store=tmp_path / "s"):
        pass
    with pytest.raises(NotFoundError, match="no run 'nope'"):
        labkeep.get_run("nope", store=tmp_path / "s")


# -- where the store is ------------------------------------------------------------------


def test_default_store_is_created_in_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    if _find_enclosing(project) is not None:
        pytest.skip(f"a .labkeep above {project} would be used instead")
    monkeypatch.chdir(project)
    with labkeep.init() as run:
        run.log({"x": 1.0})
    db = project / ".labkeep" / "labkeep.db"
    assert db.is_file()
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT uuid FROM runs").fetchall() == [(run.uuid,)]


def test_store_is_found_in_an_enclosing_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    deep = project / "src" / "models"
    deep.mkdir(parents=True)
    monkeypatch.chdir(project)
    with labkeep.init():
        pass
    monkeypatch.chdir(deep)
    with labkeep.init() as run:
        pass
    assert not (deep / ".labkeep").exists() and not (project / "src" / ".labkeep").exists()
    assert labkeep.get_run("last").uuid == run.uuid
    assert len(labkeep.runs(store=project / ".labkeep")) == 2


def test_labkeep_home_and_store_argument_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABKEEP_HOME", str(tmp_path / "home"))
    with labkeep.init() as from_env:
        pass
    with labkeep.init(store=tmp_path / "explicit") as from_arg:
        pass
    assert not (tmp_path / ".labkeep").exists()
    assert labkeep.get_run("last", store=tmp_path / "home").uuid == from_env.uuid
    assert labkeep.get_run("last").uuid == from_env.uuid  # reads honour LABKEEP_HOME too
    assert labkeep.get_run("last", store=tmp_path / "explicit").uuid == from_arg.uuid
    with labkeep.init(store=f"sqlite:///{tmp_path / 'file.db'}") as from_uri:
        pass
    assert (tmp_path / "file.db").is_file()
    assert labkeep.get_run("last", store=f"sqlite:///{tmp_path / 'file.db'}").uuid == from_uri.uuid


def test_unsupported_uri_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LabkeepError, match="unsupported store URI"):
        labkeep.init(store="mysql://localhost/x")


# -- mode="disabled" -----------------------------------------------------------------------


def test_disabled_mode_is_a_no_op_and_creates_no_store(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    run = labkeep.init("e", config={"a": {"b": 1}}, mode="disabled")
    run.log({"x": 1.0})
    run.log({"x": 2.0}, step=7)
    run.config.update(argparse.Namespace(lr=0.1))
    run.config["c"] = 2
    run.summary["best"] = 1
    run.tags.add("a", "b")
    run.notes = "n"
    assert run.log_artifact(tmp_path / "f.txt") == "f.txt"
    labkeep.log({"y": 1.0})
    labkeep.config["d"] = 1
    labkeep.summary["e"] = 2
    run.finish()
    with labkeep.init(mode="disabled") as again:
        again.log({"z": 0.0})
    assert not (tmp_path / ".labkeep").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_disabled_mode_from_the_environment(tmp_path: Path) -> None:
    result = run_python(
        """
import labkeep
with labkeep.init(config={"a": 1}) as run:
    labkeep.log({"x": 1.0})
    run.log({"x": 2.0})
print("ok")
""",
        cwd=tmp_path,
        env=child_env(LABKEEP_MODE="disabled"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert not (tmp_path / ".labkeep").exists()


def test_unknown_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="mode"):
        labkeep.init(mode="offline-ish", store=tmp_path / "s")


# -- LABKEEP_RUN_ID --------------------------------------------------------------------


def test_child_process_attaches_to_the_parent_run(tmp_path: Path) -> None:
    store = tmp_path / "s"
    run = labkeep.init("shared", config={"from_parent": 1}, store=store)
    for step in range(3):
        run.log({"parent_loss": float(step), "both": 1.0}, step=step)
    run.number  # noqa: B018 (waits until the store has the run)
    child = run_python(
        """
import labkeep
with labkeep.init(config={"from_child": 2}) as run:
    assert run.attached
    for step in range(4):
        run.log({"child_loss": float(step), "both": 2.0}, step=100 + step)
    run.summary["child"] = "done"
print(run.uuid)
""",
        cwd=tmp_path,
        env=child_env(LABKEEP_RUN_ID=run.uuid, LABKEEP_HOME=str(store)),
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == run.uuid
    # The child ending does not end the parent's run.
    assert labkeep.get_run(run.uuid, store=store).status is labkeep.RunStatus.RUNNING
    run.log({"parent_loss": 9.0}, step=3)
    run.finish()

    runs = labkeep.runs(store=store)
    assert len(runs) == 1
    view = runs[0]
    assert view.status is labkeep.RunStatus.COMPLETED
    assert view.params == {"from_parent": 1, "from_child": 2}
    assert view.summary == {"child": "done"}
    assert view.metrics["parent_loss"].count == 4
    assert view.metrics["child_loss"].count == 4
    both = view.metrics["both"]
    assert (both.count, both.min, both.max) == (7, 1.0, 2.0)
    assert sorted(view.series("both").steps.tolist()) == [0, 1, 2, 100, 101, 102, 103]
    assert not any((store / "journals").iterdir())


def test_journal_is_removed_after_finish(tmp_path: Path) -> None:
    with labkeep.init(store=tmp_path / "s") as run:
        run.log({"x": 1.0})
        assert len(os.listdir(tmp_path / "s" / "journals")) == 1
    assert os.listdir(tmp_path / "s" / "journals") == []


def test_too_many_keys_in_one_call_is_a_clear_error(tmp_path: Path) -> None:
    with labkeep.init(store=tmp_path / "s", capture=False, system_metrics=0) as run:
        with pytest.raises(InvalidInputError, match="at most 65,535"):
            run.log({f"k{i}": 1.0 for i in range(65536)})
        run.log({f"k{i}": 1.0 for i in range(65535)})
    assert len(labkeep.get_run("last", store=tmp_path / "s").metrics) == 65535


def test_a_rejected_log_call_does_not_use_up_a_step(tmp_path: Path) -> None:
    with labkeep.init(store=tmp_path / "s", capture=False, system_metrics=0) as run:
        run.log({"loss": 1.0})  # step 0
        with pytest.raises(InvalidInputError):
            run.log({"loss": "high"})
        with pytest.raises(InvalidInputError):
            run.log({"loss": 0.9, "acc": object()})
        with pytest.raises(InvalidInputError):
            run.log({"loss": 0.9}, step=2.5)  # type: ignore[arg-type]
        run.log({"loss": 0.5})  # still step 1
        run.log({"loss": 0.4, "acc": 0.7})  # step 2
    view = labkeep.get_run("last", store=tmp_path / "s")
    assert view.series("loss").steps.tolist() == [0, 1, 2]
    assert view.series("acc").steps.tolist() == [2]


def test_a_finished_runs_tags_change_from_python_on_every_backend(store_uri: str) -> None:
    with labkeep.init(tags=["draft"], store=store_uri, capture=False, system_metrics=0) as run:
        run.log({"loss": 1.0})
    view = labkeep.get_run(run.uuid, store=store_uri)
    view.tags.add("baseline", "paper")
    view.tags.remove("draft")
    assert view.tags == ["baseline", "paper"]
    assert "paper" in view.tags and "draft" not in view.tags
    # Written to the store at once: a fresh read sees it.
    assert labkeep.get_run(run.uuid, store=store_uri).tags == ["baseline", "paper"]
    assert [r.number for r in labkeep.runs(where="'paper' in tags", store=store_uri)] == [
        run.number
    ]
    with pytest.raises(InvalidInputError, match="tag"):
        view.tags.add("")
    assert labkeep.get_run(run.uuid, store=store_uri).tags == ["baseline", "paper"]
