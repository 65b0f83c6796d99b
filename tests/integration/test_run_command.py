"""``labkeep run``: real CLI subprocesses running real scripts into a temporary store."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import labkeep
from labkeep._client import Client
from labkeep._views import RunView
from labkeep.entities import RunStatus

SRC = str(Path(labkeep.__file__).resolve().parents[1])


def cli_env(store: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKEEP_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, env.get("PYTHONPATH")) if p)
    env["LABKEEP_HOME"] = str(store)
    env.update(extra)
    return env


def labkeep_cli(
    cwd: Path, store: Path, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labkeep.cli", *args],
        cwd=cwd,
        env=cli_env(store),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def get_run(store: Path, ref: str | int = "last") -> RunView:
    client = Client(store)
    try:
        return client.get_run(ref)
    finally:
        client.close()


def run_count(store: Path) -> int:
    if not store.exists():
        return 0
    client = Client(store)
    try:
        return len(client.runs())
    finally:
        client.close()


def snapshot(store: Path, number: int) -> dict[str, Any]:
    client = Client(store)
    try:
        snap = client.store.get_snapshot(number)
        assert snap is not None
        return snap
    finally:
        client.close()


def output_lines(store: Path, number: int) -> list[tuple[str, str]]:
    client = Client(store)
    try:
        return [(line.stream, line.text) for line in client.store.get_output(number)]
    finally:
        client.close()


GLOBALS_SCRIPT = """\
x = 1.0
noise = 0.1
epochs = 3
name = "base"
for i in range(epochs):
    print(f"loss: {abs(x) * noise / (i + 1)}")
print(f"x={x} noise={noise} name={name}")
with open("model.pkl", "w") as f:
    f.write(f"model {x}")
