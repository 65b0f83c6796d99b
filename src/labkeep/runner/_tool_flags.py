"""Flags read from the config a script hands to W&B or Sacred; nothing of the script runs.

W&B: the keys of a dict literal passed as ``wandb.init(config=...)`` (or of a dict literal first
assigned at module level to the name passed there) are flags of kind ``wandb``: ``labkeep run
main.py lr=0.1`` sends the value to the child through ``LABKEEP_BRIDGE_CONFIG``, and the W&B
bridge merges it into the config before W&B sees it, so ``wandb.config.lr`` returns 0.1.

Sacred: the literal assignments of an ``@ex.config`` scope are flags of kind ``sacred``, set
the way Sacred's own command line does: ``with C=0.5`` after the script's arguments.
Only literal values count.
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


def sacred_config_flags(tree: ast.Module) -> list[Flag]:
    """One flag per literal assignment in a function decorated ``@<experiment>.config``."""
    experiments = {
        target.id
        for stmt in tree.body
        if isinstance(stmt, ast.Assign)
        and isinstance(stmt.value, ast.Call)
        and _called_name(stmt.value.func) in ("Experiment", "sacred.Experiment")
        for target in stmt.targets
        if isinstance(target, ast.Name)
    }
    flags: list[Flag] = []
    seen: set[str] = set()
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or not any(
            _called_name(d) in {f"{e}.config" for e in experiments} for d in node.decorator_list
        ):
            continue
        for stmt in node.body:
            if not (
                isinstance(stmt, ast.Assign)
                and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)
            ):
                continue
            name = stmt.targets[0].id
            try:
                value = ast.literal_eval(stmt.value)
            except (ValueError, SyntaxError, TypeError):
                continue
            if isinstance(value, tuple):
                value = list(value)
            if name.startswith("_") or name in seen or not _is_flag_value(value):
                continue
            seen.add(name)
            default: FlagValue = value
            flags.append(
                Flag(name=name, kind="sacred", type=type_of(default), default=default,
                     line=stmt.lineno)
            )  # fmt: skip
    return flags


def _called_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _called_name(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _is_flag_value(value: object) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    return isinstance(value, list) and all(_is_flag_value(v) for v in value)
