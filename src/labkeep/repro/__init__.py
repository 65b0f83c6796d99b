"""Reproducing runs from their snapshots: rerun with drift checks and a verdict, diff two runs,
check a snapshot out to a directory, rebuild its environment.

What the commands say is decided here too, as data: :func:`diff_runs` (``labkeep diff``),
:func:`snapshot_view` (``show --snapshot``) and :func:`verdict_report` with :func:`drift_rows`
(``labkeep rerun``) return sections, rows and lines of :class:`Span` with a tone, never
terminal markup. The command line (``labkeep.cli._diff``, ``_rerun``, ``_checkout_env``,
``_snapshot``) lays them out with rich; everything here is usable without it.
"""

from labkeep.repro._diff import (
    CodeDiff,
    Row,
    diff_argv,
    diff_manifests,
    diff_mappings,
    file_diff,
    notebook_diff_text,
    output_diff,
    script_args,
    unified_text_diff,
)
from labkeep.repro._diff_report import (
    DiffSection,
    FileDiff,
    KeyTable,
    RunDiff,
    diff_file,
    diff_runs,
)
from labkeep.repro._drift import (
    DriftItem,
    env_drift,
    git_drift,
    input_drift,
    package_drift,
    python_drift,
)
from labkeep.repro._environment import (
    UV_HINT,
    Interpreter,
    VenvResult,
    probe_interpreter,
    recreate_venv,
    requirements_text,
)
from labkeep.repro._materialise import Materialised, check_target, materialise
from labkeep.repro._output_verdict import OTHER_TRACKERS, OutputFilter, volatile_names
from labkeep.repro._rerun import (
    RerunPlan,
    execute_rerun,
    plan_rerun,
    rerun_notes,
    verify_rerun,
)
from labkeep.repro._snapshot_view import (
    GridLine,
    InputState,
    SnapshotView,
    load_snapshot_any,
    snapshot_view,
)
from labkeep.repro._source import ManifestEntry, MissingBlobError, RunSnapshot, load_snapshot
from labkeep.repro._styled import Line, Span
from labkeep.repro._verdict_lines import (
    DriftRow,
    VerdictReport,
    VerdictRow,
    blocked_message,
    drift_rows,
    no_drift_line,
    verdict_report,
)
from labkeep.repro._verify import (
    Verdict,
    VerdictItem,
    compare_runs,
    compare_with_children,
    values_match,
)

__all__ = [
    "OTHER_TRACKERS",
    "UV_HINT",
    "CodeDiff",
    "DiffSection",
    "DriftItem",
    "DriftRow",
    "FileDiff",
    "GridLine",
    "InputState",
    "Interpreter",
    "KeyTable",
    "Line",
    "ManifestEntry",
    "Materialised",
    "MissingBlobError",
    "OutputFilter",
    "RerunPlan",
    "Row",
    "RunDiff",
    "RunSnapshot",
    "SnapshotView",
    "Span",
    "VenvResult",
    "Verdict",
    "VerdictItem",
    "VerdictReport",
    "VerdictRow",
    "blocked_message",
    "check_target",
    "compare_runs",
    "compare_with_children",
    "diff_argv",
    "diff_file",
    "diff_manifests",
    "diff_mappings",
    "diff_runs",
    "drift_rows",
    "env_drift",
    "execute_rerun",
    "file_diff",
    "git_drift",
    "input_drift",
    "load_snapshot",
    "load_snapshot_any",
    "materialise",
    "no_drift_line",
    "notebook_diff_text",
    "output_diff",
    "package_drift",
    "plan_rerun",
    "probe_interpreter",
    "python_drift",
    "recreate_venv",
    "requirements_text",
    "rerun_notes",
    "script_args",
    "snapshot_view",
    "unified_text_diff",
    "values_match",
    "verdict_report",
    "verify_rerun",
    "volatile_names",
]