"""


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def test_globals_script_with_overrides(work: Path, store: Path) -> None:
    script = write(work / "train.py", GLOBALS_SCRIPT)
    before = script.read_bytes()
    proc = labkeep_cli(work, store, "run", "train.py", "x=-1.0", "noise=0.2", "name=wide")
    assert proc.returncode == 0, proc.stderr
    assert "x=-1.0 noise=0.2 name=wide" in proc.stdout
    assert script.read_bytes() == before
    run = get_run(store)
    assert run.status is RunStatus.COMPLETED
    assert run.info.exit_code == 0
    assert run.params == {"x": -1.0, "noise": 0.2, "epochs": 3, "name": "wide"}
    assert isinstance(run.params["epochs"], int) and isinstance(run.params["x"], float)
    assert run.metrics["loss"].count == 3
    assert run.metrics["loss"].last == pytest.approx(0.2 / 3)
    # flags echoed by the script are not metrics
    assert "x" not in run.metrics and "noise" not in run.metrics
    assert f"run {run.number} completed in " in proc.stderr
    assert f"(labkeep show {run.number})" in proc.stderr
    lines = output_lines(store, run.number)
    assert ("stdout", "loss: 0.2") in lines
    assert ("stdout", "x=-1.0 noise=0.2 name=wide") in lines


def test_defaults_used_and_command_recorded_in_snapshot(work: Path, store: Path) -> None:
    write(work / "train.py", GLOBALS_SCRIPT)
    proc = labkeep_cli(work, store, "run", "train.py", "epochs=1")
    assert proc.returncode == 0, proc.stderr
    run = get_run(store)
    assert run.params == {"x": 1.0, "noise": 0.1, "epochs": 1, "name": "base"}
    command = snapshot(store, run.number)["command"]
    assert command["target"] == "train.py"
    assert command["kind"] == "script"
    assert command["interface"] == "globals"
    assert command["overrides"] == {"epochs": 1}
    assert command["values"] == run.params
    assert [f["name"] for f in command["flags"]["flags"]] == ["x", "noise", "epochs", "name"]
    assert command["cwd"] == str(work.resolve())


def test_created_and_changed_files_become_artifacts(work: Path, store: Path) -> None:
    write(work / "train.py", GLOBALS_SCRIPT)
    (work / "untouched.txt").write_text("same")
    assert labkeep_cli(work, store, "run", "train.py", "x=2.0").returncode == 0
    assert labkeep_cli(work, store, "run", "train.py", "x=3.0").returncode == 0
    first, second = get_run(store, 1), get_run(store, 2)
    assert [a.path for a in first.artifacts] == ["model.pkl"]
    assert [a.path for a in second.artifacts] == ["model.pkl"]
    assert first.artifact_path("model.pkl").read_text() == "model 2.0"
    assert second.artifact_path("model.pkl").read_text() == "model 3.0"
    assert not (work / ".labkeep").exists()


def test_argparse_script_gets_options(work: Path, store: Path) -> None:
    write(
        work / "main.py",
        """\
        import argparse
        p = argparse.ArgumentParser()
        p.add_argument("--learning_rate", type=float, default=0.01, help="step size")
        p.add_argument("--batch_size", type=int, default=32)
        p.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
        args = p.parse_args()
        print("got", args.learning_rate, args.batch_size, args.optimizer)
        """,
    )
    proc = labkeep_cli(work, store, "run", "main.py", "learning_rate=0.015", "batch_size=64")
    assert proc.returncode == 0, proc.stderr
    assert "got 0.015 64 sgd" in proc.stdout
    run = get_run(store)
    assert run.params == {"learning_rate": 0.015, "batch_size": 64, "optimizer": "sgd"}
    bad = labkeep_cli(work, store, "run", "main.py", "optimizer=rmsprop")
    assert bad.returncode != 0
    assert "bad value 'rmsprop' for flag 'optimizer'" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert run_count(store) == 1


def test_click_script_gets_options(work: Path, store: Path) -> None:
    write(
        work / "cli.py",
        """\
        import click

        @click.command()
        @click.option("--epochs", default=2, type=int)
        @click.option("--verbose/--quiet", default=False)
        def main(epochs, verbose):
            print("epochs", epochs, "verbose", verbose)

        main()
        """,
    )
    proc = labkeep_cli(work, store, "run", "cli.py", "epochs=5", "verbose=true")
    assert proc.returncode == 0, proc.stderr
    assert "epochs 5 verbose True" in proc.stdout
    assert get_run(store).params == {"epochs": 5, "verbose": True}


def test_config_file_keys_are_flags(work: Path, store: Path) -> None:
    write(work / "conf.json", '{"model": {"depth": 2}, "lr": 0.1}')
    write(
        work / "train.py",
        """\
        import argparse, json
        p = argparse.ArgumentParser()
        p.add_argument("--config", default="conf.json")
        conf = json.load(open(p.parse_args().config))
        print("depth", conf["model"]["depth"], "lr", conf["lr"])
        """,
    )
    before = (work / "conf.json").read_text()
    proc = labkeep_cli(work, store, "run", "train.py", "model.depth=5")
    assert proc.returncode == 0, proc.stderr
    assert "depth 5 lr 0.1" in proc.stdout
    assert (work / "conf.json").read_text() == before
    assert get_run(store).params["model.depth"] == 5


def test_flags_option_lists_flags_and_runs_nothing(work: Path, store: Path) -> None:
    write(
        work / "main.py",
        """\
        import argparse
        p = argparse.ArgumentParser()
        p.add_argument("--lr", type=float, default=0.01, help="the step size")
        p.add_argument("--act", choices=["relu", "tanh"], default="relu")
        p.parse_args()
        print("RAN")
        """,
    )
    proc = labkeep_cli(work, store, "run", "main.py", "--flags")
    assert proc.returncode == 0, proc.stderr
    assert "RAN" not in proc.stdout
    for text in ("lr", "float", "0.01", "the step size", "act", "relu, tanh", "argparse"):
        assert text in proc.stdout
    assert run_count(store) == 0


TOP_LEVEL_WRITER = """\
import argparse, os, time
with open("started.txt", "a") as f:
    f.write("x")
time.sleep(float(os.environ.get("SLOW", "0")))
DEFAULTS = {"lr": 0.1, "epochs": 2}
p = argparse.ArgumentParser()
for name, value in DEFAULTS.items():
    p.add_argument(f"--{name}", type=type(value), default=value)
