"""How values look in the terminal: times, durations, numbers, statuses."""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any

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


def format_value(value: Any) -> str:
    """Compact, faithful display of a param, metric or summary value."""
    if value is None:
        return "None"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-4):
            return f"{value:.4g}"
        text = f"{value:.6g}"
        # 1.0 reads as a float, not as the int 1 (``g`` drops the point).
        return text if any(c in text for c in ".e") else text + ".0"
    if isinstance(value, str):
        return value
    return str(value)


def format_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"
