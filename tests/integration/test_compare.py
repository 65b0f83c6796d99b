"""``labkeep compare`` as a real subprocess: selection, columns, and the four output forms."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli_query import labkeep_cli
from test_search_runs import write_run

from labkeep.store import locate_store, open_store


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("compare") / "store"
    store = open_store(locate_store(str(path)))
    for i in range(1, 13):
        write_run(
            store,
            i,
            experiment="mnist" if i <= 8 else "cifar",
            status="failed" if i == 5 else "completed",
            params={"lr": 0.1 / i, "batch_size": 32, "optimizer": "adam" if i % 2 else "sgd"},
            metrics={"loss": [1.0, 0.9 / i, 1.0 / i], "acc": [0.1, i / 20]},
            tags=["baseline"] if i == 3 else [],
        )
    store.close()
    yield path


def as_json(store_dir: Path, *args: str) -> list[dict[str, object]]:
    result = labkeep_cli(store_dir, "compare", *args, "--json")
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


def test_default_columns_are_the_params_that_differ_and_the_metrics(store_dir: Path) -> None:
    rows = as_json(store_dir, "3", "4", "7")
    assert [r["number"] for r in rows] == [3, 4, 7]
    assert list(rows[0]) == [
        "number",
        "name",
        "params.lr",
        "params.optimizer",
        "metrics.acc",
        "metrics.loss",
    ]
    assert rows[1]["params.optimizer"] == "sgd"
    assert rows[0]["metrics.loss"] == pytest.approx(1 / 3)


def test_run_refs_are_numbers_names_uuid_prefixes_and_last(store_dir: Path) -> None:
    prefix = str(uuid.UUID(int=4))  # its own prefix: the fixture uuids differ at the end
    rows = as_json(store_dir, "run-2", prefix, "last", "2")
    assert [r["number"] for r in rows] == [2, 4, 12]
    missing = labkeep_cli(store_dir, "compare", "3", "nope")
    assert missing.returncode == 1 and missing.stderr.startswith("labkeep: no run 'nope'")


def test_without_runs_or_filter_the_newest_ten(store_dir: Path) -> None:
    assert [r["number"] for r in as_json(store_dir)] == list(range(12, 2, -1))
    assert [r["number"] for r in as_json(store_dir, "-e", "cifar")] == [12, 11, 10, 9]


def test_where_sort_and_limit(store_dir: Path) -> None:
    rows = as_json(
        store_dir, "--where", "experiment == 'mnist'", "--sort", "-metrics.acc", "-n", "3"
    )
    assert [r["number"] for r in rows] == [8, 7, 6]
    named = as_json(store_dir, "2", "6", "3", "--where", "optimizer == 'sgd'")
    assert [r["number"] for r in named] == [2, 6]
    sorted_named = as_json(store_dir, "2", "6", "3", "--sort", "-lr")
    assert [r["number"] for r in sorted_named] == [2, 3, 6]
    bad = labkeep_cli(store_dir, "compare", "--where", "acc >> 1")
    assert bad.returncode == 2 and bad.stderr.startswith("labkeep: ")


def test_columns_take_bare_names_accessors_and_attributes(store_dir: Path) -> None:
    rows = as_json(
        store_dir,
        "--sort",
        "-metrics.acc",
        "-n",
        "2",
        "--columns",
        "lr,batch_size,acc,loss.min,status,duration",
    )
    assert list(rows[0]) == [
        "number",
        "params.lr",
        "params.batch_size",
        "metrics.acc",
        "metrics.loss.min",
        "status",
        "duration",
    ]
    assert [r["number"] for r in rows] == [12, 11]
    assert rows[0]["metrics.loss.min"] == pytest.approx(0.9 / 12)
    assert rows[0]["params.batch_size"] == 32
    unknown = labkeep_cli(store_dir, "compare", "--columns", "lr,acx")
    assert unknown.returncode == 2
    assert "no column 'acx'" in unknown.stderr and "did you mean 'acc'?" in unknown.stderr


def test_all_shows_every_column(store_dir: Path) -> None:
    rows = as_json(store_dir, "3", "4", "--all")
    for column in ("params.batch_size", "metrics.loss.max", "metrics.loss.count", "status", "tags"):
        assert column in rows[0]
    assert rows[0]["tags"] == ["baseline"]


def test_csv_and_markdown(store_dir: Path) -> None:
    result = labkeep_cli(store_dir, "compare", "3", "4", "--csv", "--columns", "lr,loss,tags")
    assert result.returncode == 0, result.stderr
    table = list(csv.reader(io.StringIO(result.stdout)))
    assert table[0] == ["number", "params.lr", "metrics.loss", "tags"]
    assert table[1][0] == "3" and float(table[1][1]) == pytest.approx(0.1 / 3)
    assert table[1][3] == "baseline"
    markdown = labkeep_cli(store_dir, "compare", "3", "4", "--markdown", "--columns", "optimizer")
    assert markdown.stdout.splitlines() == [
        "| # | optimizer |",
        "|---:|---|",
        "| 3 | adam |",
        "| 4 | sgd |",
    ]
    both = labkeep_cli(store_dir, "compare", "--csv", "--json")
    assert both.returncode == 2


def test_the_table_fits_the_terminal_and_names_what_it_left_out(store_dir: Path) -> None:
    wide = labkeep_cli(store_dir, "compare", "3", "4", "--all", width=400)
    narrow = labkeep_cli(store_dir, "compare", "3", "4", "--all", width=60)
    assert narrow.returncode == 0
    assert all(len(line) <= 60 for line in narrow.stdout.splitlines()[:3])
    assert "did not fit" in narrow.stdout and "did not fit" not in wide.stdout
    header = narrow.stdout.splitlines()[0].split()
    assert header[:2] == ["#", "name"]
    assert "acc" in header and "lr" not in header  # metrics kept before params
