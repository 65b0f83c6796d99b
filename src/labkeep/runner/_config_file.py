"""Config-file flags: the keys of a YAML or JSON config passed as ``--config FILE``.

Nested keys are flattened with dots (``optimizer.lr``); a run gets its own copy of the file
with the overrides applied, in the original's format, so the user's file is never modified.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from labkeep.errors import InvalidInputError
from labkeep.runner._flag import Flag, FlagValue, type_of

CONFIG_SUFFIXES = (".json", ".yaml", ".yml")


def is_config_path(path: Path) -> bool:
    return path.suffix.lower() in CONFIG_SUFFIXES


def read_config(path: Path) -> dict[str, Any]:
    """The config's top-level mapping; raises ``InvalidInputError`` for anything else."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(f"cannot read config {path}: {exc.strerror}") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidInputError(f"config {path} is not valid JSON: {exc}") from None
    else:
        yaml = _yaml(path)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            problem = " ".join(str(exc).split())
            raise InvalidInputError(f"config {path} is not valid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidInputError(f"config {path} must hold a mapping of keys to values")
    return data


def _yaml(path: Path) -> Any:
    try:
        import yaml
    except ImportError:
        raise InvalidInputError(
            f"reading {path.name} needs PyYAML: pip install pyyaml, or use a JSON config"
        ) from None
    return yaml


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, FlagValue]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists and scalars are leaves."""
    flat: dict[str, FlagValue] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        elif value is None or isinstance(value, bool | int | float | str | list):
            flat[name] = value
        else:
            flat[name] = str(value)  # YAML dates and the like: kept as their text
    return flat


def config_flags(path: Path) -> list[Flag]:
    """One ``config`` flag per flattened key of the config at ``path``."""
    return [
        Flag(name=name, kind="config", type=type_of(value), default=value)
        for name, value in flatten(read_config(path)).items()
    ]


def write_config_copy(source: Path, dest: Path, values: Mapping[str, FlagValue]) -> Path:
    """Write ``source`` with dotted-key ``values`` applied to ``dest``, in the same format."""
    data = read_config(source)
    for dotted, value in values.items():
        node = data
        parts = dotted.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    dest.parent.mkdir(parents=True, exist_ok=True)
    if source.suffix.lower() == ".json":
        dest.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    else:
        dest.write_text(
            _yaml(source).safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8"
        )
    return dest
