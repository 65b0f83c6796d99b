"""Reproducing runs from their snapshots: rerun with drift checks and a verdict, diff two runs,
check a snapshot out to a directory, rebuild its environment.

What the commands say is decided here too, as data: :func:`diff_runs` (``labkeep diff``),
:func:`snapshot_view` (``show --snapshot``) and :func:`verdict_report` with :func:`drift_rows`
(``labkeep rerun``) return sections, rows and lines of :class:`Span` with a tone, never
terminal markup. The command line (``labkeep.cli._diff``, ``_rerun``, ``_checkout_env``,
``_snapshot``) lays them out with rich; everything here is usable without it.
"""

from labkeep.repro._diff_report import DiffSection, KeyTable, diff_file, diff_runs
from labkeep.repro._environment import find_uv, recreate_venv, requirements_text
from labkeep.repro._materialise import check_target, materialise
from labkeep.repro._rerun import execute_rerun, plan_rerun, verify_rerun
from labkeep.repro._snapshot_view import SnapshotView, load_snapshot_any, snapshot_view
from labkeep.repro._source import RunSnapshot, load_snapshot
from labkeep.repro._styled import Line
from labkeep.repro._verdict_lines import (
    DriftRow,
    VerdictReport,
    blocked_message,
    drift_rows,
    no_drift_line,
    verdict_report,
)

# What the layers above use; a test pins it (tests/unit/test_public_names.py).
__all__ = [
    "DiffSection",
    "DriftRow",
    "KeyTable",
    "Line",
    "RunSnapshot",
    "SnapshotView",
    "VerdictReport",
    "blocked_message",
    "check_target",
    "diff_file",
    "diff_runs",
    "drift_rows",
    "execute_rerun",
    "find_uv",
    "load_snapshot",
    "load_snapshot_any",
    "materialise",
    "no_drift_line",
    "plan_rerun",
    "recreate_venv",
    "requirements_text",
    "snapshot_view",
    "verdict_report",
    "verify_rerun",
]