p.add_argument("--literal", default="yes")
args = p.parse_args()
print("got", args.lr, args.epochs, args.literal)
"""


def test_flags_option_runs_none_of_the_script(work: Path, store: Path) -> None:
    literal = RAW_ARGS_SCRIPT.replace(
        "import argparse", "import argparse\nopen('started.txt', 'a')"
    )
    write(work / "literal.py", literal)
    proc = labkeep_cli(work, store, "run", "literal.py", "--flags")
    assert proc.returncode == 0, proc.stderr
    assert "epochs" in proc.stdout and "dry_run" in proc.stdout
    write(work / "computed.py", TOP_LEVEL_WRITER)
    proc = labkeep_cli(work, store, "run", "computed.py", "--flags")
    assert proc.returncode == 0, proc.stderr
    assert "has no flags" not in proc.stdout
    assert "line 8" in proc.stdout and "when it runs" in proc.stdout
    assert not (work / "started.txt").exists()
    assert run_count(store) == 0


def test_first_run_of_a_changed_script_runs_it_once(work: Path, store: Path) -> None:
    write(work / "computed.py", TOP_LEVEL_WRITER)
    proc = labkeep_cli(work, store, "run", "computed.py", "lr=0.5", "--", "--epochs", "3")
    assert proc.returncode == 0, proc.stderr
    assert "got 0.5 3 yes" in proc.stdout
    assert (work / "started.txt").read_text() == "x"
    run = get_run(store)
    assert run.params == {"lr": 0.5, "epochs": 3, "literal": "yes"}
    argv = snapshot(store, run.number)["host"]["argv"]
    assert argv[0] == "computed.py" and sorted(argv[1:]) == ["--epochs=3", "--lr=0.5"]
    # The flags found during that run are known from now on, before anything runs.
    listed = labkeep_cli(work, store, "run", "computed.py", "--flags")
    assert "epochs" in listed.stdout and "literal" in listed.stdout
    bad = labkeep_cli(work, store, "run", "computed.py", "lrr=1")
    assert bad.returncode != 0 and "did you mean 'lr'" in bad.stderr
    assert (work / "started.txt").read_text() == "x"
    again = labkeep_cli(work, store, "run", "computed.py", "epochs=4")
    assert "got 0.1 4 yes" in again.stdout
    assert (work / "started.txt").read_text() == "xx"


def test_a_flag_unknown_to_a_parser_found_during_the_run(work: Path, store: Path) -> None:
    write(work / "computed.py", TOP_LEVEL_WRITER)
    proc = labkeep_cli(work, store, "run", "computed.py", "lrr=0.5")
    assert proc.returncode != 0
    assert "unknown flag 'lrr'" in proc.stderr and "did you mean 'lr'" in proc.stderr
    assert "got" not in proc.stdout
    assert get_run(store).status is RunStatus.FAILED


def test_a_script_slow_to_reach_its_parser(work: Path, store: Path) -> None:
    write(work / "computed.py", TOP_LEVEL_WRITER)
    help_text = labkeep_cli(work, store, "run", "--help").stdout
    assert "--detect-timeout" in help_text and "LABKEEP_DETECT_TIMEOUT" in help_text
    proc = subprocess.run(
        [sys.executable, "-m", "labkeep.cli", "run", "computed.py", "lr=0.5",
         "--detect-timeout", "0.5"],
        cwd=work, env=cli_env(store, SLOW="2"), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "got 0.5 2 yes" in proc.stdout
    assert "has not reached its argument parser after 0.5 s" in proc.stderr
    assert get_run(store).params == {"lr": 0.5, "epochs": 2, "literal": "yes"}
    assert (work / "started.txt").read_text() == "x"


def test_unknown_flag_suggests_and_creates_no_run(work: Path, store: Path) -> None:
    write(work / "train.py", GLOBALS_SCRIPT)
    proc = labkeep_cli(work, store, "run", "train.py", "nois=0.3")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "did you mean 'noise'?" in lines[0]
    assert "valid flags: epochs, name, noise, x" in lines[0]
    assert proc.stdout == ""
    assert run_count(store) == 0


def test_wrong_type_is_one_line_and_no_run(work: Path, store: Path) -> None:
    write(work / "train.py", GLOBALS_SCRIPT)
    proc = labkeep_cli(work, store, "run", "train.py", "epochs=many")
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        "labkeep: bad value 'many' for flag 'epochs' of train.py: expected an int"
    ]
    assert run_count(store) == 0


def test_missing_script_and_syntax_error(work: Path, store: Path) -> None:
    proc = labkeep_cli(work, store, "run", "nope.py")
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "no script nope.py" in proc.stderr
    write(work / "broken.py", "x = (1,\n")
    proc = labkeep_cli(work, store, "run", "broken.py")
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "cannot parse broken.py" in proc.stderr
    assert run_count(store) == 0


def test_raw_args_after_double_dash(work: Path, store: Path) -> None:
    write(
        work / "raw.py",
        """\
        import sys
        lr = 0.1
        print("argv", sys.argv[1:], "lr", lr)
        """,
    )
    proc = labkeep_cli(work, store, "run", "raw.py", "lr=0.5", "--", "--some-raw-arg", "3", "a=b")
    assert proc.returncode == 0, proc.stderr
    assert "argv ['--some-raw-arg', '3', 'a=b'] lr 0.5" in proc.stdout


RAW_ARGS_SCRIPT = """\
import argparse
p = argparse.ArgumentParser()
p.add_argument("data", nargs="?", default="none")
p.add_argument("-e", "--epochs", type=int, default=14)
p.add_argument("-l", "--lr", type=float, default=1.0)
p.add_argument("--dry-run", action="store_true")
args = p.parse_args()
print("got", args.data, args.epochs, args.lr, args.dry_run)
"""


def test_raw_arguments_are_the_params_the_script_received(work: Path, store: Path) -> None:
    write(work / "main.py", RAW_ARGS_SCRIPT)
    proc = labkeep_cli(
        work, store, "run", "main.py", "--", "-e", "1", "--lr", "2.0", "--dry-run", "train.csv"
    )
    assert proc.returncode == 0, proc.stderr
    assert "got train.csv 1 2.0 True" in proc.stdout
    run = get_run(store)
    assert run.params == {"epochs": 1, "lr": 2.0, "dry_run": True}
    snap = snapshot(store, run.number)
    # What the script saw: its flags as options, then the positional argument.
    argv = snap["host"]["argv"]
    assert argv[0] == "main.py" and argv[-1] == "train.csv"
    assert sorted(argv[1:-1]) == ["--dry-run", "--epochs=1", "--lr=2.0"]
    assert snap["command"]["extra_args"] == ["train.csv"]
    assert snap["command"]["values"] == run.params


def test_a_flag_given_both_ways_is_one_line_and_no_run(work: Path, store: Path) -> None:
    write(work / "main.py", RAW_ARGS_SCRIPT)
    proc = labkeep_cli(work, store, "run", "main.py", "lr=0.1", "--", "--lr", "0.2")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "'lr'" in lines[0] and "lr=0.1" in lines[0] and "--lr 0.2" in lines[0]
    assert "got" not in proc.stdout
    assert run_count(store) == 0
    bad = labkeep_cli(work, store, "run", "main.py", "--", "--epochs", "many")
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1
    assert "'many'" in bad.stderr and "epochs" in bad.stderr
    assert run_count(store) == 0


def test_replayed_arguments_give_way_to_assignments(work: Path, store: Path) -> None:
    """What ``labkeep rerun`` does with a run recorded before options after -- were read."""
    from dataclasses import replace

    from labkeep.errors import InvalidInputError
    from labkeep.runner import LaunchSpec, prepare_launch

    write(work / "main.py", RAW_ARGS_SCRIPT)
    spec = LaunchSpec(
        Path("main.py"),
        ("epochs=2",),
        values={"epochs": 14, "lr": 1.0},
        extra_args=("--epochs", "1", "--lr", "3", "x.csv"),
        args_yield=True,
        cwd=work,
    )
    client = Client(store)
    try:
        ready = prepare_launch(spec, client)
        assert ready.overrides == {"epochs": 2, "lr": 3.0} and ready.args == ("x.csv",)
        with pytest.raises(InvalidInputError, match="given twice"):
            prepare_launch(replace(spec, args_yield=False), client)
    finally:
        client.close()


def test_the_injected_flags_are_in_the_snapshot_argv(work: Path, store: Path) -> None:
    write(work / "main.py", RAW_ARGS_SCRIPT)
    proc = labkeep_cli(work, store, "run", "main.py", "epochs=3", "--", "x.csv")
    assert proc.returncode == 0, proc.stderr
    assert "got x.csv 3 1.0 False" in proc.stdout
    run = get_run(store)
    assert snapshot(store, run.number)["host"]["argv"] == ["main.py", "--epochs=3", "x.csv"]


def test_script_using_the_api_logs_into_the_same_run(work: Path, store: Path) -> None:
    write(
        work / "api.py",
        """\
        import labkeep
        lr = 0.1
        run = labkeep.init(config={"extra": "yes"})
        for step in range(3):
            run.log({"api_loss": 1.0 / (step + 1)}, step=step)
            print(f"printed_acc: {0.5 + step / 10}")
        run.finish()
        """,
    )
    proc = labkeep_cli(work, store, "run", "api.py", "lr=0.2", "-e", "mnist")
    assert proc.returncode == 0, proc.stderr
    assert run_count(store) == 1
    run = get_run(store)
    assert run.experiment == "mnist"
    assert run.status is RunStatus.COMPLETED
    assert run.metrics["api_loss"].count == 3
    assert run.metrics["printed_acc"].last == pytest.approx(0.7)
    assert run.params == {"lr": 0.2, "extra": "yes"}


SEVERAL_INITS = """\
import labkeep


