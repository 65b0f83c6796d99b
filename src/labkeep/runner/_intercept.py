"""Child side of flag detection for argparse and click scripts (stdlib only, loaded by path).

:func:`argparse_flags` and :func:`click_flags` describe a parser as flag records: labkeep uses
them on a parser it rebuilt from the source (``_static_flags.py``), and the bootstrap on the
script's live parser through :func:`report_live_parser`, when the source did not say enough:
the script's first parse writes ``parser.json`` (``{"interface", "flags", "args"}``) into the
channel directory, waits for ``labkeep run`` to answer in ``reply.json`` with the arguments to
parse (its ``NAME=VALUE`` flags added: ``{"args": [...]}``) or a refusal (``{"error": "..."}``,
printed, exit status 2), and parses those. Later parses are left alone.

The child loads this file by path and never imports labkeep, so it must not import labkeep.
"""

from __future__ import annotations

import json
import os
import sys
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
            "options": options,
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
                options=positive or options,
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
            "options": options,
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


def report_live_parser(channel: str, modes: list[str]) -> None:
    """Install the hooks of a real run whose flags labkeep could not read from the source."""
    undo: list[tuple[Any, str, Any]] = []

    def first_parse() -> None:
        for owner, name, original in undo:
            setattr(owner, name, original)

    if "argparse" in modes:
        import argparse

        parse_known = argparse.ArgumentParser.parse_known_args

        def live_argparse(
            self: argparse.ArgumentParser, args: Any = None, namespace: Any = None
        ) -> Any:
            first_parse()
            given = list(sys.argv[1:] if args is None else args)
            final = _exchange(channel, "argparse", argparse_flags(self), given)
            return parse_known(self, final, namespace)

        undo.append((argparse.ArgumentParser, "parse_known_args", parse_known))
        argparse.ArgumentParser.parse_known_args = live_argparse  # type: ignore[method-assign]
    if "click" in modes:
        try:
            import click.core
        except ImportError:
            return  # the script fails on its own import, as it would without labkeep
        for name in ("BaseCommand", "Command"):
            cls = getattr(click.core, name, None)
            if cls is None or "main" not in vars(cls):
                continue
            original = vars(cls)["main"]

            def live_click(self: Any, args: Any = None, *rest: Any, _main: Any = original,
                           **options: Any) -> Any:  # fmt: skip
                first_parse()
                given = list(sys.argv[1:] if args is None else args)
                final = _exchange(channel, "click", click_flags(self), given)
                return _main(self, final, *rest, **options)

            undo.append((cls, "main", original))
            cls.main = live_click


def _exchange(channel: str, interface: str, flags: list[dict[str, Any]], args: list[str]) -> Any:
    """Hand the parser to labkeep and wait for the arguments to parse (see the docstring)."""
    import time

    tmp = os.path.join(channel, "parser.json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"interface": interface, "flags": flags, "args": args}, f, default=str)
    os.replace(tmp, os.path.join(channel, "parser.json"))
    reply = os.path.join(channel, "reply.json")
    while not os.path.exists(reply):
        time.sleep(0.005)
    with open(reply, encoding="utf-8") as f:
        answer = json.load(f)
    if "error" in answer:
        sys.stdout.flush()
        sys.stderr.write(f"labkeep: {answer['error']}\n")
        sys.stderr.flush()
        os._exit(2)
    return [str(a) for a in answer["args"]]
