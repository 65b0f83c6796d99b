"""``name=value`` overrides from the command line, checked and coerced against detected flags."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn, cast

from labkeep.errors import InvalidInputError
from labkeep.runner._flag import Flag, FlagSet, FlagType, FlagValue, type_of

if TYPE_CHECKING:
    import argparse

_TRUE = frozenset({"true", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "no", "n", "off", "0"})

#: Distributions and ranges that sweeps understand, written ``name[args]``.
SEARCH_FUNCTIONS = frozenset(
    {"uniform", "loguniform", "intuniform", "randint", "normal", "lognormal", "choice",
     "range", "linspace", "logspace", "grid"}
)  # fmt: skip
_FUNCTION_SPACE = re.compile(r"^\s*([A-Za-z_]\w*)\s*\[.*\]\s*$")
_SLICE_SPACE = re.compile(r"^\s*\[[^\[\]:,]*:[^\[\]]*\]\s*$")

_EXPECTED: dict[FlagType, str] = {
    "int": "an int",
    "float": "a number",
    "bool": "true or false",
    "str": "a string",
    "list": "a list like [1, 2]",
    "none": "a value",
}


def parse_assignment(text: str) -> tuple[str, str]:
    """Split ``"lr=0.01"`` into ``("lr", "0.01")``."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise InvalidInputError(f"expected NAME=VALUE, got '{text}'; script arguments go after --")
    return name, raw


def is_search_space(raw: str) -> bool:
    """Whether ``raw`` is sweep syntax: ``loguniform[1e-4:1e-1]``, ``[0:10]``, ``choice[a,b]``.

    Text that merely looks alike (``train[:80%]``) is not, unless its name is a distribution.
    """
    function = _FUNCTION_SPACE.match(raw)
    if function is not None:
        return function.group(1).lower() in SEARCH_FUNCTIONS
    return _SLICE_SPACE.match(raw) is not None


def parse_literal(raw: str) -> FlagValue:
    """``raw`` as a Python literal (tuples become lists), or the text itself when it is none.

    >>> parse_literal("1e-3"), parse_literal("[1, 2]"), parse_literal("adam")
    (0.001, [1, 2], 'adam')
    """
    text = raw.strip()
    if not text:
        return raw
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return raw
    return _plain(value, raw)


def _plain(value: object, raw: str) -> FlagValue:
    try:
        return _plain_value(value)
    except TypeError:
        return raw  # dicts, sets, bytes, complex numbers: not flag values, keep the text


def _plain_value(value: object) -> FlagValue:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain_value(v) for v in value]
    raise TypeError(type(value).__name__)


def resolve_overrides(flags: FlagSet, assignments: Iterable[str]) -> dict[str, FlagValue]:
    """Check ``["lr=0.01", "epochs=5"]`` against ``flags``: ``{"lr": 0.01, "epochs": 5}``.

    Each value is read as a Python literal (else as plain text) and coerced to its flag's type.
    Raises ``InvalidInputError`` for an unknown flag (suggesting a close name), a value that does
    not fit, a flag given twice, or a search space (sweeps are another command).

    >>> resolve_overrides(flags, ["lr=1e-3", "epochs=5"])  # doctest: +SKIP
    {'lr': 0.001, 'epochs': 5}
    """
    values: dict[str, FlagValue] = {}
    for text in assignments:
        name, raw = parse_assignment(text)
        flag = flags.find(name)
        if flag is None:
            raise unknown_flag_error(flags, name)
        if flag.name in values:
            raise InvalidInputError(f"flag '{flag.name}' is set twice; give it once")
        values[flag.name] = parse_flag_value(flag, raw, flags.source.name)
    return values


def unknown_flag_error(flags: FlagSet, name: str) -> InvalidInputError:
    """The error for a name that is no flag of ``flags``, with a close match when there is one."""
    import difflib

    script = flags.source.name
    valid = flags.names()
    if not valid and flags.deferred is not None:
        return InvalidInputError(
            f"unknown flag '{name}' for {script}: its parser is built at run time "
            f"({flags.deferred}), so its flags are known once it has run; "
            f"run it once with `labkeep run {script}`"
        )
    if not valid:
        return InvalidInputError(
            f"unknown flag '{name}' for {script}: it has no flags; pass its own arguments after --"
        )
    spellings = {flag.name: flag.name for flag in flags}
    for flag in flags:
        for alias in flag.aliases:
            spellings.setdefault(alias, flag.name)
    close = difflib.get_close_matches(name, list(spellings), n=1)
    listed = ", ".join(valid)
    if close:
        return InvalidInputError(
            f"unknown flag '{name}' for {script}: did you mean '{close[0]}'? valid flags: {listed}"
        )
    return InvalidInputError(f"unknown flag '{name}' for {script}; valid flags: {listed}")


