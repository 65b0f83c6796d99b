"""``name=value`` overrides from the command line, checked and coerced against detected flags."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from labkeep.errors import InvalidInputError
from labkeep.runner._flag import Flag, FlagSet, FlagType, FlagValue, type_of

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
