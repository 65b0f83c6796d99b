"""Run structure through the public API: ``init(parent=…)`` child runs, ``group`` and
``job_type``, and ``init(id=…/name=…, resume="allow"|"must"|"never")`` that continues one run
(its earlier points intact, its steps going on), also after a SIGKILL of its first process."""

from __future__ import annotations

import uuid as uuid_mod
from pathlib import Path

import pytest

import labkeep
from conftest import child_env, run_python, start_python, wait_for_line
from labkeep import RunStatus
from labkeep.errors import InvalidInputError, LabkeepError, NotFoundError, RunStateError


def test_child_runs_of_a_run_a_uuid_or_a_number(store_uri: str) -> None:
    # A group of this test's own: a PostgreSQL schema is shared by the tests of a session.
    group = f"cv-5fold-{uuid_mod.uuid4().hex[:8]}"
    with labkeep.init("cv", group=group, job_type="summary", store=store_uri) as parent:
        for k in range(2):
            with labkeep.init(
                parent=parent, group=group, job_type="fold", config={"fold": k}
            ) as child:
                assert labkeep.active_run() is child
                labkeep.log({"acc": 0.5 + k})
        # The parent is the active run again once its children have finished.
        assert labkeep.active_run() is parent
        labkeep.log({"mean_acc": 1.0})
    by_uuid = labkeep.init(parent=parent.uuid, store=store_uri)
    by_uuid.finish()
    by_number = labkeep.init(parent=parent.number, store=store_uri)
    by_number.finish()
    view = labkeep.get_run(parent.uuid, store=store_uri)
    assert (view.group, view.job_type) == (group, "summary")
    assert view.metrics["mean_acc"].count == 1
    children = list(view.children)
    assert [c.params.get("fold") for c in children] == [0, 1, None, None]
    assert all(c.parent_uuid == parent.uuid for c in children)
    assert [(c.group, c.job_type) for c in children[:2]] == [(group, "fold")] * 2
    folds = labkeep.runs(where=f"group == '{group}' and job_type == 'fold'", store=store_uri)
    assert sorted(r.uuid for r in folds) == sorted(c.uuid for c in children[:2])


def test_a_parent_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        labkeep.init(parent=99, store=tmp_path / "s")
    assert labkeep.active_run() is None


def test_resume_must_continues_steps_config_and_status(store_uri: str) -> None:
    with labkeep.init("r", config={"lr": 0.1}, store=store_uri) as first:
        for i in range(3):
            first.log({"loss": 1.0 - i / 10})
        first.log({"other": 5.0}, step=7)
    first_uuid = first.uuid
    run = labkeep.init("r", id=first_uuid, resume="must", config={"epochs": 5}, store=store_uri)
    assert run.uuid == first_uuid
    assert run.flush()  # the resume is ingested like any record: wait for it
    assert labkeep.get_run(first_uuid, store=store_uri).status is RunStatus.RUNNING
    run.log({"loss": 0.1})  # step 8: after the last logged step
    run.finish()
    view = labkeep.get_run(first_uuid, store=store_uri)
    assert view.status is RunStatus.COMPLETED
    assert view.params == {"lr": 0.1, "epochs": 5}
    series = view.series("loss")
    assert series.steps.tolist() == [0, 1, 2, 8]
    assert series.values.tolist() == pytest.approx([1.0, 0.9, 0.8, 0.1])
    assert len(labkeep.runs(experiment="r", store=store_uri)) == 1


def test_resume_by_number_and_by_name(tmp_path: Path) -> None:
    store = tmp_path / "s"
    with labkeep.init("r", name="long-job", store=store) as first:
        first.log({"x": 1.0})
    with labkeep.init("r", id=first.number, resume="must", store=store) as again:
        assert again.uuid == first.uuid
        again.log({"x": 2.0})
    with labkeep.init("r", name="long-job", resume="allow", store=store) as third:
        assert third.uuid == first.uuid
        third.log({"x": 3.0})
    assert labkeep.get_run(first.uuid, store=store).series("x").steps.tolist() == [0, 1, 2]
    with labkeep.init("r", name="new-job", resume="allow", store=store) as fresh:
        assert fresh.uuid != first.uuid
    assert labkeep.get_run(fresh.uuid, store=store).name == "new-job"


def test_resume_allow_creates_a_run_with_the_given_id(tmp_path: Path) -> None:
    store = tmp_path / "s"
    wanted = str(uuid_mod.uuid4())
    with labkeep.init(id=wanted, resume="allow", store=store) as run:
        run.log({"x": 1.0})
    assert run.uuid == wanted
    with labkeep.init(id=wanted, resume="allow", store=store) as again:
        again.log({"x": 2.0})
    view = labkeep.get_run(wanted, store=store)
    assert view.series("x").steps.tolist() == [0, 1]
    assert len(labkeep.runs(store=store)) == 1


def test_resume_never_refuses_an_existing_run(tmp_path: Path) -> None:
    store = tmp_path / "s"
    with labkeep.init(store=store) as run:
        pass
    with pytest.raises(RunStateError, match="already exists"):
        labkeep.init(id=run.uuid, resume="never", store=store)
    with pytest.raises(RunStateError, match="already exists"):
        labkeep.init(id=run.uuid, store=store)
    assert labkeep.active_run() is None
    assert labkeep.get_run(run.uuid, store=store).status is RunStatus.COMPLETED


