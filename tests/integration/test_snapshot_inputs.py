"""Inputs and seeds reach the run's snapshot from whichever writer records them: the run's
owner, or a script attached to it (as under ``labkeep run``)."""

from __future__ import annotations

from pathlib import Path

import labkeep
from conftest import child_env, run_python


def _snapshot(store: Path) -> dict[str, object]:
    view = labkeep.get_run("last", store=store)
    snapshot = view._store.get_snapshot(view.number)
    assert snapshot is not None
    return snapshot


def test_an_attached_script_adds_its_inputs_and_seeds_to_the_owners_snapshot(
    tmp_path: Path,
) -> None:
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    store = tmp_path / "store"
    with labkeep.init(experiment="attach", store=store, system_metrics=0) as run:
        code = (
            "import labkeep\n"
            "run = labkeep.init()\n"
            f"run.use_input({str(data)!r})\n"
            "labkeep.seed(7)\n"
            "run.finish()\n"
        )
        done = run_python(
            code,
            cwd=tmp_path,
            env=child_env(LABKEEP_HOME=str(store), LABKEEP_RUN_ID=run.uuid),
        )
        assert done.returncode == 0, done.stderr
    snapshot = _snapshot(store)
    inputs = snapshot["inputs"]
    assert isinstance(inputs, list)
    assert [Path(str(i["path"])).name for i in inputs] == ["train.csv"]
    seeds = snapshot["seeds"]
    assert isinstance(seeds, list) and [s["seed"] for s in seeds] == [7]
    assert "environment" in snapshot  # the owner's capture is kept alongside


def test_inputs_of_a_run_without_capture_are_still_recorded(tmp_path: Path) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(b"\x00" * 100)
    store = tmp_path / "store"
    with labkeep.init(store=store, capture=False, system_metrics=0) as run:
        run.use_input(data)
    inputs = _snapshot(store)["inputs"]
    assert isinstance(inputs, list) and inputs[0]["size"] == 100