def train(alpha):
    with labkeep.init(experiment="tiny", config={"alpha": alpha}, tags=["demo"]) as run:
        for step in range(3):
            run.log({"acc": alpha * step}, step=step)
        run.summary["final"] = alpha
    print("trained one model")


if __name__ == "__main__":
    for alpha in (0.1, 0.2, 0.3):
        train(alpha)
"""


def test_several_inits_in_a_script_are_child_runs_of_the_runners_run(
    work: Path, store: Path
) -> None:
    """Like examples/iris.py: each init() is its own run with its own experiment, config and
    metrics, linked to the run `labkeep run` made (which holds the console and snapshot)."""
    write(work / "several.py", SEVERAL_INITS)
    proc = labkeep_cli(work, store, "run", "several.py")
    assert proc.returncode == 0, proc.stderr
    assert run_count(store) == 4
    parent = get_run(store, 1)
    assert parent.experiment == "default" and parent.status is RunStatus.COMPLETED
    assert "acc" not in parent.metrics and parent.params == {}
    assert [line for _, line in output_lines(store, 1)] == ["trained one model"] * 3
    children = [get_run(store, n) for n in (2, 3, 4)]
    assert parent.children.numbers == [2, 3, 4]
    for child, alpha in zip(children, (0.1, 0.2, 0.3), strict=True):
        assert child.info.parent_uuid == parent.uuid
        assert child.experiment == "tiny" and child.status is RunStatus.COMPLETED
        assert child.params == {"alpha": alpha}
        assert child.summary == {"final": alpha}
        assert child.tags == ["demo"]
        acc = child.metrics["acc"]
        assert acc.count == 3 and acc.last == pytest.approx(2 * alpha)
    shown = labkeep_cli(work, store, "show", "1")
    assert shown.returncode == 0, shown.stderr
    # The children are listed a line each: number, name, status.
    listed = re.findall(r"^│ (?:children|\s{8})\s+(\d+)\s+\S+\s+(\w+)", shown.stdout, re.M)
    assert "children" in shown.stdout
    assert listed == [(str(c), "completed") for c in (2, 3, 4)]


def test_the_first_init_adopts_the_runners_run_of_its_experiment(work: Path, store: Path) -> None:
    """With the script's experiment, the first init() is the runner's run (one run for the
    usual one-init script); the later ones are its children."""
    write(work / "several.py", SEVERAL_INITS)
    proc = labkeep_cli(work, store, "run", "several.py", "-e", "tiny")
    assert proc.returncode == 0, proc.stderr
    assert run_count(store) == 3
    parent = get_run(store, 1)
    assert parent.experiment == "tiny" and parent.params == {"alpha": 0.1}
    assert parent.metrics["acc"].count == 3
    assert parent.children.numbers == [2, 3]
    assert [get_run(store, n).params for n in (2, 3)] == [{"alpha": 0.2}, {"alpha": 0.3}]


def test_progress_bar_output_is_passed_through_and_stored_collapsed(
    work: Path, store: Path
) -> None:
    write(
        work / "bar.py",
        """\
        import sys, time
        for i in range(0, 101, 25):
            sys.stdout.write(f"\\r{i:3d}%|{'#' * (i // 25)}")
            sys.stdout.flush()
        sys.stdout.write("\\ndone\\n")
        sys.stderr.write("warn: careful\\n")
        """,
    )
    proc = subprocess.run(
        [sys.executable, "-m", "labkeep.cli", "run", "bar.py"],
        cwd=work,
        env=cli_env(store),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    # the bytes reach the terminal unchanged, carriage returns included
    assert proc.stdout == b"\r  0%|\r 25%|#\r 50%|##\r 75%|###\r100%|####\ndone\n"
    assert proc.stderr.startswith(b"warn: careful\n")
    run = get_run(store)
    # stdout and stderr are read concurrently: their relative order is not fixed
    assert sorted(output_lines(store, run.number)) == [
        ("stderr", "warn: careful"),
        ("stdout", "100%|####"),
        ("stdout", "done"),
    ]


def test_non_zero_exit_fails_the_run_with_stderr_tail(work: Path, store: Path) -> None:
    write(
        work / "fail.py",
        """\
        import sys
        print("working")
        for i in range(80):
            print(f"noise line {i}", file=sys.stderr)
        raise ValueError("bad thing")
        """,
    )
    proc = labkeep_cli(work, store, "run", "fail.py")
    assert proc.returncode == 1
    assert "ValueError: bad thing" in proc.stderr
    assert "run 1 failed in" in proc.stderr
    run = get_run(store)
    assert run.status is RunStatus.FAILED
    assert run.info.exit_code == 1
    assert run.error is not None
    assert run.error.splitlines()[-1] == "ValueError: bad thing"
    assert "noise line 0\n" not in run.error
    assert len(run.error.splitlines()) <= 50
    write(work / "exit3.py", "import sys\nsys.exit(3)\n")
    assert labkeep_cli(work, store, "run", "exit3.py").returncode == 3
    assert get_run(store).info.exit_code == 3


def test_scalar_options(work: Path, store: Path) -> None:
    write(work / "s.py", 'print("loss: 0.5")\nprint("score is 7.5 points")\n')
    assert labkeep_cli(work, store, "run", "s.py", "--no-scalars").returncode == 0
    assert get_run(store).metrics == {}
    proc = labkeep_cli(
        work, store, "run", "s.py", "--scalar-regex", r"(?P<key>score) is (?P<value>\value)"
    )
    assert proc.returncode == 0, proc.stderr
    assert set(get_run(store).metrics) == {"score"}
    assert get_run(store).metrics["score"].last == 7.5


def test_flag_echoes_are_no_metrics_unless_asked(work: Path, store: Path) -> None:
    write(
        work / "echo.py",
        """\
        alpha = 0.3
        l1_ratio = 0.2
        print("Flags:", 5, 2.0, True, "world")
        print(f"Elasticnet model (alpha={alpha}, l1_ratio={l1_ratio}):")
        print("  RMSE: 0.71")
        """,
    )
    assert labkeep_cli(work, store, "run", "echo.py").returncode == 0
    assert set(get_run(store).metrics) == {"RMSE"}
    asked = labkeep_cli(work, store, "run", "echo.py", "--scalar-key", "alpha")
    assert asked.returncode == 0, asked.stderr
    run = get_run(store)
    assert set(run.metrics) == {"RMSE", "alpha"} and run.metrics["alpha"].last == 0.3
    command = snapshot(store, run.number)["command"]
    assert command["scalars"]["keys"] == ["alpha"]


def test_run_options_seed_inputs_tags_and_notes(work: Path, store: Path) -> None:
    (work / "data.csv").write_text("a,b\n1,2\n")
    write(
        work / "seeded.py",
        """\
        import os, random
        print("hashseed", os.environ.get("PYTHONHASHSEED"), "draw", random.random())
        print("leftover", [k for k in os.environ if k in ("LABKEEP_SEED", "LABKEEP_SCRIPT")])
        """,
    )
    args = ["run", "-n", "try2", "--tag", "a", "--tag", "b", "--note", "wider layer"]
    args += ["--seed", "7", "--input", "data.csv", "seeded.py"]
    first = labkeep_cli(work, store, *args)
    second = labkeep_cli(work, store, *args)
    assert first.returncode == 0, first.stderr
    assert "hashseed 7" in first.stdout
    assert "leftover []" in first.stdout
    assert first.stdout == second.stdout  # random was seeded in the child
    run = get_run(store)
    assert run.name == "try2"
    assert run.tags == ["a", "b"]
    assert run.notes == "wider layer"
    snap = snapshot(store, run.number)
    assert snap["seeds"][0]["seed"] == 7
    assert [Path(i["path"]).name for i in snap["inputs"]] == ["data.csv"]
    assert snap["command"]["seed"] == 7


def test_no_capture_leaves_no_snapshot(work: Path, store: Path) -> None:
    write(work / "t.py", "print('hi')\n")
    assert labkeep_cli(work, store, "run", "--no-capture", "-q", "t.py").returncode == 0
    run = get_run(store)
    client = Client(store)
    try:
        assert client.store.get_snapshot(run.number) is None
    finally:
        client.close()


def test_quiet_does_not_echo_but_stores(work: Path, store: Path) -> None:
    write(work / "t.py", "print('hello there')\n")
    proc = labkeep_cli(work, store, "run", "-q", "t.py")
    assert proc.returncode == 0
    assert proc.stdout == ""
    assert output_lines(store, get_run(store).number) == [("stdout", "hello there")]


def test_stop_refuses_a_run_that_is_not_running(work: Path, store: Path) -> None:
    write(work / "t.py", "print('hi')\n")
    assert labkeep_cli(work, store, "run", "t.py").returncode == 0
    proc = labkeep_cli(work, store, "stop", "1")
    assert proc.returncode != 0
    assert proc.stderr.strip() == "labkeep: run 1 is completed, not running; nothing to stop"


def test_a_script_printing_fast_has_every_line_and_scalar_stored_in_order(
    work: Path, store: Path
) -> None:
    """Output arrives in reads of many lines, interleaved with stderr; nothing is dropped or
    reordered within a stream, and each printed step's scalars land at that step."""
    write(
        work / "fast.py",
        """\
        import sys
        for i in range(20000):
            sys.stdout.write(f"step {i} loss={i / 1000} acc={i % 7}\\n")
            if i % 5000 == 0:
                sys.stderr.write(f"checkpoint {i}\\n")
        sys.stdout.write("done, no newline")
        """,
    )
    result = labkeep_cli(work, store, "run", "-q", "fast.py")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    lines = output_lines(store, 1)
    stdout = [text for stream, text in lines if stream == "stdout"]
    assert stdout[:2] == ["step 0 loss=0.0 acc=0", "step 1 loss=0.001 acc=1"]
    assert len(stdout) == 20001 and stdout[-1] == "done, no newline"
    assert stdout[12345] == "step 12345 loss=12.345 acc=4"
    stderr = [text for stream, text in lines if stream == "stderr"]
    assert stderr == [f"checkpoint {i}" for i in range(0, 20000, 5000)]
    client = Client(store)
    try:
        loss = client.store.get_history(1, "loss")
        acc = client.store.get_history(1, "acc")
    finally:
        client.close()
    assert list(loss.steps) == list(range(20000))
    assert list(loss.values) == [i / 1000 for i in range(20000)]
    assert list(acc.values[:8]) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0]
    assert get_run(store, 1).metrics["loss"].count == 20000
