"""Sweeps with real trial processes: ``labkeep run`` with a search space, ``labkeep sweeps``,
``labkeep sweep show|resume|stop``, SIGKILL of the controller then resume, and the Python API."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_run_command import cli_env, labkeep_cli, write

import labkeep
from labkeep._client import Client
from labkeep.entities import RunRecord, RunStatus
from labkeep.sweep._spec import get_sweep, sweep_trials, trial_params

pytest.importorskip("optuna")

#: A trial: its loss is known from x; it notes in done.txt that it finished, and it sleeps
#: while the file ``slow`` exists (so a test can catch it running).
TRAIN = """\
import os, time
x = 0.0
opt = "adam"
noise = 0.1
if os.path.exists("slow"):
    open("started.txt", "a").write(f"{x}\\n")
    time.sleep(float(open("slow").read() or 60))
print(f"loss: {(x - 1.0) ** 2 + noise}")
open("done.txt", "a").write(f"{x} {opt}\\n")
"""


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    write(path / "train.py", TRAIN)
    return path


def _sweep(store: Path, ref: int | str = "last") -> tuple[RunRecord, list[RunRecord]]:
    client = Client(store)
    try:
        record, _spec = get_sweep(client, ref)
        return record, sweep_trials(client, record)
    finally:
        client.close()


def _done_lines(work: Path) -> list[str]:
    path = work / "done.txt"
    return path.read_text().splitlines() if path.exists() else []


def test_grid_sweep_runs_every_point_as_a_child_run(work: Path, store: Path) -> None:
    result = labkeep_cli(work, store, "run", "train.py", "x=[0.5,1.0,2.0]", "opt=[adam,sgd]",
                         "noise=0.0", "--minimize", "loss", "-q")  # fmt: skip
    assert result.returncode == 0, result.stderr
    sweep, trials = _sweep(store)
    assert sweep.info.status is RunStatus.COMPLETED
    assert sweep.params["x"] == "[0.5,1.0,2.0]" and sweep.params["sweep.optimizer"] == "grid"
    assert sweep.summary["trials.completed"] == 6 and sweep.summary["best.value"] == 0.0
    assert [t.info.parent_uuid for t in trials] == [sweep.info.uuid] * 6
    points = [(t.params["x"], t.params["opt"], t.params["noise"]) for t in trials]
    assert sorted(points) == sorted((x, o, 0.0) for x in (0.5, 1.0, 2.0) for o in ("adam", "sgd"))
    assert sorted(_done_lines(work)) == sorted(
        f"{x} {o}" for x in (0.5, 1.0, 2.0) for o in ("adam", "sgd")
    )
    best = min(trials, key=lambda t: t.metrics["loss"].last)
    assert sweep.summary["best.run"] == best.info.number
    assert f"best 0 (run {best.info.number}" in result.stderr

    # ``sweep == N`` finds its trials, and only them
    client = Client(store)
    try:
        found = client.runs(where=f"sweep == {sweep.info.number} and loss < 1", sort="number")
        assert [r.number for r in found] == [
            t.info.number for t in trials if t.metrics["loss"].last < 1
        ]
    finally:
        client.close()
    listed = labkeep_cli(work, store, "runs", "--where", f"sweep == {sweep.info.number}")
    assert listed.returncode == 0, listed.stderr
    shown = labkeep_cli(work, store, "sweep", "show", str(sweep.info.number))
    assert shown.returncode == 0, shown.stderr
    assert f"best: run {best.info.number}, loss = 0" in shown.stdout
    rows = [line.split() for line in shown.stdout.splitlines() if line.split()[:1] != []]
    losses = [float(r[3]) for r in rows if len(r) > 4 and r[2] == "completed"]
    assert losses == sorted(losses) and len(losses) == 6
    sweeps = labkeep_cli(work, store, "sweeps")
    assert f"{sweep.info.number}  train.py  grid" in sweeps.stdout


def test_tpe_sweep_is_seeded_and_reports_the_best(work: Path, store: Path) -> None:
    args = ("run", "train.py", "x=[-2.0:2.0]", "--optimizer", "tpe", "--minimize", "loss",
            "--max-trials", "6", "--opt-flag", "seed=3", "--opt-flag", "n_startup_trials=3", "-q")  # fmt: skip
    result = labkeep_cli(work, store, *args)
    assert result.returncode == 0, result.stderr
    sweep, trials = _sweep(store)
    assert len(trials) == 6 and all(t.info.status is RunStatus.COMPLETED for t in trials)
    xs = [t.params["x"] for t in trials]
    assert all(-2.0 <= x <= 2.0 for x in xs)
    losses = [t.metrics["loss"].last for t in trials]
    assert sweep.summary["best.value"] == pytest.approx(min(losses))
    more = labkeep_cli(work, store, "sweep", "resume", "last", "--max-trials", "9", "-q")
    assert more.returncode == 0, more.stderr
    sweep, trials = _sweep(store)
    assert len(trials) == 9 and sweep.summary["trials.completed"] == 9
    assert [t.params["x"] for t in trials[:6]] == xs
    assert sweep.summary["trials.total"] == 9 and sweep.info.status is RunStatus.COMPLETED
    again = labkeep_cli(work, store.with_name("store2"), *args)
    assert again.returncode == 0, again.stderr
    _sweep2, trials2 = _sweep(store.with_name("store2"))
    assert [t.params["x"] for t in trials2] == xs  # the same seed, the same trials


def test_sweep_show_sorts_by_the_objective_and_ranks_the_flags(work: Path, store: Path) -> None:
    write(work / "two.py", """\
        x = 0.0
        y = 0.0
        print(f"acc: {10 - (x - 1.0) ** 2 - 0.001 * y}")
    """)  # fmt: skip
    result = labkeep_cli(work, store, "run", "two.py", "x=[-2.0:2.0]", "y=[-1.0:1.0]",
                         "--maximize", "acc", "--max-trials", "12", "--opt-flag", "seed=0", "-q")  # fmt: skip
    assert result.returncode == 0, result.stderr
    shown = labkeep_cli(work, store, "sweep", "show", "last")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    importance = next(line for line in lines if line.startswith("importance: "))
    assert importance.startswith("importance: x ")  # x moves acc, y hardly does
    values = [float(line.split()[3]) for line in lines if " completed " in f" {line} "]
    assert len(values) == 12 and values == sorted(values, reverse=True)
    _sweep_record, trials = _sweep(store)
    best = max(trials, key=lambda t: t.metrics["acc"].last)
    assert f"best: run {best.info.number}, acc = " in shown.stdout


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("trials.csv", "x,opt\n0.5,adam\n2.0,sgd\n0.5,adam\n"),
        ("trials.json", '[{"x": 0.5, "opt": "adam"}, {"x": 2, "opt": "sgd"}, '
                        '{"x": 0.5, "opt": "adam"}]'),
        ("trials.yaml", "- {x: 0.5, opt: adam}\n- {x: 2.0, opt: sgd}\n- {x: 0.5, opt: adam}\n"),
    ],
)  # fmt: skip
def test_a_batch_file_runs_one_trial_per_row(work: Path, store: Path, name: str, text: str) -> None:
    if name.endswith(".yaml"):
        pytest.importorskip("yaml")
    (work / name).write_text(text)
    result = labkeep_cli(work, store, "run", "train.py", f"@{name}", "noise=0.0", "-q")
    assert result.returncode == 0, result.stderr
    sweep, trials = _sweep(store)
    assert [(t.params["x"], t.params["opt"], t.params["noise"]) for t in trials] == [
        (0.5, "adam", 0.0), (2.0, "sgd", 0.0), (0.5, "adam", 0.0)
    ]  # fmt: skip
    assert sweep.summary["trials.completed"] == 3
    assert _done_lines(work) == ["0.5 adam", "2.0 sgd", "0.5 adam"]


@pytest.mark.parametrize(
    ("name", "text", "args", "message"),
    [
        ("t.csv", "x,layers\n1,2\n", (), "unknown flag 'layers' for train.py"),
        ("t.csv", "x\n1\nabc\n", (), "row 2 of t.csv: bad value 'abc' for flag 'x'"),
        ("t.json", '[{"x": 1}, {"opt": "a"}]', (), "row 2 of t.json sets opt but row 1 sets x"),
        ("t.json", '{"x": 1}', (), "batch file t.json must list its trials"),
        ("t.csv", "x\n1\n", ("opt=[a,b]",), "a batch file lists its trials; set opt"),
        ("t.csv", "x\n1\n", ("--optimizer", "tpe", "--minimize", "loss"),
         "it takes no --optimizer tpe"),
        ("t.txt", "x\n1\n", (), "give a .csv, .json or .yaml file"),
    ],
)  # fmt: skip
def test_a_bad_batch_file_is_one_line_and_starts_nothing(
    work: Path, store: Path, name: str, text: str, args: tuple[str, ...], message: str
) -> None:
    (work / name).write_text(text)
    result = labkeep_cli(work, store, "run", "train.py", f"@{name}", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not store.exists() or len(Client(store).runs()) == 0
    missing = labkeep_cli(work, store, "run", "train.py", "@nothing.csv")
    assert missing.returncode == 2 and "no batch file nothing.csv" in missing.stderr


def test_a_wandb_sweep_file(work: Path, store: Path) -> None:
    pytest.importorskip("yaml")
    write(work / "sweep.yaml", """\
        program: train.py
        method: grid
        name: wb-grid
        metric: {name: loss, goal: minimize}
        parameters:
          x: {values: [0.5, 1.0, 1.5]}
          opt: {values: [adam, sgd]}
          noise: {value: 0.0}
        run_cap: 4
    """)  # fmt: skip
    result = labkeep_cli(work, store, "sweep", "sweep.yaml", "-q")
    assert result.returncode == 0, result.stderr
    sweep, trials = _sweep(store)
    assert sweep.info.name == "wb-grid" and sweep.params["sweep.optimizer"] == "grid"
    assert [(t.params["x"], t.params["opt"], t.params["noise"]) for t in trials] == [
        (0.5, "adam", 0.0), (0.5, "sgd", 0.0), (1.0, "adam", 0.0), (1.0, "sgd", 0.0)
    ]  # fmt: skip
    assert sweep.summary["best.value"] == 0.0
    write(work / "bad.yaml", """\
        program: train.py
        parameters: {x: {min: 0.0, max: 1.0}}
        metric: {name: loss}
        early_terminate: {type: hyperband, min_iter: 3, s: 2}
    """)  # fmt: skip
    bad = labkeep_cli(work, store, "sweep", "bad.yaml")
    assert bad.returncode == 2
    assert "bad.yaml: unsupported key early_terminate.s" in bad.stderr
    missing = labkeep_cli(work, store, "sweep", "nothing.yaml")
    assert missing.returncode == 2 and "no sweep file nothing.yaml" in missing.stderr


def test_a_notebook_sweeps_like_a_script(work: Path, store: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell("x = 0.0")
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [parameters, nbformat.v4.new_code_cell("print(f'loss: {(x - 1.0) ** 2}')")]
    nbformat.write(nb, str(work / "train.ipynb"))
    result = labkeep_cli(work, store, "run", "train.ipynb", "x=[0.0,1.0]", "--minimize", "loss",
                         "-q", timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    sweep, trials = _sweep(store)
    assert [t.params["x"] for t in trials] == [0.0, 1.0]
    assert [t.metrics["loss"].last for t in trials] == [1.0, 0.0]
    assert sweep.summary["best.run"] == trials[1].info.number


def test_prune_stops_trials_that_fall_behind(work: Path, store: Path) -> None:
    write(work / "steps.py", """\
        import time
        x = 1.0
        for step in range(10):
            print(f"loss: {(x - 1.0) ** 2 + 1.0 / (step + 1)}", flush=True)
            time.sleep(0.3)
        open("done.txt", "a").write(f"{x}\\n")
    """)  # fmt: skip
    good, bad = ["1.0", "1.1", "0.9", "1.05", "0.95"], ["5.0", "6.0"]
    result = labkeep_cli(work, store, "run", "steps.py", f"x=[{','.join(good + bad)}]",
                         "--minimize", "loss", "--prune", "median", "-q")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "trial 6 pruned at step" in result.stderr and "trial 7 pruned at step" in result.stderr
    assert _done_lines(work) == good  # the pruned trials never ran to their end
    sweep, trials = _sweep(store)
    assert sweep.summary["trials.pruned"] == 2 and sweep.summary["trials.completed"] == 5
    pruned = [t for t in trials if "labkeep.pruned" in t.summary]
    assert [t.params["x"] for t in pruned] == [5.0, 6.0]
    assert all(t.info.status is RunStatus.INTERRUPTED for t in pruned)
    assert all(t.metrics["loss"].count < 10 for t in pruned)
    shown = labkeep_cli(work, store, "sweep", "show", "last")
    assert "7 of 7 done (5 completed, 0 failed, 2 pruned)" in shown.stdout
    assert sum(" pruned " in f"{line} " for line in shown.stdout.splitlines()) == 2
    again = labkeep_cli(work, store, "sweep", "resume", "last", "-q")
    assert again.returncode == 0 and "no trials left to run" in again.stderr

    # The pruner named is the one used: hyperband's first rung at step 100 prunes nothing here.
    write(work / "sweep.yaml", f"""\
        program: steps.py
        method: grid
        metric: {{name: loss}}
        parameters: {{x: {{values: [{', '.join(good + bad)}]}}}}
        early_terminate: {{type: hyperband, min_iter: 100, max_iter: 300}}
    """)  # fmt: skip
    patient = labkeep_cli(work, store, "sweep", "sweep.yaml", "-q")
    assert patient.returncode == 0, patient.stderr
    assert "pruned" not in patient.stderr
    assert len(_done_lines(work)) == len(good) + len(good + bad)


def test_a_trial_without_the_objective_is_named_and_the_sweep_goes_on(
    work: Path, store: Path
) -> None:
    write(work / "other.py", """\
        x = 0.0
        print(f"acc: {x}")
        print(f"val_loss: {x * 2}")
    """)  # fmt: skip
    result = labkeep_cli(work, store, "run", "other.py", "x=[0.1,0.2]", "--minimize", "loss", "-q")
    assert "trial 1 logged no 'loss'; it logged: acc, val_loss" in result.stderr
    assert "trial 2 logged no 'loss'; it logged: acc, val_loss" in result.stderr
    sweep, trials = _sweep(store)
    assert len(trials) == 2 and sweep.summary["trials.failed"] == 2
    assert "Traceback" not in result.stderr
    # Not one trial gave the objective a value: the sweep failed, and says so in its exit code.
    assert result.returncode == 1, result.stderr
    assert sweep.info.status is RunStatus.FAILED
    assert (
        "sweep" in result.stderr.splitlines()[-1]
        and "failed: 0 completed, 2 failed" in (result.stderr.splitlines()[-1])
    )


def test_a_sweep_with_one_good_trial_completes(work: Path, store: Path) -> None:
    write(work / "some.py", """\
        x = 0.0
        if x > 0.15:
            print(f"loss: {x}")
    """)  # fmt: skip
    result = labkeep_cli(work, store, "run", "some.py", "x=[0.1,0.2]", "--minimize", "loss", "-q")
    assert result.returncode == 0, result.stderr
    sweep, _ = _sweep(store)
    assert sweep.info.status is RunStatus.COMPLETED
    assert (sweep.summary["trials.completed"], sweep.summary["trials.failed"]) == (1, 1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("x=[2:1]",), "x=[2:1]: the low end must be below the high end; write x=[1:2]"),
        (("x=loguniform[0:1]", "--minimize", "loss"), "both ends must be above 0"),
        (("x=[0:1]", "--optimizer", "smac", "--minimize", "loss"), "unknown optimizer 'smac'"),
        (("x=[0:1]", "--max-trials", "0", "--minimize", "loss"), "--max-trials must be at least 1"),
        (("x=[0.0:1.0]",), "optimizer random needs an objective: give --minimize METRIC"),
        (("y=[0:1]", "--minimize", "loss"), "unknown flag 'y' for train.py"),
        (
            (
                "x=[" + ",".join(str(i / 10) for i in range(101)) + "]",
                "opt=[" + ",".join(f"o{i}" for i in range(101)) + "]",
            ),
            "the grid has 10,201 points (over 10,000); cap it with --max-trials N",
        ),
    ],
)
def test_bad_input_is_one_line_and_starts_nothing(
    work: Path, store: Path, args: tuple[str, ...], message: str
) -> None:
    result = labkeep_cli(work, store, "run", "train.py", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not store.exists() or len(Client(store).runs()) == 0
    assert not (work / "done.txt").exists()


def test_parallel_trials_run_at_the_same_time(work: Path, store: Path) -> None:
    (work / "slow").write_text("1.5")
    result = labkeep_cli(work, store, "run", "train.py", "x=[0.1,0.2,0.3,0.4]", "--parallel", "2",
                         "--minimize", "loss", "-q")  # fmt: skip
    assert result.returncode == 0, result.stderr
    _sweep_record, trials = _sweep(store)
    assert len(trials) == 4
    spans = sorted((t.info.start_time, t.info.end_time or 0.0) for t in trials)
    overlapping = sum(1 for a, b in itertools.pairwise(spans) if b[0] < a[1])
    assert overlapping >= 1


@pytest.mark.postgres
def test_parallel_trials_into_postgresql(work: Path, pg_schema_uri: str) -> None:
    store_uri = pg_schema_uri
    result = subprocess.run(
        [sys.executable, "-m", "labkeep.cli", "run", "train.py", "x=[0.1,0.2,0.3,0.4,0.5]",
         "--parallel", "3", "--minimize", "loss", "-q"],
        cwd=work, env=cli_env(Path("."), LABKEEP_HOME=store_uri), capture_output=True,
        text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    client = Client(store_uri)
    try:
        record, _spec = get_sweep(client, "last")
        trials = sweep_trials(client, record)
    finally:
        client.close()
    assert sorted(t.params["x"] for t in trials) == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert record.summary["trials.completed"] == 5
    assert record.summary["best.value"] == pytest.approx((0.5 - 1.0) ** 2 + 0.1)


def _start_controller(work: Path, store: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "labkeep.cli", "run", "train.py", *args],
        cwd=work,
        env=cli_env(store),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(predicate: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def test_sigkill_of_the_controller_then_resume_loses_none_and_runs_none_twice(
    work: Path, store: Path
) -> None:
    (work / "slow").write_text("1.0")
    grid = [f"{x} {o}" for x in (0.5, 1.0, 1.5, 2.0) for o in ("adam", "sgd")]
    proc = _start_controller(work, store, "x=[0.5,1.0,1.5,2.0]", "opt=[adam,sgd]",
                             "--minimize", "loss", "-q")  # fmt: skip
    started = work / "started.txt"
    try:
        # Killed while the fourth trial sleeps: three trials ended, the fourth is cut short.
        _wait_for(
            lambda: started.exists() and len(started.read_text().splitlines()) >= 4,
            "the fourth trial to start",
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(1.5)  # the trial in flight gets SIGTERM as its parent dies
    assert len(_done_lines(work)) == 3

    resumed = labkeep_cli(work, store, "sweep", "resume", "last", "-q")  # the newest sweep
    assert resumed.returncode == 0, resumed.stderr
    after = _done_lines(work)
    assert sorted(after) == sorted(grid)  # every point ran to its end exactly once
    sweep, trials = _sweep(store, _sweep_number(store))
    assert sweep.info.status is RunStatus.COMPLETED
    assert sweep.summary["trials.completed"] == len(grid)
    completed = [t for t in trials if t.info.status is RunStatus.COMPLETED]
    assert len(completed) == len(grid)
    assert all(t.info.status in (RunStatus.COMPLETED, RunStatus.KILLED) for t in trials)
    points = sorted(f"{p['x']} {p['opt']}" for t in completed if (p := trial_params(t)))
    assert points == sorted(grid)
    again = labkeep_cli(work, store, "sweep", "resume", str(sweep.info.number), "-q")
    assert again.returncode == 0 and "no trials left to run" in again.stderr
    assert len(_done_lines(work)) == len(grid)


def _sweep_number(store: Path) -> int:
    client = Client(store)
    try:
        from labkeep.sweep import list_sweeps

        return list_sweeps(client)[0].info.number
    finally:
        client.close()


def test_sweep_stop_interrupts_it_and_resume_finishes_it(work: Path, store: Path) -> None:
    (work / "slow").write_text("60")
    proc = _start_controller(work, store, "x=[0.5:2.5]", "--minimize", "loss", "--max-trials",
                             "3", "--optimizer", "random", "-q")  # fmt: skip
    try:
        _wait_for(lambda: (work / "started.txt").exists(), "the first trial to start")
        number = _sweep_number(store)
        stopped = labkeep_cli(work, store, "sweep", "stop", str(number))
        assert stopped.returncode == 0, stopped.stderr
        assert proc.wait(30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    sweep, trials = _sweep(store, number)
    assert sweep.info.status is RunStatus.INTERRUPTED
    assert [t.info.status for t in trials] == [RunStatus.INTERRUPTED]
    cut_short = trial_params(trials[0])
    (work / "slow").unlink()
    resumed = labkeep_cli(work, store, "sweep", "resume", str(number), "-q")
    assert resumed.returncode == 0, resumed.stderr
    sweep, trials = _sweep(store, number)
    assert sweep.info.status is RunStatus.COMPLETED
    completed = [t for t in trials if t.info.status is RunStatus.COMPLETED]
    assert len(completed) == 3 and len(_done_lines(work)) == 3
    assert trial_params(completed[0]) == cut_short  # the stopped trial ran again first
    not_running = labkeep_cli(work, store, "sweep", "stop", str(number))
    assert not_running.returncode != 0 and "not running" in not_running.stderr


#: A trial that sleeps while ``hold-X`` exists for its x (a test stops it meanwhile).
HELD = """\
import os, time
x = 0.0
while os.path.exists(f"hold-{x}"):
    open(f"started-{x}", "w").close()
    time.sleep(0.05)
