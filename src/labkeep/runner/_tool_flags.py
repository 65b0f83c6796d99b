"""Flags read from the config a script hands to W&B: ``wandb.init(config={...})``.

The keys of a dict literal passed as ``config=`` (or of a dict literal first assigned at module
level to the name passed there) are flags of kind ``wandb``: ``labkeep run main.py lr=0.1``
sends the value to the child through ``LABKEEP_BRIDGE_CONFIG``, and the W&B bridge merges it
into the config before W&B sees it, so ``wandb.config.lr`` returns 0.1. Only literal values
count; nothing of the script runs.
"""

from __future__ import annotations

import ast

from labkeep.runner._bootstrap import first_assignments
from labkeep.runner._flag import Flag, FlagValue, type_of


def wandb_config_flags(tree: ast.Module) -> list[Flag]:
    """One flag per literal key of the dict given to ``wandb.init(config=...)``."""
    aliases = {"wandb"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases.update(a.asname for a in node.names if a.name == "wandb" and a.asname)
    flags: list[Flag] = []
    seen: set[str] = set()
    firsts = first_assignments(tree)
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "init"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in aliases
        ):
            continue
        config = next((k.value for k in node.keywords if k.arg == "config"), None)
        if isinstance(config, ast.Name):
            stmt = firsts.get(config.id)
            config = stmt.value if stmt is not None else None
        if not isinstance(config, ast.Dict):
            continue
        for key_node, value_node in zip(config.keys, config.values, strict=True):
            if not (isinstance(key_node, ast.Constant) and isinstance(key_node.value, str)):
                continue
            try:
                value = ast.literal_eval(value_node)
            except (ValueError, SyntaxError, TypeError):
                continue
            if isinstance(value, tuple):
                value = list(value)
            if not _is_flag_value(value) or key_node.value in seen:
                continue
            seen.add(key_node.value)
            default: FlagValue = value
            flags.append(
                Flag(
                    name=key_node.value,
                    kind="wandb",
                    type=type_of(default),
                    default=default,
                    line=key_node.lineno,
                )
            )
    return flags


def _is_flag_value(value: object) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    return isinstance(value, list) and all(_is_flag_value(v) for v in value)