def parse_flag_value(flag: Flag, raw: str, script: str = "") -> FlagValue:
    """The value of ``raw`` (as typed after ``name=``) for ``flag``, coerced to its type."""
    where = f" of {script}" if script else ""
    if flag.type != "list":
        if is_search_space(raw):
            raise InvalidInputError(
                f"'{raw}' for flag '{flag.name}'{where} is a search space; sweeps are not "
                "supported by this command, give a single value (quote it to pass it as text)"
            )
        value = parse_literal(raw)
        if isinstance(value, list):
            raise InvalidInputError(
                f"'{raw}' for flag '{flag.name}'{where} is a list of values; sweeps are not "
                "supported by this command, give a single value"
            )
    else:
        value = parse_literal(raw)
        stripped = raw.strip()
        if isinstance(value, str) and stripped.startswith("[") and stripped.endswith("]"):
            # ``[adam, sgd]``: a list of bare words, each read on its own.
            inner = stripped[1:-1]
            value = [parse_literal(item.strip()) for item in inner.split(",")] if inner else []
    try:
        return coerce_value(flag, value, raw)
    except ValueError:
        expected = _EXPECTED[flag.type]
        if flag.choices is not None:
            expected = "one of " + ", ".join(str(c) for c in flag.choices)
        raise InvalidInputError(
            f"bad value '{raw}' for flag '{flag.name}'{where}: expected {expected}"
        ) from None


def coerce_value(flag: Flag, value: FlagValue, raw: str | None = None) -> FlagValue:
    """``value`` converted to ``flag``'s type; ``ValueError`` when it does not fit.

    ``raw`` is the text the value came from: a ``str`` flag keeps exactly what was typed
    (``name=0.10`` stays ``"0.10"``).
    """
    if value is None and (flag.default is None or flag.type == "none"):
        return None
    if flag.type == "list":
        items: list[FlagValue] = list(value) if isinstance(value, list) else [value]
        if flag.item_type is not None:
            item_type = flag.item_type
            items = [_coerce(item_type, item, None) for item in items]
        else:
            items = [_like_default_items(flag.default, item) for item in items]
        _check_choices(flag, items)
        return items
    coerced = _coerce(flag.type, value, raw)
    _check_choices(flag, [coerced])
    return coerced


def _like_default_items(default: FlagValue, item: FlagValue) -> FlagValue:
    """An item of a list whose items have no declared type, checked against the default's.

    ``[64, 32]`` takes numbers (``[0.5, 1]`` too), ``["a"]`` takes strings; a mixed or empty
    default takes anything.
    """
    kinds = {type_of(v) for v in default} if isinstance(default, list) else set()
    if len(kinds) != 1:
        return item
    kind = kinds.pop()
    if kind in ("int", "float"):
        if isinstance(item, int | float) and not isinstance(item, bool):
            return item
        return _coerce("float", item, None)
    if kind in ("str", "bool"):
        return _coerce(kind, item, None)
    return item


def _check_choices(flag: Flag, values: list[FlagValue]) -> None:
    if flag.choices is not None and any(v not in flag.choices for v in values):
        raise ValueError("not one of the choices")


def _coerce(type_: FlagType, value: FlagValue, raw: str | None) -> FlagValue:
    if type_ == "none":
        return value
    if type_ == "str":
        if isinstance(value, str):
            return value
        if raw is not None:
            return raw
        if isinstance(value, list):
            raise ValueError("a list is no string")
        return str(value)
    if type_ == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int | str) and str(value).strip().lower() in _TRUE | _FALSE:
            return str(value).strip().lower() in _TRUE
        raise ValueError("not a boolean")
    if isinstance(value, bool | list) or value is None:
        raise ValueError("not a number")
    if type_ == "int":
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            return int(value.strip())
        raise ValueError("not an int")
    if type_ == "float":
        return float(value)
    raise ValueError(f"unknown flag type {type_}")


