"""Server-side downsampling of metric histories (``labkeep.server._history``)."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from labkeep.server._history import MAX_POINTS, Series, history_json, m4_indices, prepare


def series(values: list[float] | np.ndarray, steps: list[int] | None = None) -> Series:
    v = np.asarray(values, dtype="<f8")
    s = np.arange(len(v), dtype="<i8") if steps is None else np.asarray(steps, dtype="<i8")
    return Series(s, v, 1000.0 + np.arange(len(v), dtype="<f8"))


def test_short_series_are_kept_whole() -> None:
    assert m4_indices(np.array([3.0, 1.0, 2.0]), 10).tolist() == [0, 1, 2]
    chosen, downsampled = prepare(series([3.0, 1.0, 2.0]), points=10)
    assert not downsampled
    assert chosen.values.tolist() == [3.0, 1.0, 2.0]


def test_each_bucket_keeps_first_min_max_last() -> None:
    assert m4_indices(np.array([0.0, 5.0, 1.0, 2.0, -3.0, 0.0]), 4).tolist() == [0, 1, 4, 5]


def test_nan_never_wins_min_or_max() -> None:
    values = np.array([1.0, np.nan, 7.0, np.nan, -2.0, 3.0, np.nan, 0.5])
    chosen = m4_indices(values, 4).tolist()
    assert 2 in chosen and 4 in chosen


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=1, max_size=3000),
    st.integers(min_value=4, max_value=400),
)
def test_peaks_survive_and_the_budget_holds(values: list[float], points: int) -> None:
    v = np.array(values)
    chosen = m4_indices(v, points)
    assert len(chosen) <= max(points, 4)
    assert chosen.tolist() == sorted(set(chosen.tolist()))
    assert chosen[0] == 0 and chosen[-1] == len(v) - 1
    kept = v[chosen]
    finite = v[~np.isnan(v)]
    if len(finite):
        assert np.nanmax(kept) == finite.max()
        assert np.nanmin(kept) == finite.min()


def test_a_million_points_fit_the_budget_with_the_spike() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(size=1_000_000)
    values[654_321] = 50.0
    values[123_456] = -50.0
    chosen, downsampled = prepare(series(values), points=1000)
    assert downsampled
    assert len(chosen) <= 1000
    assert chosen.values.max() == 50.0
    assert chosen.values.min() == -50.0
    assert 654_321 in chosen.steps.tolist()


def test_out_of_order_steps_are_ordered_by_step() -> None:
    chosen, _ = prepare(series([1.0, 2.0, 3.0], steps=[5, 1, 3]), x="step")
    assert chosen.steps.tolist() == [1, 3, 5]
    assert chosen.values.tolist() == [2.0, 3.0, 1.0]
    by_time, _ = prepare(series([1.0, 2.0, 3.0], steps=[5, 1, 3]), x="time")
    assert by_time.steps.tolist() == [5, 1, 3]


def test_range_and_since() -> None:
    s = series(np.arange(100, dtype=float))
    chosen, downsampled = prepare(s, x_min=10, x_max=19.5, points=1000)
    assert chosen.steps.tolist() == list(range(10, 20))
    assert not downsampled
    later, _ = prepare(s, since=95)
    assert later.steps.tolist() == [95, 96, 97, 98, 99]
    timed, _ = prepare(s, x="time", x_min=1090.0)
    assert timed.steps.tolist() == list(range(90, 100))


def test_points_are_capped() -> None:
    chosen, _ = prepare(series(np.sin(np.arange(200_000) / 7.0)), points=10**9)
    assert len(chosen) <= MAX_POINTS


def test_json_encodes_non_finite_values_as_strings() -> None:
    s = series([1.0, float("nan"), float("inf"), float("-inf")])
    body = json.loads(history_json("k", 4, s, False, 0))
    assert body["values"] == [1.0, "nan", "inf", "-inf"]
    assert body["steps"] == [0, 1, 2, 3]
    assert body == {**body, "key": "k", "total": 4, "downsampled": False, "since": 0}
