"""How flag values reach an unmodified script: its command line, its globals, a config copy.

argparse and click flags become options (``--lr=0.01``; ``--flag`` for a true ``store_true``),
globals travel as JSON to :mod:`labkeep.runner._bootstrap`, which rewrites their first assignment
in memory, and config keys go into a per-run copy of the config passed as ``--config COPY``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from labkeep.runner._bootstrap import (
    ENV_ARGS,
    ENV_BRIDGE_CONFIG,
    ENV_FLAGS,
    ENV_MODULE,
    ENV_SCRIPT,
)
from labkeep.runner._config_file import write_config_copy
from labkeep.runner._flag import Flag, FlagSet, FlagValue
from labkeep.runner._overrides import unknown_flag_error

BOOTSTRAP_MODULE = "labkeep.runner._bootstrap"


def build_command(
    script: Path,
    flags: FlagSet,
    values: Mapping[str, FlagValue],
    extra_args: Sequence[str] = (),
    *,
    python: str | None = None,
    config_dir: Path | None = None,
    module: str | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The child's argv and the environment variables to add for running ``script``.

    ``values`` are the flags to set, by flag name (what :func:`resolve_overrides` returns; pass
    defaults too to make them explicit). ``extra_args`` go to the script untouched, after the
    flag options. Config-key values need ``config_dir``, where the run's copy of the config is
    written. With ``module``, the child runs that module like ``python -m`` (``script`` is then
    only used in messages). The child is ``python -u -m labkeep.runner._bootstrap``, unbuffered
    so that output arrives as it is printed.

    >>> argv, env = build_command(Path("train.py"), flags, {"lr": 0.1})  # doctest: +SKIP
    >>> subprocess.run(argv, env={**os.environ, **env})  # doctest: +SKIP
    """
    if flags.interface == "notebook":
        raise ValueError(
            "notebooks do not run through build_command; use write_notebook_with_overrides"
        )
    globals_: dict[str, FlagValue] = {}
    config_values: dict[str, FlagValue] = {}
    tool_values: dict[str, FlagValue] = {}
    sacred_updates: list[str] = []
    args: list[str] = []
    config_base = flags.config_file
    for name, value in values.items():
        flag = flags.find(name)
        if flag is None:
            raise unknown_flag_error(flags, name)
        if flag.kind == "global":
            globals_[flag.name] = value
        elif flag.kind == "config":
            config_values[flag.name] = value
        elif flag.kind == "wandb":
            tool_values[flag.name] = value
        elif flag.kind == "sacred":
            sacred_updates.append(f"{flag.name}={value!r}")  # Python literals
        elif flag.option is not None and flag.option == flags.config_option and flags.config_file:
            # The config file itself was chosen: the copy starts from that file instead.
            config_base = Path(str(value)) if value is not None else config_base
        else:
            args += flag_args(flag, value)
    if config_base is not None and flags.config_option is not None:
        if config_values:
            if config_dir is None:
                raise ValueError("config_dir is needed to write the run's copy of the config")
            copy = write_config_copy(config_base, config_dir / config_base.name, config_values)
            args += [flags.config_option, str(copy)]
        elif config_base != flags.config_file or not flags.config_is_default:
            args += [flags.config_option, str(config_base)]
    if sacred_updates:  # Sacred's own command line: ``script.py with C=0.5``
        args += ["with", *sacred_updates]
    env = {ENV_ARGS: json.dumps([*args, *extra_args])}
    if module is not None:
        env[ENV_MODULE] = module
    else:
        env[ENV_SCRIPT] = str(script)
    if globals_:
        env[ENV_FLAGS] = json.dumps(globals_)
    if tool_values:
        env[ENV_BRIDGE_CONFIG] = json.dumps(tool_values)
    return [python or sys.executable, "-u", "-m", BOOTSTRAP_MODULE], env


def flag_args(flag: Flag, value: FlagValue) -> list[str]:
    """Command-line arguments that give an argparse/click ``flag`` the ``value``.

    ``None`` gives nothing (the script's default applies); a false ``store_true`` flag is left
    out and a true one is the bare option; a two-way boolean uses ``--x`` / ``--no-x``.
    """
    option = flag.option
    if option is None:
        raise ValueError(f"flag '{flag.name}' has no command-line option")
    if value is None:
        return []
    if flag.action == "store_true":
        return [option] if value else []
    if flag.action == "store_false":
        return [] if value else [option]
    if flag.action == "boolean_optional":
        if value:
            return [option]
        return [flag.negative_option] if flag.negative_option else []
    if flag.action == "count":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"flag '{flag.name}' counts: its value must be an int")
        return [option] * value
    items = value if isinstance(value, list) else [value]
    if flag.action == "append":
        return [arg for item in items for arg in _option_value(option, item)]
    if flag.type == "list":
        return [option, *(format_arg(item) for item in items)]
    return _option_value(option, value)


def _option_value(option: str, value: FlagValue) -> list[str]:
    # ``--lr=-1`` keeps a negative number from reading as an option; short options cannot.
    if option.startswith("--"):
        return [f"{option}={format_arg(value)}"]
    return [option, format_arg(value)]


def format_arg(value: FlagValue) -> str:
    """A value as one command-line argument: ``0.1`` -> ``"0.1"``, ``[1, 2]`` -> ``"[1, 2]"``."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return json.dumps(value)
    return repr(value)
