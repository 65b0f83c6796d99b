"""The Python evaluator's semantics (the SQL tests hold the compiler to the same answers)."""

from __future__ import annotations

import math

import pytest

from labkeep.entities import MetricSummary, RunInfo, RunRecord, RunStatus
from labkeep.query import (
    KeyCatalog,
    QueryError,
    filter_records,
    parse_query,
    sort_records,
    sqlite_regexp,
)
from labkeep.query._evaluate import evaluate
from labkeep.query._patterns import canonical_like, like_to_glob, match_like

RUN = RunRecord(
    RunInfo(
        number=7,
        uuid="u",
        experiment="mnist",
        name="resnet-50",
        status=RunStatus.FAILED,
        start_time=100.0,
        end_time=None,
        heartbeat=160.0,
        user="ann",
        host="h",
    ),
    params={
        "lr": 0.1,
        "n": 3,
        "flag": True,
        "opt": "adam",
        "none": None,
        "nan": math.nan,
        "ls": [1],
    },
    metrics={"loss": MetricSummary("loss", math.nan, 9, 1.0, 0.2, 0.9, 10)},
    summary={"acc": 0.5},
    tags=("baseline",),
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lr == 0.1", True),
        ("n == 3.0", True),
        ("flag == 1 and flag == True", True),
        ("opt == 'adam' and opt != 'sgd'", True),
        ("opt > 'ad' and opt < 'b'", True),
        ("opt > 1", False),
        ("opt != 1", True),
        ("lr > 'a'", False),
        ("lr != 'a'", True),
        ("none == None and none != 1", True),
        ("none > 1", False),
        ("params.missing == 1 or params.missing != 1", False),
        ("not params.missing == 1", True),
        ("params.missing not in [1]", False),
        ("nan == 1 or nan > 0 or nan < 0", False),
        ("nan != 1", True),
        ("ls == 1 or ls == 'x'", False),
        ("ls != 1", True),
        ("loss < 1 or loss > 0 or loss == 0", False),
        ("loss != 0.5", True),
        ("not loss < 1", True),
        ("loss.min == 0.2 and loss.count == 10 and loss.step == 9", True),
        ("ended == None and not ended > 0 and not ended != 5", True),
        ("duration == 60", True),
        ("status == 'failed' and experiment == 'mnist' and number == 7", True),
        ("'baseline' in tags and 'x' not in tags", True),
        ("'lr' in params and 'loss' in metrics and 'acc' in summary and 'z' not in params", True),
        ("name.like('res%-5_') and name.startswith('res') and not name.endswith('x')", True),
        ("name.matches('[0-9]+$') and 'net' in name and 'x' not in name", True),
        ("'a' not in lr", False),
        ("not 'a' in lr", True),
        ("lr in [0.5, 'x', 0.1]", True),
        ("opt not in ['sgd', None]", True),
        ("none not in ['sgd', None]", False),
        ("summary.acc >= 0.5", True),
    ],
)
def test_semantics(text: str, expected: bool) -> None:
    assert evaluate(parse_query(text), RUN) is expected


def test_bare_names_resolve_against_the_given_catalog() -> None:
    catalog = KeyCatalog.of(params=["lr"], metrics=["lr"])
    with pytest.raises(QueryError, match="both a param and a metric"):
        evaluate(parse_query("lr > 0"), RUN, catalog=catalog)


def test_filter_and_sort_records() -> None:
    other = RunRecord(
        RunInfo(8, "v", "mnist", "vgg", RunStatus.COMPLETED, 50.0), params={"lr": 0.01}
    )
    third = RunRecord(RunInfo(9, "w", "mnist", "x", RunStatus.COMPLETED, 50.0), params={"lr": "s"})
    assert filter_records(parse_query("lr < 0.05"), [RUN, other, third]) == [other]
    assert [r.info.number for r in sort_records([RUN, other, third], "lr")] == [8, 7, 9]
    assert [r.info.number for r in sort_records([RUN, other, third], "-lr")] == [7, 8, 9]
    assert [r.info.number for r in sort_records([RUN, other, third], "-started, name")] == [7, 8, 9]


def test_patterns() -> None:
    assert match_like("startswith", "a%_\\") == "a\\%\\_\\\\%"
    assert canonical_like("ab\\") == "ab\\\\"
    assert like_to_glob("a*?[%_\\%") == "a[*][?][[]*?%"
    assert sqlite_regexp("^res", "resnet") is True
    assert sqlite_regexp("^x", "resnet") is False
    assert sqlite_regexp("x", None) is None