def test_resume_must_of_a_missing_run_creates_nothing(tmp_path: Path) -> None:
    store = tmp_path / "s"
    with labkeep.init(store=store):
        pass
    missing = str(uuid_mod.uuid4())
    with pytest.raises(NotFoundError) as caught:
        labkeep.init(id=missing, resume="must", store=store)
    assert isinstance(caught.value, LabkeepError)
    assert "\n" not in str(caught.value) and "resume" in str(caught.value)
    assert len(labkeep.runs(store=store)) == 1
    assert labkeep.active_run() is None


def test_bad_resume_arguments_are_refused(tmp_path: Path) -> None:
    store = tmp_path / "s"
    with pytest.raises(InvalidInputError, match="resume="):
        labkeep.init(id=str(uuid_mod.uuid4()), resume="sometimes", store=store)
    with pytest.raises(InvalidInputError, match="id="):
        labkeep.init(resume="must", store=store)
    with pytest.raises(InvalidInputError, match="uuid"):
        labkeep.init(id="not-a-uuid", resume="allow", store=store)


def test_a_running_run_cannot_be_taken_over(tmp_path: Path) -> None:
    store = tmp_path / "s"
    run = labkeep.init(store=store)
    try:
        run.wait_registered(30)
        labkeep._api._active = None  # as a second process would see it
        with pytest.raises(RunStateError, match="still running"):
            labkeep.init(id=run.uuid, resume="must", store=store)
    finally:
        run.finish()


_LOG_THEN_HANG = """
import time, labkeep
run = labkeep.init("pre", config={"lr": 0.1})
print(run.uuid, flush=True)
for i in range(100):
    run.log({"loss": float(i)})
print("logged", flush=True)
time.sleep(600)
"""

_RESUME = """
import sys, labkeep
with labkeep.init("pre", id=sys.argv[1], resume="must", config={"resumed": True}) as run:
    for i in range(100, 150):
        run.log({"loss": float(i)})
"""


def test_a_preempted_run_resumed_by_a_new_process_ends_completed(tmp_path: Path) -> None:
    env = child_env(LABKEEP_HOME=str(tmp_path / "s"), LABKEEP_CAPTURE="0")
    proc = start_python(_LOG_THEN_HANG, cwd=tmp_path, env=env)
    try:
        assert proc.stdout is not None
        run_uuid = proc.stdout.readline().strip()
        wait_for_line(proc, "logged")
        proc.kill()
        proc.wait(timeout=30)
    finally:
        proc.kill()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()
    done = run_python(_RESUME, cwd=tmp_path, env=env, args=(run_uuid,))
    assert done.returncode == 0, done.stderr
    view = labkeep.get_run(run_uuid, store=tmp_path / "s")
    assert view.status is RunStatus.COMPLETED
    assert view.params == {"lr": 0.1, "resumed": True}
    series = view.series("loss")
    assert series.steps.tolist() == list(range(150))
    assert series.values.tolist() == [float(i) for i in range(150)]
    assert len(labkeep.runs(experiment="pre", store=tmp_path / "s")) == 1


def test_runs_and_show_list_group_and_job_type(tmp_path: Path) -> None:
    from test_cli_query import labkeep_cli, listed

    store = tmp_path / "s"
    with labkeep.init("cv", group="cv-5fold", job_type="summary", store=store) as parent:
        fold = labkeep.init(parent=parent, group="cv-5fold", job_type="fold")
        fold.finish()
    with labkeep.init("cv", store=store) as plain:
        pass
    table = labkeep_cli(store, "runs")
    assert table.returncode == 0, table.stderr
    header = table.stdout.splitlines()[0].split()
    assert "group" in header and "job" in header
    fold_line = next(x for x in table.stdout.splitlines() if x.split()[:1] == [str(fold.number)])
    assert "cv-5fold" in fold_line and "fold" in fold_line.split()
    found = labkeep_cli(store, "runs", "--where", "group == 'cv-5fold' and job_type == 'fold'")
    assert listed(found.stdout) == [fold.number]
    shown = labkeep_cli(store, "show", str(fold.number))
    assert shown.returncode == 0, shown.stderr
    assert "cv-5fold" in shown.stdout and "job type" in shown.stdout
    assert parent.uuid in shown.stdout
    assert str(fold.number) in labkeep_cli(store, "show", str(parent.number)).stdout
    bare = labkeep_cli(store, "runs", "--where", f"number == {plain.number}")
    assert "group" not in bare.stdout.splitlines()[0].split()


def test_resume_must_of_a_missing_run_in_a_script_is_one_line(tmp_path: Path) -> None:
    missing = str(uuid_mod.uuid4())
    code = f"import labkeep\nlabkeep.init(id={missing!r}, resume='must')\n"
    env = child_env(LABKEEP_HOME=str(tmp_path / "s"), LABKEEP_CAPTURE="0")
    done = run_python(code, cwd=tmp_path, env=env)
    assert done.returncode != 0
    assert "NotFoundError: no run" in done.stderr and "resume='allow'" in done.stderr
    # Nothing created: no store at all, or one without runs.
    assert not (tmp_path / "s").exists() or len(labkeep.runs(store=tmp_path / "s")) == 0
