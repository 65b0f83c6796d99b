"""How values read as text, wherever labkeep shows them: params, metrics and sizes.

The command line and :mod:`labkeep.repro`'s views both use these, so a value reads the same in a
table, a snapshot line and a ``labkeep run`` command.
"""

from __future__ import annotations

import math
from typing import Any


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
    """>>> format_size(1536)
    '1.5 KB'
    """
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"
