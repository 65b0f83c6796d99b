"""Flags read from ``wandb.init(config={...})`` and Sacred config scopes, and how they travel."""

from __future__ import annotations

import ast
import json
import textwrap
from pathlib import Path

from labkeep.runner._bootstrap import ENV_ARGS, ENV_BRIDGE_CONFIG
from labkeep.runner._detect import detect_flags
from labkeep.runner._inject import build_command
from labkeep.runner._tool_flags import sacred_config_flags, wandb_config_flags


def tree(source: str) -> ast.Module:
    return ast.parse(textwrap.dedent(source))


def test_keys_of_a_dict_literal_given_to_wandb_init_are_flags() -> None:
    flags = wandb_config_flags(
        tree("""
        import wandb as wb
        run = wb.init(project="p", config={"lr": 0.1, "epochs": 3, "layers": (1, 2), "f": abs})
        """)
    )
    assert [(f.name, f.kind, f.type, f.default) for f in flags] == [
        ("lr", "wandb", "float", 0.1),
        ("epochs", "wandb", "int", 3),
        ("layers", "wandb", "list", [1, 2]),
    ]


def test_a_dict_assigned_to_the_name_given_to_wandb_init_gives_its_keys() -> None:
    flags = wandb_config_flags(
        tree("""
        import wandb
        config = {"learning_rate": 0.01, "arch": "cnn"}
        def main():
            wandb.init(config=config)
        """)
    )
    assert {f.name: f.default for f in flags} == {"learning_rate": 0.01, "arch": "cnn"}


def test_a_namespace_or_computed_config_gives_no_flags() -> None:
    assert wandb_config_flags(tree("import wandb\nwandb.init(config=args)")) == []
    assert wandb_config_flags(tree("import wandb\nwandb.init(config=dict(a=1))")) == []
    assert wandb_config_flags(tree("import other\nother.init(config={'a': 1})")) == []


def test_sacred_config_scope_assignments_are_flags() -> None:
    flags = sacred_config_flags(
        tree("""
        from sacred import Experiment
        ex = Experiment("iris")

        @ex.config
        def cfg():
            C = 1.0
            kernel = "rbf"
            _private = 1
            derived = C * 2

        @ex.automain
        def run(C): ...
        """)
    )
    assert [(f.name, f.kind, f.default) for f in flags] == [
        ("C", "sacred", 1.0),
        ("kernel", "sacred", "rbf"),
    ]


def test_overrides_reach_the_child_as_bridge_config_and_sacred_with(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent("""
        import wandb
        from sacred import Experiment
        ex = Experiment("x")
        @ex.config
        def cfg():
            C = 1.0
            name = "a"
        wandb.init(config={"lr": 0.1})
        """)
    )
    flags = detect_flags(script)
    assert {f.name: f.kind for f in flags} == {"lr": "wandb", "C": "sacred", "name": "sacred"}
    _argv, env = build_command(script, flags, {"lr": 0.5, "C": 2.0, "name": "b"}, ["-l", "INFO"])
    assert json.loads(env[ENV_BRIDGE_CONFIG]) == {"lr": 0.5}
    assert json.loads(env[ENV_ARGS]) == ["with", "C=2.0", "name='b'", "-l", "INFO"]


def test_a_parser_flag_wins_over_a_wandb_key_of_the_same_name(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent("""
        import argparse, wandb
        parser = argparse.ArgumentParser()
        parser.add_argument("--lr", type=float, default=0.1)
        args = parser.parse_args()
        wandb.init(config={"lr": args.lr, "seed": 1})
        """)
    )
    flags = detect_flags(script)
    assert {f.name: f.kind for f in flags} == {"lr": "argparse", "seed": "wandb"}
