"""Validation and flattening of what users log: keys, params, summary values, metric values.

Params keep their types (int, float, bool, str, None, lists); nested dicts, argparse
Namespaces and dataclasses flatten to dotted keys (``optimizer.lr``). Anything that cannot be
stored faithfully is refused with a one-line error naming the key, never stringified.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from labkeep.errors import InvalidInputError, NotFoundError

MAX_KEY_LENGTH = 250
#: Steps are signed 64-bit integers in the journal and in every database.
MIN_INT64 = -(2**63)
MAX_INT64 = 2**63 - 1
#: Run numbers, pids and exit codes are 32-bit integers in PostgreSQL's schema.
MIN_INT32 = -(2**31)
MAX_INT32 = 2**31 - 1
#: Past any count of runs, points or lines; ``limit + offset + 1`` stays inside 64 bits.
MAX_COUNT = 2**61
#: Ints in params past this many bits could not be read back (Python parses at most 4300
#: digits of an int from JSON); they are refused when logged.
MAX_INT_BITS = 14_000


def page_bound(value: object, name: str) -> int:
    """A ``limit`` or ``offset`` as the store takes it: a whole number from 0, and one past
    any count of runs (``10**30``) is the same as ``MAX_COUNT``.

    >>> page_bound(10**30, "offset") == MAX_COUNT, page_bound(5, "limit")
    (True, 5)
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise InvalidInputError(f"{name} must be a whole number from 0, not {value!r}")
    return min(int(value), MAX_COUNT)


def run_number(text: str) -> int | None:
    """The run number ``text`` spells (ASCII digits within 32 bits), else None: a longer
    number or another script's digits (``²``, ``٣``) names no run, so it is looked up as a
    name instead of overflowing the database's integers.

    >>> run_number("12"), run_number("9" * 30), run_number("²")
    (12, None, None)
    """
    if text.isascii() and text.isdigit() and len(text) <= 10:  # 2**31 has 10 digits
        number = int(text)
        if number <= MAX_INT32:
            return number
    return None


def run_ref(ref: object) -> str:
    """A run reference (number, name, uuid prefix, ``last``) as the text to look up.

    Text no store can hold (NUL, lone surrogates) is refused, and an int past 64 bits names
    no run, rather than either failing deep in a database driver.
    """
    if isinstance(ref, int) and not isinstance(ref, bool) and ref.bit_length() > 63:
        raise NotFoundError(f"no run {short_repr(ref)}: run numbers are below 2**63")
    text = str(ref).strip()
    if "\x00" in text:
        raise InvalidInputError(
            f"run {text[:40]!r} contains a NUL character: give a number, a name, a uuid prefix "
            "or 'last'"
        )
    check_encodable(text, "run")
    return text


def check_key(key: object, what: str = "key") -> str:
    if not isinstance(key, str):
        raise InvalidInputError(f"{what} {short_repr(key)} is a {type(key).__name__}: use a string")
    if not key or key.isspace():
        raise InvalidInputError(f"empty {what}: give every value a non-empty name")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInputError(
            f"{what} {key[:40]!r}… is {len(key)} characters long: keep it under {MAX_KEY_LENGTH + 1}"
        )
    if "\x00" in key:
        raise InvalidInputError(f"{what} {key!r} contains a NUL character: remove it")
    check_encodable(key, what)
    return key


def check_keys(keys: list[Any], what: str = "key") -> None:
    """:func:`check_key` for many keys at once (a wide run's first ``log()`` defines tens of
    thousands): a few passes over all of them together, and a key at a time only to say
    which one is bad."""
    if keys and set(map(type, keys)) == {str}:
        joined = "\0".join(keys)
        if (
            joined.count("\0") == len(keys) - 1
            and max(map(len, keys)) <= MAX_KEY_LENGTH
            and all(map(str.strip, keys))  # neither empty nor only spaces
        ):
            try:
                joined.encode()
            except UnicodeEncodeError:
                pass
            else:
                return
    for key in keys:
        check_key(key, what)


