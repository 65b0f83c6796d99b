"""Reproducing runs from their snapshots: rerun with drift checks and a verdict, diff two runs,
check a snapshot out to a directory, rebuild its environment.

The command line (``labkeep rerun``, ``diff``, ``checkout``, ``env``, ``show --snapshot``) lives
in :mod:`labkeep.cli._repro`; everything here is usable without it.
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
from labkeep.repro._source import ManifestEntry, MissingBlobError, RunSnapshot, load_snapshot
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
    "DriftItem",
    "Interpreter",
    "ManifestEntry",
    "Materialised",
    "MissingBlobError",
    "OutputFilter",
    "RerunPlan",
    "Row",
    "RunSnapshot",
    "VenvResult",
    "Verdict",
    "VerdictItem",
    "check_target",
    "compare_runs",
    "compare_with_children",
    "diff_argv",
    "diff_manifests",
    "diff_mappings",
    "env_drift",
    "execute_rerun",
    "file_diff",
    "git_drift",
    "input_drift",
    "load_snapshot",
    "materialise",
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
    "unified_text_diff",
    "values_match",
    "verify_rerun",
    "volatile_names",
]