class RawArgs(NamedTuple):
    """A script's own arguments (given after ``--``) read with its detected parser.

    ``values`` are the flags they set, typed like ``name=value`` overrides; ``rest`` is what
    no flag took (positional arguments, unknown options), in order; ``spelled`` is how each
    flag was written (``--lr 0.2``), for messages.
    """

    values: dict[str, FlagValue]
    rest: list[str]
    spelled: dict[str, str]


def parse_raw_args(flags: FlagSet, args: Sequence[str]) -> RawArgs:
    """Read ``args`` the way the script's argparse/click parser will, from its detected flags.

    Only the flags' options are known (the parser itself is never rebuilt from the script),
    so the arguments no option takes are kept in ``rest`` for the script to read itself.
    Raises ``InvalidInputError`` for an option without its value or a value of the wrong type.

    >>> parse_raw_args(flags, ["--epochs", "1", "data.csv"])  # doctest: +SKIP
    RawArgs(values={'epochs': 1}, rest=['data.csv'], spelled={'epochs': '--epochs 1'})
    """
    args = list(args)
    tail: list[str] = []
    if "--" in args:  # what follows is positional for the script's parser too
        cut = args.index("--")
        args, tail = args[:cut], args[cut:]
    options = [f for f in flags if f.kind in ("argparse", "click") and f.option is not None]
    if flags.interface not in ("argparse", "click") or not options or not args:
        return RawArgs({}, args + tail, {})
    parser = _raw_parser(flags, options)
    namespace, rest = parser.parse_known_args(args)
    values: dict[str, FlagValue] = {}
    spelled: dict[str, str] = {}
    script = flags.source.name
    for index, flag in enumerate(options):
        if not hasattr(namespace, f"f{index}"):
            continue
        got = getattr(namespace, f"f{index}")
        if isinstance(got, list):
            texts = [t for item in got for t in (item if isinstance(item, list) else [item])]
        else:
            texts = [] if isinstance(got, bool | int) else [str(got)]
        spelled[flag.name] = " ".join([str(flag.option), *texts])
        values[flag.name] = _raw_value(flag, got, texts, script)
    return RawArgs(values, rest + tail, spelled)


def _raw_parser(flags: FlagSet, options: list[Flag]) -> argparse.ArgumentParser:
    import argparse

    class _Parser(argparse.ArgumentParser):
        def error(self, message: str) -> NoReturn:
            raise InvalidInputError(
                f"cannot read the arguments after -- for {flags.source.name}: {message}"
            )

    # click takes no abbreviations of long options; argparse does by default.
    parser = _Parser(add_help=False, allow_abbrev=flags.interface == "argparse")
    for index, flag in enumerate(options):
        assert flag.option is not None
        spellings = list(flag.options) or [flag.option]
        dest = f"f{index}"
        common: dict[str, Any] = {"dest": dest, "default": argparse.SUPPRESS}
        if flag.action == "store_true":
            parser.add_argument(*spellings, action="store_const", const=True, **common)
        elif flag.action == "store_false":
            parser.add_argument(*spellings, action="store_const", const=False, **common)
        elif flag.action == "boolean_optional":
            parser.add_argument(*spellings, action="store_const", const=True, **common)
            if flag.negative_option:
                parser.add_argument(
                    flag.negative_option, action="store_const", const=False, **common
                )
        elif flag.action == "count":
            parser.add_argument(*spellings, action="count", **common)
        elif flag.action == "append":
            parser.add_argument(*spellings, action="append", **common)
        elif flag.type == "list":
            parser.add_argument(*spellings, nargs="+", **common)
        else:
            parser.add_argument(*spellings, **common)
    return parser


def _raw_value(flag: Flag, got: object, texts: list[str], script: str) -> FlagValue:
    if flag.action in ("store_true", "store_false", "boolean_optional", "count"):
        return cast(FlagValue, got)
    if flag.type != "list":
        return parse_flag_value(flag, texts[-1], script)
    if flag.item_type == "str":
        items: list[FlagValue] = list(texts)
    else:
        items = [parse_literal(text) for text in texts]
    try:
        return coerce_value(flag, items)
    except ValueError:
        raise InvalidInputError(
            f"bad value '{' '.join(texts)}' for flag '{flag.name}' of {script}: "
            f"expected {_EXPECTED[flag.item_type or 'none']} each"
        ) from None