def check_registry_name(name: object, what: str) -> str:
    """A registered model's or a named artifact's name: a key without ``/``, ``@`` or ``:``,
    which URIs (``models:/NAME@ALIAS``, ``NAME:v1``) use as separators, and no outer space."""
    text = check_key(name, what)
    bad = [c for c in "/@:" if c in text]
    if bad or text != text.strip():
        why = f"contains {bad[0]!r}" if bad else "starts or ends with a space"
        raise InvalidInputError(
            f"{what} {text!r} {why}: use letters, digits, '-', '_' or '.' (like 'iris-clf')"
        )
    return text


#: Version references every registry and artifact answers, never an alias's name.
RESERVED_ALIASES = ("latest",)


def check_alias(alias: object, what: str = "alias") -> str:
    """An alias (``production``): a registry name that is not ``latest`` nor a version
    (``3``, ``v3``), which it would hide."""
    text = check_registry_name(alias, what)
    if text in RESERVED_ALIASES or text.isdigit() or (text[:1] == "v" and text[1:].isdigit()):
        raise InvalidInputError(
            f"{what} {text!r} would read as a version: choose a word like 'production'"
        )
    return text


def version_ref(ref: object, what: str) -> int | str:
    """A version reference as a number (``3``, ``"3"``, ``"v3"``) or a word (``"latest"``,
    an alias)."""
    if isinstance(ref, bool) or not isinstance(ref, int | str):
        raise InvalidInputError(
            f"{what} {short_repr(ref)} is not a version: use 3, 'v3' or 'latest'"
        )
    if isinstance(ref, int):
        return ref
    text = ref.strip()
    if text.isdigit():
        return int(text)
    if text[:1] == "v" and text[1:].isdigit():
        return int(text[1:])
    return check_registry_name(text, what)


def check_tags_map(tags: object, what: str) -> dict[str, str]:
    """Key → value tags of the registry (MLflow's): string keys and string values."""
    if not isinstance(tags, Mapping):
        raise InvalidInputError(f"{what} must be a mapping of names to strings")
    return {check_key(k, f"{what} key"): check_text(v, f"{what} value") for k, v in tags.items()}


def check_encodable(text: str, what: str) -> None:
    """Refuse lone surrogates (``"\\ud800"``): no database can store them as UTF-8 text."""
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        raise InvalidInputError(
            f"{what} {text[:40]!r} holds a lone surrogate ({text[exc.start]!r}), which is not "
            "text: decode it properly or drop it"
        ) from None


def check_text(text: object, what: str) -> str:
    """Free text (notes): any string without NUL, which PostgreSQL cannot store."""
    if not isinstance(text, str):
        raise InvalidInputError(f"{what} must be a string, not a {type(text).__name__}")
    if "\x00" in text:
        raise InvalidInputError(f"{what} contain a NUL character: remove it")
    check_encodable(text, what)
    return text


def as_mapping(config: object) -> Mapping[str, Any]:
    """A dict, an argparse Namespace, a dataclass instance or anything with ``__dict__``."""
    if config is None:
        return {}
    if isinstance(config, Mapping):
        return config
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    if hasattr(config, "__dict__") and not isinstance(config, type):
        return {k: v for k, v in vars(config).items() if not k.startswith("_")}
    raise InvalidInputError(
        f"config of type {type(config).__name__} is not a dict, argparse Namespace or dataclass: "
        "pass one of those"
    )