print(f"loss: {x}")
"""


def _running_trial(store: Path, x: float) -> int | None:
    """The number of the running trial of ``x``, once the store shows it."""
    _, trials = _sweep(store)
    running = [
        t.info.number
        for t in trials
        if t.info.status is RunStatus.RUNNING and (trial_params(t) or {}).get("x") == x
    ]
    return running[0] if running else None


@pytest.mark.parametrize("parallel", ["1", "2"])
def test_stopping_a_trial_stops_that_trial_and_the_sweep_goes_on(
    work: Path, store: Path, parallel: str
) -> None:
    write(work / "held.py", HELD)
    (work / "hold-0.1").touch()
    proc = subprocess.Popen(
        [sys.executable, "-m", "labkeep.cli", "run", "held.py", "x=[0.1,0.2,0.3]",
         "--parallel", parallel, "--minimize", "loss", "-q"],
        cwd=work, env=cli_env(store), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        _wait_for(lambda: (work / "started-0.1").exists(), "the held trial to start")
        _wait_for(lambda: _running_trial(store, 0.1) is not None, "the held trial's run")
        trial = _running_trial(store, 0.1)
        assert trial is not None
        stopped = labkeep_cli(work, store, "stop", str(trial))
        assert stopped.returncode == 0, stopped.stderr
        assert stopped.stdout.strip() == f"run {trial} interrupted"
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
    sweep, trials = _sweep(store)
    assert sweep.info.status is RunStatus.COMPLETED
    by_x = {trial_params(t)["x"]: t for t in trials}  # type: ignore[index]
    assert by_x[0.1].info.status is RunStatus.INTERRUPTED
    assert by_x[0.2].info.status is RunStatus.COMPLETED
    assert by_x[0.3].info.status is RunStatus.COMPLETED
    assert f"stopped (run {trial}); the sweep goes on" in err
    # A stopped trial was stopped on purpose: resume does not run it again.
    again = labkeep_cli(work, store, "sweep", "resume", str(sweep.info.number), "-q")
    assert again.returncode == 0 and "no trials left to run" in again.stderr


def test_stopping_the_sweep_run_stops_the_sweep(work: Path, store: Path) -> None:
    write(work / "held.py", HELD)
    (work / "hold-0.1").touch()
    proc = subprocess.Popen(
        [sys.executable, "-m", "labkeep.cli", "run", "held.py", "x=[0.1,0.2]", "--minimize",
         "loss", "-q"],
        cwd=work, env=cli_env(store), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        _wait_for(lambda: (work / "started-0.1").exists(), "the held trial to start")
        stopped = labkeep_cli(work, store, "stop", str(_sweep_number(store)))
        assert stopped.returncode == 0, stopped.stderr
        assert proc.wait(30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    sweep, trials = _sweep(store)
    assert sweep.info.status is RunStatus.INTERRUPTED
    assert [t.info.status for t in trials] == [RunStatus.INTERRUPTED]


def test_ctrl_c_stops_the_parallel_trials_and_the_sweep_resumes(work: Path, store: Path) -> None:
    (work / "slow").write_text("60")
    proc = _start_controller(work, store, "x=[0.1,0.2,0.3,0.4]", "--parallel", "2",
                             "--minimize", "loss", "-q")  # fmt: skip
    started = work / "started.txt"
    try:
        _wait_for(
            lambda: started.exists() and len(started.read_text().splitlines()) == 2,
            "two trials to start",
        )
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    sweep, trials = _sweep(store)
    assert sweep.info.status is RunStatus.INTERRUPTED
    assert [t.info.status for t in trials] == [RunStatus.INTERRUPTED] * 2
    (work / "slow").unlink()
    resumed = labkeep_cli(work, store, "sweep", "resume", "last", "--parallel", "1", "-q")
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(_done_lines(work)) == [f"{x} adam" for x in (0.1, 0.2, 0.3, 0.4)]


def test_python_api_sweeps_an_objective(tmp_path: Path) -> None:
    store = tmp_path / "api-store"
    seen: list[float] = []

    def objective(run: labkeep.Run) -> float:
        x = run.config["x"]
        seen.append(x)
        run.log({"loss": (x - 1.0) ** 2}, step=0)
        if run.config["layers"] == 3:
            raise ValueError("three layers do not fit")
        return (x - 1.0) ** 2 + run.config["layers"]

    result = labkeep.sweep(
        objective,
        space={"x": labkeep.uniform(-2, 2), "layers": labkeep.intrange(1, 3)},
        minimize="score",
        n_trials=8,
        optimizer="random",
        options={"seed": 0},
        parallel=2,
        store=str(store),
    )
    assert len(seen) == 8
    trials = result.trials
    assert len(trials) == 8
    assert {t.info.parent_uuid for t in trials} == {result.result.uuid}
    failed = [t for t in trials if t.status is RunStatus.FAILED]
    assert all(t.config["layers"] == 3 for t in failed)
    best = result.best
    assert best is not None and best.config["layers"] != 3
    scores = [(t.config["x"] - 1.0) ** 2 + t.config["layers"] for t in trials if t not in failed]
    assert result.best_value == pytest.approx(min(scores))
    assert best.summary["score"] == pytest.approx(min(scores))
    resumed = labkeep_cli(tmp_path, store, "sweep", "resume", str(result.number))
    assert resumed.returncode == 2
    assert "searched a Python function; call labkeep.sweep() again" in resumed.stderr


@pytest.mark.parametrize("optimizer", ["random", "tpe", "cmaes", "qmc"])
def test_every_optimizer_searches_a_mixed_space(tmp_path: Path, optimizer: str) -> None:
    pytest.importorskip("cmaes" if optimizer == "cmaes" else "optuna")

    def objective(run: labkeep.Run) -> float:
        return (run.config["x"] - 1) ** 2 + run.config["n"] + len(run.config["opt"])

    result = labkeep.sweep(
        objective,
        space={"x": labkeep.uniform(-2, 2), "n": labkeep.intrange(1, 4),
               "opt": labkeep.choice("adam", "sgd")},
        n_trials=6,
        optimizer=optimizer,
        options={"seed": 1},
        store=str(tmp_path / "store"),
    )  # fmt: skip
    trials = result.trials
    assert len(trials) == 6 and all(t.status is RunStatus.COMPLETED for t in trials)
    for trial in trials:
        assert -2 <= trial.config["x"] <= 2 and trial.config["n"] in (1, 2, 3, 4)
        assert trial.config["opt"] in ("adam", "sgd")
    assert result.best_value == min(t.summary["objective"] for t in trials)


def test_sweep_field_selects_one_sweeps_trials_on_every_backend(store_uri: str) -> None:
    def objective(run: labkeep.Run) -> float:
        return float(run.config["n"])

    first = labkeep.sweep(objective, space={"n": [1, 2, 3]}, minimize="n", store=store_uri)
    second = labkeep.sweep(objective, space={"n": [4, 5]}, minimize="n", store=store_uri)
    assert first.best_value == 1.0 and second.best_value == 4.0
    client = Client(store_uri)
    try:
        for result, values in ((first, [1, 2, 3]), (second, [4, 5])):
            found = client.runs(where=f"sweep == {result.number}", sort="number")
            assert [r.config["n"] for r in found] == values
            assert [r.number for r in found] == [t.number for t in result.trials]
        in_first = client.runs(
            where=f"sweep == {first.number} and summary['labkeep.trial'] >= 2", sort="number"
        )
        assert [r.config["n"] for r in in_first] == [2, 3]
    finally:
        client.close()


def test_environment_has_no_leftover_trials(work: Path, store: Path) -> None:
    """A bad-input sweep leaves no process behind: nothing to find after it."""
    result = labkeep_cli(work, store, "run", "train.py", "x=[2:1]")
    assert result.returncode == 2
    assert os.listdir(work) == ["train.py"]


def test_several_objectives_give_a_pareto_front(work: Path, store: Path) -> None:
    write(work / "two.py", 'x = 0.0\nprint(f"loss: {x * x}")\nprint(f"acc: {x}")\n')
    result = labkeep_cli(work, store, "run", "two.py", "x=[0.0,1.0,2.0,-1.0]",
                         "--minimize", "loss", "--maximize", "acc", "-q")  # fmt: skip
    assert result.returncode == 0, result.stderr
    sweep, trials = _sweep(store)
    by_x = {t.params["x"]: t.info.number for t in trials}
    # x = -1 scores worse than x = 0 on both; the others trade loss against acc.
    front = sorted(by_x[x] for x in (0.0, 1.0, 2.0))
    assert sorted(sweep.summary["pareto.runs"]) == front
    assert "best.value" not in sweep.summary
    assert "pareto front: run" in result.stderr
    shown = labkeep_cli(work, store, "sweep", "show", "last")
    assert shown.returncode == 0, shown.stderr
    assert "objectives: minimize loss, maximize acc" in shown.stdout
    assert "pareto front: 3 trial(s)" in shown.stdout
    for number in front:
        assert f"  run {number} (trial" in shown.stdout
    assert "best:" not in shown.stdout
    listed = labkeep_cli(work, store, "sweeps")
    assert "min loss, max acc" in listed.stdout and "front of 3" in listed.stdout


def test_python_api_with_several_objectives(tmp_path: Path) -> None:
    def objective(run: labkeep.Run) -> dict[str, float]:
        x = run.config["x"]
        return {"loss": x * x, "acc": x}

    result = labkeep.sweep(
        objective,
        space={"x": labkeep.uniform(-2, 2)},
        minimize=["loss"],
        maximize=["acc"],
        n_trials=10,
        optimizer="tpe",
        options={"seed": 0},
        store=str(tmp_path / "store"),
    )
    assert result.best is None
    trials = result.trials
    points = [(t.summary["loss"], t.summary["acc"]) for t in trials]
    on_front = [t for t in trials if not any(
        lo <= t.summary["loss"] and ac >= t.summary["acc"] and (lo, ac) != (t.summary["loss"], t.summary["acc"])
        for lo, ac in points)]  # fmt: skip
    assert sorted(r.number for r in result.front) == sorted(t.number for t in on_front)
    assert all(t.config["x"] >= 0 for t in result.front)


def test_python_api_prunes_from_run_log(tmp_path: Path) -> None:
    steps_run: dict[float, int] = {}

    def objective(run: labkeep.Run) -> None:
        x = run.config["x"]
        for step in range(10):
            steps_run[x] = step + 1
            run.log({"val_loss": x + 1.0 / (step + 1)}, step=step)

    result = labkeep.sweep(
        objective,
        space={"x": [0.1, 0.2, 5.0, 6.0, 7.0, 8.0]},
        minimize="val_loss",
        optimizer="grid",
        prune="median",
        prune_options={"n_startup_trials": 2, "n_warmup_steps": 1},
        store=str(tmp_path / "store"),
    )
    assert result.result.pruned == 4 and result.result.completed == 2
    assert steps_run[0.1] == steps_run[0.2] == 10
    assert all(steps_run[x] == 2 for x in (5.0, 6.0, 7.0, 8.0))  # stopped right after warm-up
    trials = result.trials
    pruned = [t for t in trials if t.config["x"] >= 5]
    assert all(t.status is RunStatus.INTERRUPTED for t in pruned)
    assert all(t.summary["labkeep.pruned"] == 1 for t in pruned)
    assert result.best is not None and result.best.config["x"] == 0.1
    shown = labkeep_cli(tmp_path, tmp_path / "store", "sweep", "show", str(result.number))
    assert shown.stdout.count("pruned") >= 4, shown.stdout


def test_python_api_counts_optunas_own_trial_pruned(tmp_path: Path) -> None:
    import optuna

    def objective(run: labkeep.Run) -> float:
        if run.config["x"] > 1:
            raise optuna.TrialPruned()
        return float(run.config["x"])

    result = labkeep.sweep(
        objective,
        space={"x": [0, 1, 2]},
        minimize="score",
        prune="median",
        store=str(tmp_path / "store"),
    )
    assert (result.result.completed, result.result.pruned, result.result.failed) == (2, 1, 0)


def test_a_normal_distribution_gives_trials_normal_values(tmp_path: Path) -> None:
    from labkeep.sweep._space import Normal

    result = labkeep.sweep(
        lambda run: (run.config["x"] - 100.0) ** 2,
        space={"x": Normal(100.0, 2.0)},
        n_trials=12,
        optimizer="tpe",
        options={"seed": 3, "n_startup_trials": 4},
        store=str(tmp_path / "store"),
    )
    xs = [t.config["x"] for t in result.trials]
    assert len(xs) == 12 and all(90.0 < x < 110.0 for x in xs)  # values, not quantiles
    assert result.best_value == pytest.approx(min((x - 100.0) ** 2 for x in xs))
