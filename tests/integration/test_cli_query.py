"""``labkeep runs --where/--sort`` as a real subprocess on a real SQLite store."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_search_runs import write_run

from labkeep.store import Store, locate_store, open_store

SRC = Path(__file__).resolve().parents[2] / "src"


def labkeep_cli(store: Path, *args: str, width: int = 200) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": str(width), "NO_COLOR": "1"}
    env.pop("LABKEEP_HOME", None)
    return subprocess.run(
        [sys.executable, "-m", "labkeep.cli", "--store", str(store), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def listed(output: str) -> list[int]:
    """The run numbers of a ``labkeep runs`` table, in order."""
    numbers = []
    for line in output.splitlines()[1:]:
        first = line.split()[0] if line.split() else ""
        if first.isdigit():
            numbers.append(int(first))
    return numbers


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("cli") / "store"
    store: Store = open_store(locate_store(str(path)))
    write_run(
        store,
        1,
        experiment="mnist",
        params={"lr": 0.1, "optimizer": "adam"},
        metrics={"loss": [0.5, 0.15]},
        tags=["baseline"],
    )
    write_run(
        store,
        2,
        experiment="mnist",
        status="failed",
        params={"lr": 0.01, "optimizer": "sgd"},
        metrics={"loss": [0.3]},
    )
    write_run(
        store,
        3,
        experiment="cifar",
        params={"lr": 0.001, "optimizer": "adam"},
        metrics={"loss": [0.05]},
    )
    write_run(store, 4, experiment="mnist", params={"lr": 0.005}, metrics={"loss": [0.19]})
    store.close()
    yield path


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--where", "metrics.loss < 0.2 and params.lr >= 1e-3", "--sort", "metrics.loss"],
            [3, 1, 4],
        ),
        (["--where", "status == 'failed' or 'baseline' in tags", "-e", "mnist"], [2, 1]),
        (["--where", "loss < 0.2 and optimizer == 'adam'"], [3, 1]),
        (["--sort", "-lr", "--limit", "2"], [1, 2]),
        (["--sort", "optimizer, -loss"], [1, 3, 2, 4]),
        ([], [4, 3, 2, 1]),
    ],
)
def test_runs_filters_and_sorts(store_dir: Path, args: list[str], expected: list[int]) -> None:
    result = labkeep_cli(store_dir, "runs", *args)
    assert result.returncode == 0, result.stderr
    assert listed(result.stdout) == expected


def test_runs_says_how_many_matched_beyond_the_limit(store_dir: Path) -> None:
    result = labkeep_cli(store_dir, "runs", "--where", "lr > 0", "--sort", "lr", "-n", "2")
    assert listed(result.stdout) == [3, 4]
    assert "the first 2 of 4 matching runs" in result.stdout
    nothing = labkeep_cli(store_dir, "runs", "--where", "lr > 5")
    assert nothing.returncode == 0
    assert "No runs that match" in nothing.stdout


def test_the_columns_show_the_keys_the_query_names(store_dir: Path) -> None:
    result = labkeep_cli(
        store_dir, "runs", "--where", "loss < 1", "--params", "1", "--metrics", "1"
    )
    header = result.stdout.splitlines()[0].split()
    assert "loss" in header and "lr" in header


def test_a_bad_query_exits_2_with_a_caret_under_the_problem(store_dir: Path) -> None:
    result = labkeep_cli(store_dir, "runs", "--where", "loss < 0.2 and optimizr == 'adam'")
    assert result.returncode == 2
    lines = result.stderr.rstrip("\n").splitlines()
    assert lines[0].startswith("labkeep: unknown name 'optimizr'")
    assert "did you mean 'optimizer'?" in lines[0]
    assert lines[1] == "  loss < 0.2 and optimizr == 'adam'"
    assert lines[2] == "  " + " " * len("loss < 0.2 and ") + "^" * len("optimizr")
    assert "Traceback" not in result.stderr
    syntax = labkeep_cli(store_dir, "runs", "--where", "lr >")
    assert syntax.returncode == 2 and syntax.stderr.startswith("labkeep: ")
    sort = labkeep_cli(store_dir, "runs", "--sort", "-lossy")
    assert sort.returncode == 2 and "did you mean" in sort.stderr


@pytest.mark.parametrize(
    "where",
    [
        "name == 'x'; DROP TABLE runs; --'",
        "name == \"x' OR '1'='1\"",
        "params['lr; DROP TABLE params'] > 0",
        'name.like("%\'); DELETE FROM runs; --")',
        "__import__('os').system('echo pwned')",
    ],
)
def test_nothing_typed_reaches_the_database_as_sql(store_dir: Path, where: str) -> None:
    result = labkeep_cli(store_dir, "runs", "--where", where)
    assert result.returncode in (0, 2), result.stderr
    assert listed(result.stdout) == []
    assert "pwned" not in result.stdout
    after = labkeep_cli(store_dir, "runs", "--where", "lr > 0")
    assert listed(after.stdout) == [4, 3, 2, 1]


def test_deleted_runs_with_a_query(store_dir: Path) -> None:
    store = open_store(locate_store(str(store_dir)))
    store.set_deleted([2, 3], True)
    try:
        assert listed(labkeep_cli(store_dir, "runs", "--where", "lr < 1").stdout) == [4, 1]
        trash = labkeep_cli(store_dir, "runs", "--deleted", "--where", "optimizer == 'sgd'")
        assert listed(trash.stdout) == [2]
    finally:
        store.set_deleted([2, 3], False)
        store.close()


def test_a_query_on_a_store_without_runs(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    assert labkeep_cli(empty, "runs", "--where", "lr > 1").returncode == 0
    assert labkeep_cli(empty, "runs", "--where", "lr >").returncode == 2
    assert not empty.exists()


def test_listed_values_are_shown_as_typed_not_as_markup(tmp_path: Path) -> None:
    path = tmp_path / "store"
    store: Store = open_store(locate_store(str(path)))
    write_run(store, 1, params={"[b]key": "[red]hot[/red]"}, metrics={"loss": [0.5]})
    store.close()
    result = labkeep_cli(path, "runs", "--params", "1")
    assert result.returncode == 0, result.stderr
    assert "[red]hot[/red]" in result.stdout
    assert "[b]key" in result.stdout


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Runs alike in every param and metric but one of each: x and loss."""
    path = tmp_path_factory.mktemp("sweep") / "store"
    store: Store = open_store(locate_store(str(path)))
    for i in range(1, 4):
        write_run(
            store,
            i,
            params={"batch_size": 32, "epochs": 5, "lr": 1.0, "optimizer": "adam", "x": -i * 1.0},
            metrics={"acc": [0.5], "epoch_time": [1.5], "loss": [0.1 * i], "step_time": [0.2]},
        )
    store.close()
    yield path