def flatten(config: object, prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings/Namespaces/dataclasses to dotted keys with checked values.

    >>> flatten({"optimizer": {"lr": 0.1, "name": "adam"}, "epochs": 3})
    {'optimizer.lr': 0.1, 'optimizer.name': 'adam', 'epochs': 3}
    """
    out: dict[str, Any] = {}
    for raw_key, value in as_mapping(config).items():
        key = prefix + str(raw_key) if prefix else check_key(raw_key, "param key")
        if _is_nested(value):
            nested = flatten(value, key + ".")
            out.update(nested) if nested else out.update({check_key(key, "param key"): {}})
            continue
        out[check_key(key, "param key")] = check_value(key, value)
    return out


def _is_nested(value: object) -> bool:
    return (
        isinstance(value, Mapping)
        or (dataclasses.is_dataclass(value) and not isinstance(value, type))
        or type(value).__name__ == "Namespace"
    )


def check_value(key: str, value: Any) -> Any:
    """A param or summary value in its storable form (numpy scalars become Python ones)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        check_encodable(value, f"value of {key!r}:")
        return value
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise InvalidInputError(
                f"value of {key!r} is an int of {value.bit_length():,} bits, more than can be "
                "read back: log it as a string or a float"
            )
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if hasattr(value, "item") and hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0:
        return check_value(key, value.item())
    if isinstance(value, list | tuple):
        return [check_value(key, v) for v in value]
    if hasattr(value, "tolist") and hasattr(value, "dtype"):
        return check_value(key, value.tolist())
    if isinstance(value, Mapping):
        checked = {}
        for k, v in value.items():
            name = str(k)
            check_encodable(name, f"a key in {key!r}:")
            checked[name] = check_value(f"{key}.{name}", v)
        return checked
    if type(value).__module__ == "pathlib" or type(value).__name__.endswith("Path"):
        return str(value)
    raise InvalidInputError(
        f"value of {key!r} is a {type(value).__name__}, which cannot be stored: "
        "log an int, float, bool, str, None or a list of those"
    )


def check_metric(key: str, value: Any) -> float:
    """A metric value as float; NaN and ±inf are kept."""
    if isinstance(value, float):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            return check_metric(key, value.item())
        raise InvalidInputError(
            f"metric {key!r} got {type(value).__name__} {short_repr(value)}: "
            "log a number (int or float); put text in run.summary or run.config"
        )
    try:
        return float(value)
    except OverflowError:
        raise InvalidInputError(
            f"metric {key!r} got {short_repr(value)}, beyond the largest float (1.8e308): "
            "log a smaller number, or float('inf')"
        ) from None


def short_repr(value: object) -> str:
    """A short ``repr`` for a message, even of an int too long to print."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an int of {value.bit_length():,} bits"
    try:
        text = repr(value)
    except Exception:  # a user's object whose repr fails still gets a message
        return f"a {type(value).__name__}"
    return text if len(text) <= 40 else text[:37] + "..."


def encode_value(value: Any) -> tuple[str, float | None, str | None, str]:
    """(vtype, num, text, json) columns for a typed value."""
    exact = json.dumps(value, allow_nan=True, ensure_ascii=False)
    if value is None:
        return "null", None, None, exact
    if isinstance(value, bool):
        return "bool", float(value), None, exact
    if isinstance(value, int):
        num = float(value) if abs(value) < 2**63 else None
        return "int", num, None, exact
    if isinstance(value, float):
        return "float", None if math.isnan(value) else value, None, exact
    if isinstance(value, str):
        # The text column only serves comparisons (PostgreSQL text cannot hold NUL);
        # ``exact`` keeps the value as logged.
        return "str", None, value.replace("\x00", ""), exact
    if isinstance(value, list):
        return "list", None, None, exact
    return "dict", None, None, exact


def decode_value(exact: str) -> Any:
    return json.loads(exact)


class _Missing:
    """The value of a key a run does not have (see :func:`differing_keys`)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def differing_keys(columns: Mapping[str, Sequence[Any]]) -> list[str]:
    """The keys whose values are not all the same across runs: the params ``labkeep
    compare`` and the UI's compare page show. Values are compared by their JSON form (so
    ``1`` and ``1.0`` differ, ``[1, 2]`` equals ``[1, 2]``); :data:`MISSING`, a run without
    the key, differs from every value.

    >>> differing_keys({"lr": [0.1, 0.2], "seed": [1, 1], "bs": [32, MISSING]})
    ['lr', 'bs']
    """
    return [key for key, values in columns.items() if len({_identity(v) for v in values}) > 1]


def _identity(value: Any) -> str:
    if value is MISSING:
        return "\0missing"
    return json.dumps(value, sort_keys=True)
