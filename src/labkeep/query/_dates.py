"""Times and durations as people type them: ISO dates, ``'2h ago'``, ``'yesterday'``,
``'5m'``, ``'1h30m'``."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

_UNITS: dict[str, float] = {}
for _names, _seconds in (
    (("s", "sec", "secs", "second", "seconds"), 1.0),
    (("m", "min", "mins", "minute", "minutes"), 60.0),
    (("h", "hr", "hrs", "hour", "hours"), 3600.0),
    (("d", "day", "days"), 86400.0),
    (("w", "wk", "wks", "week", "weeks"), 7 * 86400.0),
):
    for _name in _names:
        _UNITS[_name] = _seconds

_PART = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]+)", re.ASCII)
_CLOCK = re.compile(r"(\d+):([0-5]\d)(?::([0-5]\d(?:\.\d*)?))?", re.ASCII)


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a number (seconds), ``'90s'``, ``'5m'``, ``'1h30m'``, ``'2 days'``,
    ``'1.5h'`` or a clock form ``'1:30:00'``. Raises ValueError otherwise.

    >>> parse_duration("1h30m")
    5400.0
    """
    t = text.strip().lower()
    if not t:
        raise ValueError("empty duration")
    try:
        value = float(t)
    except ValueError:
        pass
    else:
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"not a duration: {text!r}")
        return value
    clock = _CLOCK.fullmatch(t)
    if clock:
        hours, minutes, seconds = clock.groups()
        return int(hours) * 3600.0 + int(minutes) * 60.0 + float(seconds or 0)
    total = 0.0
    pos = 0
    while pos < len(t):
        m = _PART.match(t, pos)
        if not m or m.group(2) not in _UNITS:
            raise ValueError(f"not a duration: {text!r}")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
        while pos < len(t) and t[pos] in " ,":
            pos += 1
        if t.startswith("and ", pos):
            pos += 4
    return total


def parse_relative_time(text: str, now: float) -> float:
    """Epoch seconds for a relative time: ``'2h ago'``, ``'3 days ago'``, ``'now'``,
    ``'today'`` and ``'yesterday'`` (local midnight). Raises ValueError otherwise.

    >>> parse_relative_time("2h ago", now=10_000.0)
    2800.0
    """
    t = " ".join(text.strip().lower().split())
    if t == "now":
        return now
    if t in ("today", "yesterday"):
        midnight = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
        if t == "yesterday":
            midnight -= timedelta(days=1)
        return midnight.timestamp()
    if t.endswith(" ago") or t.endswith("ago"):
        body = t[: -len("ago")].strip()
        if body:
            return now - parse_duration(body)
    raise ValueError(f"not a relative time: {text!r}")


def parse_time(text: str, now: float) -> float:
    """Epoch seconds for an ISO 8601 date or date-time (local time unless it names a zone)
    or a relative time (:func:`parse_relative_time`). Raises ValueError otherwise.

    >>> parse_time("1970-01-02T00:00:00Z", now=0.0)
    86400.0
    """
    t = text.strip()
    try:
        return parse_relative_time(t, now)
    except ValueError:
        pass
    iso = t[:-1] + "+00:00" if t.endswith(("Z", "z")) else t
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        raise ValueError(f"not a date: {text!r}") from None
    return moment.timestamp()