def header_and_rows(output: str) -> tuple[list[str], list[list[str]]]:
    lines = output.splitlines()
    return lines[0].split(), [line.split() for line in lines[1:] if line[:1].strip()]


def test_a_narrow_terminal_keeps_the_columns_that_differ_and_names_the_hidden(
    sweep_dir: Path,
) -> None:
    result = labkeep_cli(sweep_dir, "runs", width=80)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), result.stdout
    header = lines[0].split()
    assert "x" in header and "loss" in header, result.stdout
    assert "-3.0" in lines[1]  # x of run 3, a float
    footer = lines[-1]
    assert footer.startswith("hidden: ") and "widen the terminal or use --columns" in footer
    keys = {"batch_size", "epochs", "lr", "optimizer", "x", "acc", "epoch_time", "loss"}
    keys.add("step_time")
    hidden = int(footer.split()[1])
    assert hidden + len(keys & set(header)) == len(keys), result.stdout
    # Wide enough for everything: nothing hidden, nothing said.
    wide = labkeep_cli(sweep_dir, "runs", "--params", "9", "--metrics", "9", width=300)
    assert "hidden" not in wide.stdout
    assert set(wide.stdout.splitlines()[0].split()) >= {"lr", "x", "acc", "step_time"}


def test_runs_columns_picks_exactly_the_columns(sweep_dir: Path) -> None:
    result = labkeep_cli(sweep_dir, "runs", "--columns", "lr,metrics.acc", width=80)
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0].split()
    assert header[-2:] == ["lr", "acc"]
    assert "x" not in header and "loss" not in header
    bad = labkeep_cli(sweep_dir, "runs", "--columns", "los")
    assert bad.returncode != 0
    assert "'los'" in bad.stderr and "loss" in bad.stderr and "Traceback" not in bad.stderr


def test_a_param_and_a_metric_of_one_name_get_two_headers(tmp_path: Path) -> None:
    path = tmp_path / "store"
    store: Store = open_store(locate_store(str(path)))
    write_run(store, 1, params={"x": 2.0}, metrics={"x": [0.25]})
    write_run(store, 2, params={"x": 3.0}, metrics={"x": [0.5]})
    store.close()
    result = labkeep_cli(path, "runs")
    header, rows = header_and_rows(result.stdout)
    assert header[-2:] == ["params.x", "metrics.x"], result.stdout
    assert rows[0][-2:] == ["3.0", "0.5"]
