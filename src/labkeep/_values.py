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
from collections.abc import Mapping
from typing import Any

from labkeep.errors import InvalidInputError

MAX_KEY_LENGTH = 250
MAX_TAG_LENGTH = 250


def check_key(key: object, what: str = "key") -> str:
    if not isinstance(key, str):
        raise InvalidInputError(f"{what} {key!r} is a {type(key).__name__}: use a string")
    if not key or key.isspace():
        raise InvalidInputError(f"empty {what}: give every value a non-empty name")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInputError(
            f"{what} {key[:40]!r}… is {len(key)} characters long: keep it under {MAX_KEY_LENGTH + 1}"
        )
    if "\x00" in key:
        raise InvalidInputError(f"{what} {key!r} contains a NUL character: remove it")
    return key


def check_text(text: object, what: str) -> str:
    """Free text (notes): any string without NUL, which PostgreSQL cannot store."""
    if not isinstance(text, str):
        raise InvalidInputError(f"{what} must be a string, not a {type(text).__name__}")
    if "\x00" in text:
        raise InvalidInputError(f"{what} contain a NUL character: remove it")
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
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
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
        return {str(k): check_value(f"{key}.{k}", v) for k, v in value.items()}
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
            f"metric {key!r} got {type(value).__name__} {_short(value)}: "
            "log a number (int or float); put text in run.summary or run.config"
        )
    return float(value)


def _short(value: object) -> str:
    text = repr(value)
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
