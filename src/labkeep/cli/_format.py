"""How values look in the terminal: times, durations, numbers, statuses."""

from __future__ import annotations

import time
from datetime import datetime

# Shared with repro/'s views, so a value reads the same everywhere.
from labkeep._value_text import format_size as format_size
from labkeep._value_text import format_value as format_value

STATUS_STYLES = {
    "running": "bold blue",
    "completed": "green",
    "failed": "bold red",
    "interrupted": "yellow",
    "killed": "magenta",
}


def status_text(status: str) -> str:
    return f"[{STATUS_STYLES.get(status, '')}]{status}[/]"


def format_time(ts: float | None, now: float | None = None) -> str:
    """Recent times as '5m ago', older ones as a date and time."""
    if ts is None:
        return "-"
    now = time.time() if now is None else now
    age = now - ts
    if 0 <= age < 60:
        return f"{int(age)}s ago"
    if 0 <= age < 3600:
        return f"{int(age // 60)}m ago"
    if 0 <= age < 86400:
        return f"{int(age // 3600)}h ago"
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def format_timestamp(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts).isoformat(sep=" ", timespec="seconds")


def format_duration(seconds: float | None) -> str:
    """>>> format_duration(3725)
    '1h02m'
    """
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"
