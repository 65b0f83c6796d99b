"""Fuzz of what training code logs: ``log()`` with arbitrary data and steps, and config and
summary with arbitrary values. Each call succeeds or raises a one-line LabkeepError, never
another exception; and what was accepted reaches the store (the run ends completed, with
every point that log() took)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import labkeep
from labkeep.errors import LabkeepError

ODD_TEXT = st.sampled_from(["", " ", "\x00", "\ud800", "\udcff", "k" * 300, "[/x]", "a.b", "é"])
KEYS = st.one_of(
    st.text(max_size=20),
    st.builds(str.__add__, st.text(max_size=5), ODD_TEXT),
    st.integers(),
    st.floats(),
    st.none(),
    st.binary(max_size=4),
    st.tuples(st.text(max_size=3)),
)
BIG = st.sampled_from(
    [2**63, -(2**63) - 1, 2**70, 10**30, 10**400, -(10**400), 2**63 - 1, -(2**63)]
) | st.just(5000).map(lambda digits: 10**digits)  # too long even to print
NUMPY = st.one_of(
    st.floats(width=32).map(np.float32),
    st.integers(-(2**63), 2**63 - 1).map(np.int64),
    st.booleans().map(np.bool_),
    st.just(np.array(1.5)),
    st.just(np.array([1.0, 2.0])),
)
METRIC_VALUES = st.one_of(
    st.floats(),
    st.integers(),
    BIG,
    st.booleans(),
    st.none(),
    st.text(max_size=5),
    st.fractions(),
    st.decimals(allow_nan=True),
    st.complex_numbers(),
    st.lists(st.floats(), max_size=3),
    NUMPY,
)
STEPS = st.one_of(
    st.none(),
    st.integers(),
    BIG,
    st.floats(),
    st.booleans(),
    st.text(max_size=3),
    st.integers(-(2**63), 2**63 - 1).map(np.int64),
    st.integers(0, 2**64 - 1).map(np.uint64),
)
DATA = st.one_of(
    st.dictionaries(KEYS, METRIC_VALUES, max_size=6),
    st.dictionaries(st.text(max_size=8), st.floats(), max_size=3),  # mostly accepted
    st.integers(),
    st.lists(st.tuples(st.text(max_size=3), st.floats()), max_size=3),
    st.text(max_size=5),
    st.none(),
    st.sets(st.text(max_size=3), max_size=3),
)
PARAM_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        BIG,
        st.floats(),
        st.text(max_size=10),
        ODD_TEXT,
        st.binary(max_size=4),
        st.fractions(),
        NUMPY,
        st.builds(Path, st.text(st.characters(exclude_characters="\x00"), max_size=5)),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner),
        st.dictionaries(st.one_of(st.text(max_size=5), ODD_TEXT, st.integers()), inner, max_size=3),
        st.sets(st.integers(), max_size=2),
    ),
    max_leaves=8,
)


def accepted_or_one_line(call: Any, *args: Any) -> bool:
    """Whether ``call(*args)`` was accepted; refusals must be one-line LabkeepErrors."""
    try:
        call(*args)
    except LabkeepError as exc:
        message = str(exc)
        assert message and "\n" not in message, repr(message)
        return False
    return True


def test_log_takes_anything_or_refuses_it_in_one_line(tmp_path: Path) -> None:
    store = tmp_path / "store"
    points: dict[str, int] = {}
    with labkeep.init(store=store, capture=False, system_metrics=0) as run:

        @settings(max_examples=400, deadline=None)
        @given(data=DATA, step=STEPS)
        def log_once(data: Any, step: Any) -> None:
            if accepted_or_one_line(run.log, data, step):
                for key in data:
                    points[key] = points.get(key, 0) + 1

        log_once()
        run.log({"last": 1.0})
    view = labkeep.get_run("last", store=store)
    assert view.status is labkeep.RunStatus.COMPLETED
    assert {key: view.metrics[key].count for key in view.metrics} == {**points, "last": 1}


def test_config_and_summary_take_anything_or_refuse_it_in_one_line(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with labkeep.init(store=store, capture=False, system_metrics=0) as run:

        @settings(max_examples=300, deadline=None)
        @given(
            target=st.sampled_from(["config", "summary"]),
            values=st.dictionaries(st.one_of(st.text(max_size=8), ODD_TEXT), PARAM_VALUES),
        )
        def set_once(target: str, values: dict[str, Any]) -> None:
            accepted_or_one_line(getattr(run, target).update, values)

        set_once()
        config, summary = dict(run.config), dict(run.summary)
    view = labkeep.get_run("last", store=store)
    assert view.status is labkeep.RunStatus.COMPLETED
    assert sorted(view.params) == sorted(config)
    assert sorted(view.summary) == sorted(summary)
