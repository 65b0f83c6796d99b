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

TYPE_CHECKING = False
if TYPE_CHECKING:
    from labkeep.runner._bootstrap import ENV_ARGS, ENV_FLAGS, ENV_MODULE, ENV_SCRIPT
    from labkeep.runner._console_log import ConsoleLine, ConsoleLog
    from labkeep.runner._detect import DETECT_TIMEOUT, cache_path, detect_flags
    from labkeep.runner._flag import Flag, FlagKind, FlagSet, FlagType, FlagValue
    from labkeep.runner._inject import build_command, flag_args
    from labkeep.runner._launch import (
        LaunchResult,
        LaunchSpec,
        PreparedLaunch,
        detect,
        launch,
        prepare_launch,
    )
    from labkeep.runner._notebook_flags import write_notebook_with_overrides
    from labkeep.runner._overrides import (
        coerce_value,
        is_search_space,
        parse_assignment,
        parse_flag_value,
        parse_raw_args,
        resolve_overrides,
    )
    from labkeep.runner._scalars import OutputScalarParser, ScalarPoint
    from labkeep.runner._stop import StopResult, stop_run

_EXPORTS = {
    "ENV_ARGS": "_bootstrap",
    "ENV_FLAGS": "_bootstrap",
    "ENV_MODULE": "_bootstrap",
    "ENV_SCRIPT": "_bootstrap",
    "ConsoleLine": "_console_log",
    "ConsoleLog": "_console_log",
    "DETECT_TIMEOUT": "_detect",
    "cache_path": "_detect",
    "detect_flags": "_detect",
    "Flag": "_flag",
    "FlagKind": "_flag",
    "FlagSet": "_flag",
    "FlagType": "_flag",
    "FlagValue": "_flag",
    "build_command": "_inject",
    "flag_args": "_inject",
    "write_notebook_with_overrides": "_notebook_flags",
    "coerce_value": "_overrides",
    "is_search_space": "_overrides",
    "parse_assignment": "_overrides",
    "parse_flag_value": "_overrides",
    "parse_raw_args": "_overrides",
    "resolve_overrides": "_overrides",
    "OutputScalarParser": "_scalars",
    "ScalarPoint": "_scalars",
    "LaunchResult": "_launch",
    "LaunchSpec": "_launch",
    "PreparedLaunch": "_launch",
    "detect": "_launch",
    "launch": "_launch",
    "prepare_launch": "_launch",
    "StopResult": "_stop",
    "stop_run": "_stop",
}

__all__ = [
    "DETECT_TIMEOUT",
    "ENV_ARGS",
    "ENV_FLAGS",
    "ENV_MODULE",
    "ENV_SCRIPT",
    "ConsoleLine",
    "ConsoleLog",
    "Flag",
    "FlagKind",
    "FlagSet",
    "FlagType",
    "FlagValue",
    "LaunchResult",
    "LaunchSpec",
    "OutputScalarParser",
    "PreparedLaunch",
    "ScalarPoint",
    "StopResult",
    "build_command",
    "cache_path",
    "coerce_value",
    "detect",
    "detect_flags",
    "flag_args",
    "is_search_space",
    "launch",
    "parse_assignment",
    "parse_flag_value",
    "parse_raw_args",
    "prepare_launch",
    "resolve_overrides",
    "stop_run",
    "write_notebook_with_overrides",
]


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'labkeep.runner' has no attribute '{name}'")
    import importlib

    value = getattr(importlib.import_module(f"labkeep.runner.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
