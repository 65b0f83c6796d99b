"""Launch a script or notebook as a run: flag detection, overrides, injection, output capture.

``labkeep run train.py lr=0.01`` goes through here: :func:`detect_flags` finds the script's
flags (globals, argparse, click, a ``--config`` file, a notebook's parameters cell),
:func:`resolve_overrides` checks and types the ``name=value`` arguments, :func:`build_command`
says how to start the child so the values reach the unmodified script, and
:class:`OutputScalarParser` and :class:`ConsoleLog` turn its output into metrics and a log.

Names load on first use: the child's ``python -m labkeep.runner._bootstrap`` imports this
package too, and must not pay for the parent's machinery.
"""

from __future__ import annotations

from labkeep._lazy import lazy_names

TYPE_CHECKING = False
if TYPE_CHECKING:
    from labkeep.runner._detect import DETECT_TIMEOUT, DETECT_TIMEOUT_ENV
    from labkeep.runner._flag import Flag, FlagSet, FlagValue
    from labkeep.runner._launch import LaunchResult, LaunchSpec, detect, launch, prepare_launch
    from labkeep.runner._overrides import (
        SEARCH_FUNCTIONS,
        coerce_value,
        parse_assignment,
        parse_flag_value,
        parse_literal,
        resolve_overrides,
        unknown_flag_error,
    )
    from labkeep.runner._stop import stop_run

_EXPORTS = {
    "DETECT_TIMEOUT": "_detect",
    "DETECT_TIMEOUT_ENV": "_detect",
    "Flag": "_flag",
    "FlagSet": "_flag",
    "FlagValue": "_flag",
    "LaunchResult": "_launch",
    "LaunchSpec": "_launch",
    "detect": "_launch",
    "launch": "_launch",
    "prepare_launch": "_launch",
    "SEARCH_FUNCTIONS": "_overrides",
    "coerce_value": "_overrides",
    "parse_assignment": "_overrides",
    "parse_flag_value": "_overrides",
    "parse_literal": "_overrides",
    "resolve_overrides": "_overrides",
    "unknown_flag_error": "_overrides",
    "stop_run": "_stop",
}

# What the layers above use; a test pins it (tests/unit/test_public_names.py).
__all__ = [
    "DETECT_TIMEOUT",
    "DETECT_TIMEOUT_ENV",
    "SEARCH_FUNCTIONS",
    "Flag",
    "FlagSet",
    "FlagValue",
    "LaunchResult",
    "LaunchSpec",
    "coerce_value",
    "detect",
    "launch",
    "parse_assignment",
    "parse_flag_value",
    "parse_literal",
    "prepare_launch",
    "resolve_overrides",
    "stop_run",
    "unknown_flag_error",
]


__getattr__, __dir__ = lazy_names(__name__, globals(), _EXPORTS)
