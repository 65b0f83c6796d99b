"""Relative and absolute times, durations."""

from __future__ import annotations

from datetime import datetime

import pytest

from labkeep.query._dates import parse_duration, parse_relative_time, parse_time

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("1.5", 1.5),
        ("90s", 90.0),
        ("5m", 300.0),
        ("5 min", 300.0),
        ("1h30m", 5400.0),
        ("1h 30m", 5400.0),
        ("1.5h", 5400.0),
        ("2 days", 172800.0),
        ("1 week, 1 day", 691200.0),
        ("1 hour and 2 minutes", 3720.0),
        ("1:30:00", 5400.0),
        ("2:05", 7500.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5 parsecs", "m5", "nan", "inf", "1h-", "ago"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h ago", NOW - 7200),
        ("3 days ago", NOW - 3 * 86400),
        ("  10   MINUTES   AGO ", NOW - 600),
        ("1h30m ago", NOW - 5400),
        ("now", NOW),
    ],
)
def test_relative_times(text: str, expected: float) -> None:
    assert parse_relative_time(text, NOW) == expected


def test_today_and_yesterday_are_local_midnights() -> None:
    midnight = datetime.fromtimestamp(NOW).replace(hour=0, minute=0, second=0, microsecond=0)
    assert parse_relative_time("today", NOW) == midnight.timestamp()
    assert parse_relative_time("yesterday", NOW) == midnight.timestamp() - 86400 or (
        # a daylight-saving change in between shifts it by an hour
        abs(parse_relative_time("yesterday", NOW) - (midnight.timestamp() - 86400)) == 3600
    )


@pytest.mark.parametrize("text", ["ago", "2 parsecs ago", "tomorrow", "2h"])
def test_bad_relative_times(text: str) -> None:
    with pytest.raises(ValueError):
        parse_relative_time(text, NOW)


def test_iso_times() -> None:
    assert parse_time("1970-01-02T00:00:00Z", NOW) == 86400.0
    assert parse_time("1970-01-02T01:00:00+01:00", NOW) == 86400.0
    assert parse_time("2024-05-01", NOW) == datetime(2024, 5, 1).timestamp()
    assert parse_time("2024-05-01 13:30", NOW) == datetime(2024, 5, 1, 13, 30).timestamp()
    assert parse_time("2h ago", NOW) == NOW - 7200
    with pytest.raises(ValueError, match="not a date"):
        parse_time("May first", NOW)
