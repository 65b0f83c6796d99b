"""Metric histories for charts: ordered by the x axis, cut to a range, and downsampled on the
server so that a million-point series reaches the browser as a few thousand points.

Downsampling keeps, per bucket of consecutive points, the first, the lowest, the highest and the
last point (the M4 rule): a line drawn through them covers the same pixels as the full series,
so spikes and dips survive.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy

XAxis = Literal["step", "time"]

#: The most points one response carries, whatever the client asks for.
MAX_POINTS = 20_000


@dataclass(frozen=True, slots=True)
class Series:
    """Parallel columns of one metric: int64 steps, float64 values and wall times."""

    steps: numpy.ndarray[Any, Any]
    values: numpy.ndarray[Any, Any]
    times: numpy.ndarray[Any, Any]

    def __len__(self) -> int:
        return len(self.steps)

    @classmethod
    def from_bytes(cls, raw: tuple[bytes, bytes, bytes]) -> Series:
        import numpy as np

        return cls(
            np.frombuffer(raw[0], dtype="<i8"),
            np.frombuffer(raw[1], dtype="<f8"),
            np.frombuffer(raw[2], dtype="<f8"),
        )

    def take(self, index: Any) -> Series:
        return Series(self.steps[index], self.values[index], self.times[index])


def m4_indices(values: numpy.ndarray[Any, Any], points: int) -> numpy.ndarray[Any, Any]:
    """Indices (sorted, unique, at most ``points``) of the first, min, max and last point of
    each bucket of consecutive values. NaN never wins min or max.

    >>> m4_indices(np.array([0.0, 5.0, 1.0, 2.0, -3.0, 0.0]), 4).tolist()
    [0, 1, 4, 5]
    """
    import numpy as np

    n = len(values)
    if n <= points:
        return np.arange(n)
    buckets = max(1, points // 4)
    size = -(-n // buckets)
    count = -(-n // size)
    pad = count * size - n
    nan = np.isnan(values)
    low = np.where(nan, np.inf, values)
    high = np.where(nan, -np.inf, values)
    if pad:
        low = np.concatenate([low, np.full(pad, np.inf)])
        high = np.concatenate([high, np.full(pad, -np.inf)])
    base = np.arange(count, dtype=np.int64) * size
    lowest = base + low.reshape(count, size).argmin(axis=1)
    highest = base + high.reshape(count, size).argmax(axis=1)
    last = np.minimum(base + size - 1, n - 1)
    chosen = np.concatenate([base, lowest, highest, last])
    return np.unique(np.minimum(chosen, n - 1))


def prepare(
    series: Series,
    *,
    x: XAxis = "step",
    points: int = 1000,
    x_min: float | None = None,
    x_max: float | None = None,
    since: int = 0,
) -> tuple[Series, bool]:
    """The points a chart needs: those logged at index ``since`` or later, ordered by ``x``,
    inside ``[x_min, x_max]``, downsampled to at most ``points``. Returns them and whether
    any were dropped by downsampling."""
    import numpy as np

    points = max(4, min(points, MAX_POINTS))
    if since > 0:
        series = series.take(slice(since, None))
    axis = series.steps if x == "step" else series.times
    if len(axis) > 1 and not bool(np.all(axis[1:] >= axis[:-1])):
        order = np.argsort(axis, kind="stable")
        series = series.take(order)
        axis = axis[order]
    if x_min is not None or x_max is not None:
        lo = 0 if x_min is None else int(np.searchsorted(axis, x_min, side="left"))
        hi = len(axis) if x_max is None else int(np.searchsorted(axis, x_max, side="right"))
        series = series.take(slice(lo, hi))
    if len(series) <= points:
        return series, False
    return series.take(m4_indices(series.values, points)), True


def _json_floats(values: numpy.ndarray[Any, Any]) -> list[Any]:
    """Floats for JSON: non-finite values become the strings 'nan', 'inf' and '-inf'."""
    import numpy as np

    plain: list[Any] = values.tolist()
    if not bool(np.isfinite(values).all()):
        plain = [v if math.isfinite(v) else str(v) for v in plain]
    return plain


def history_json(key: str, total: int, series: Series, downsampled: bool, since: int) -> bytes:
    """The history response body, encoded once (lists of numbers dominate it)."""
    body = {
        "key": key,
        "total": total,
        "since": since,
        "downsampled": downsampled,
        "steps": series.steps.tolist(),
        "values": _json_floats(series.values),
        "times": _json_floats(series.times),
    }
    return json.dumps(body, separators=(",", ":")).encode()
