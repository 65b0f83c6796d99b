"""Reproducing runs from their snapshots: rerun with drift checks and a verdict, diff two runs,
check a snapshot out to a directory, rebuild its environment.

The command line (``labkeep rerun``, ``diff``, ``checkout``, ``env``, ``show --snapshot``) lives
in :mod:`labkeep.cli._repro`; everything here is usable without it.
"""

from labkeep.repro._diff import diff_argv, diff_manifests, diff_mappings, file_diff, output_diff
from labkeep.repro._drift import DriftItem, fingerprint_now
from labkeep.repro._environment import find_uv, recreate_venv, requirements_text
from labkeep.repro._materialise import check_target, materialise
from labkeep.repro._rerun import execute_rerun, plan_rerun, verify_rerun
from labkeep.repro._source import RunSnapshot, load_snapshot
from labkeep.repro._verify import Verdict

# What the layers above use; a test pins it (tests/unit/test_public_names.py).
__all__ = [
    "DriftItem",
    "RunSnapshot",
    "Verdict",
    "check_target",
    "diff_argv",
    "diff_manifests",
    "diff_mappings",
    "execute_rerun",
    "file_diff",
    "find_uv",
    "fingerprint_now",
    "load_snapshot",
    "materialise",
    "output_diff",
    "plan_rerun",
    "recreate_venv",
    "requirements_text",
    "verify_rerun",
]
