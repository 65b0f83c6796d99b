"""Child side of flag detection for argparse and click scripts (stdlib only, run by path).

``python _intercept.py OUT.json MODES SCRIPT`` runs SCRIPT as ``__main__`` with
``ArgumentParser.parse_known_args`` (``MODES`` has ``argparse``) and click's ``Command.main``
(``MODES`` has ``click``) replaced by a function that writes the parser's options to OUT.json and
ends the process on the spot, before the script's real work starts. Everything the script prints
goes wherever the caller sent it (the parent discards it).

OUT.json holds ``{"status": "ok", "interface": ..., "flags": [...]}`` with flags in
:meth:`labkeep.runner.Flag.to_dict` form, or ``{"status": "not-reached"}`` when the script ended
without parsing its arguments, or ``{"status": "error", "error": "..."}`` when it raised first.

This file is executed by path, never imported by the child, so it must not import labkeep.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import sys
import types
from typing import Any

_LITERALS = (bool, int, float, str, type(None))


def _literal(value: Any) -> Any:
    """``value`` as a flag value (JSON-like), or ``None`` when it is no literal."""
    if isinstance(value, _LITERALS):
        return value
    if isinstance(value, list | tuple):
        items = [_literal(v) for v in value]
        lost = any(i is None and v is not None for i, v in zip(items, value, strict=True))
        return None if lost else items
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return None


def _type_name(value_type: Any, default: Any) -> str:
    if value_type is int:
        return "int"
    if value_type is float:
        return "float"
    if value_type is str:
        return "str"
    if value_type is None and default is not None and isinstance(default, _LITERALS):
        return {bool: "bool", int: "int", float: "float"}.get(type(default), "str")
    return "str"


def _long_option(options: list[str]) -> str:
    longs = [o for o in options if o.startswith("--")]
    return longs[0] if longs else options[0]


def _aliases(name: str, options: list[str]) -> list[str]:
    spelled = [o[2:] for o in options if o.startswith("--") and len(o) > 2]
    return [s for s in dict.fromkeys(spelled) if s != name]


def _choices(values: Any) -> list[Any] | None:
    if values is None:
        return None
    try:
        items = [_literal(getattr(v, "value", v)) for v in values]
    except TypeError:
        return None
    return items if all(i is not None for i in items) else None


def argparse_flags(parser: Any) -> list[dict[str, Any]]:
    """Flag records for an ``argparse.ArgumentParser``'s optional arguments."""
    import argparse

    flags: list[dict[str, Any]] = []
    for action in parser._actions:
        if not action.option_strings or action.dest is argparse.SUPPRESS:
            continue  # positionals and sub-commands are not flags
        if isinstance(action, argparse._HelpAction | argparse._VersionAction):
            continue
        options = list(action.option_strings)
        default = None if action.default is argparse.SUPPRESS else action.default
        record: dict[str, Any] = {
            "name": action.dest,
            "kind": "argparse",
            "option": _long_option(options),
            "aliases": _aliases(action.dest, options),
            "required": bool(action.required),
            "help": _argparse_help(parser, action, default),
        }
        if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
            record["action"] = (
                "store_true" if isinstance(action, argparse._StoreTrueAction) else "store_false"
            )
            record.update(type="bool", default=bool(default))
            if record["action"] == "store_false":
                record["aliases"] = []  # ``no-shuffle=true`` would read backwards
        elif isinstance(action, argparse.BooleanOptionalAction):
            positive = [o for o in options if not o.startswith("--no-")]
            negative = [o for o in options if o.startswith("--no-")]
            record.update(
                action="boolean_optional",
                type="bool",
                default=None if default is None else bool(default),
                option=_long_option(positive or options),
                negative_option=negative[0] if negative else None,
                aliases=_aliases(action.dest, positive),
            )
        elif isinstance(action, argparse._CountAction):
            record.update(action="count", type="int", default=_literal(default) or 0)
        elif isinstance(action, argparse._AppendAction):
            record.update(
                action="append",
                type="list",
                item_type=_type_name(action.type, None),
                default=_literal(list(default)) if default is not None else None,
            )
        elif action.nargs == 0:
            continue  # store_const, append_const and custom switches take no value
        else:
            is_list = action.nargs in ("+", "*", argparse.REMAINDER) or isinstance(
                action.nargs, int
            )
            default = _literal(default)
            if is_list:
                record.update(type="list", item_type=_type_name(action.type, None))
                if default is not None and not isinstance(default, list):
                    default = [default]
            else:
                record["type"] = _type_name(action.type, default)
            record["default"] = default
            record["choices"] = _choices(action.choices)
        flags.append(record)
    return flags


def _argparse_help(parser: Any, action: Any, default: Any) -> str:
    import argparse

    text = action.help
    if not text or text is argparse.SUPPRESS:
        return ""
    params = dict(vars(action), prog=parser.prog, default=default)
    try:
        return str(text % params)
    except (KeyError, TypeError, ValueError):
        return str(text)


def click_flags(command: Any) -> list[dict[str, Any]]:
    """Flag records for a click command's options (arguments are positional: skipped)."""
    import click

    try:
        ctx = click.Context(command, info_name=command.name, resilient_parsing=True)
    except Exception:
        ctx = None
    flags: list[dict[str, Any]] = []
    for param in command.params:
        if not isinstance(param, click.Option) or not param.name:
            continue
        default = _click_default(param, ctx)
        options = list(param.opts)
        record: dict[str, Any] = {
            "name": param.name,
            "kind": "click",
            "option": _long_option(options),
            "aliases": _aliases(param.name, options),
            "required": bool(param.required),
            "help": param.help or "",
        }
        if param.is_flag and not param.count:
            record.update(type="bool", default=bool(default))
            if param.secondary_opts:
                record.update(
                    action="boolean_optional", negative_option=_long_option(param.secondary_opts)
                )
            else:
                flag_value = param.flag_value
                if not isinstance(flag_value, bool):
                    flag_value = not bool(default)
                record["action"] = "store_true" if flag_value else "store_false"
        elif param.count:
            record.update(action="count", type="int", default=_literal(default) or 0)
        else:
            item_type = _click_type(param.type, click)
            many = param.multiple or param.nargs != 1
            if many:
                record.update(type="list", item_type=item_type)
                if param.multiple:
                    record["action"] = "append"
                if default is not None and not isinstance(default, list):
                    default = [default]
            else:
                record["type"] = item_type
            record["default"] = default
            if isinstance(param.type, click.Choice):
                record["choices"] = _choices(param.type.choices)
        flags.append(record)
    return flags


def _click_default(param: Any, ctx: Any) -> Any:
    try:
        value = param.get_default(ctx, call=True) if ctx is not None else param.default
    except Exception:
        value = param.default
    return _literal(getattr(value, "value", value))


def _click_type(param_type: Any, click: Any) -> str:
    if isinstance(param_type, click.types.BoolParamType):
        return "bool"
    if isinstance(param_type, click.types.IntParamType):
        return "int"
    if isinstance(param_type, click.types.FloatParamType):
        return "float"
    return "str"


def _dump_and_exit(out_path: str, payload: dict[str, Any]) -> None:
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(payload, f, default=str)
    sys.stdout.flush()
    os._exit(0)  # no atexit handlers, no finally blocks: the script's work must not start


def _install_argparse_hook(out_path: str) -> None:
    import argparse

    def intercepted(self: argparse.ArgumentParser, *_args: Any, **_kwargs: Any) -> Any:
        _dump_and_exit(
            out_path, {"status": "ok", "interface": "argparse", "flags": argparse_flags(self)}
        )

    argparse.ArgumentParser.parse_known_args = intercepted  # type: ignore[method-assign]
    argparse.ArgumentParser.parse_args = intercepted  # type: ignore[method-assign]


def _install_click_hook(out_path: str) -> None:
    import click.core

    def intercepted(self: Any, *_args: Any, **_kwargs: Any) -> Any:
        _dump_and_exit(out_path, {"status": "ok", "interface": "click", "flags": click_flags(self)})

    for name in ("BaseCommand", "Command"):
        cls = getattr(click.core, name, None)
        if cls is not None and "main" in vars(cls):
            cls.main = intercepted


def main(argv: list[str]) -> None:
    out_path, modes, script = argv[1], argv[2].split(","), argv[3]
    path = os.path.abspath(script)
    sys.argv[:] = [script]
    sys.path[0] = os.path.dirname(os.path.realpath(path))
    if "argparse" in modes:
        _install_argparse_hook(out_path)
    if "click" in modes:
        # Without click the script fails on its own import, and reports that.
        with contextlib.suppress(ImportError):
            _install_click_hook(out_path)
    with open(path, "rb") as f:
        source = f.read()
    module = types.ModuleType("__main__")
    module.__file__ = path
    module.__builtins__ = builtins  # type: ignore[attr-defined]
    sys.modules["__main__"] = module
    try:
        exec(compile(source, path, "exec", dont_inherit=True), module.__dict__)
    except SystemExit:
        pass
    except BaseException as exc:
        _dump_and_exit(out_path, {"status": "error", "error": f"{type(exc).__name__}: {exc}"})
    _dump_and_exit(out_path, {"status": "not-reached"})


if __name__ == "__main__":
    main(sys.argv)
