"""``labkeep run`` argument parsing: what reaches the launch logic."""

from __future__ import annotations

from pathlib import Path

from labkeep.cli._run import run_command, stop_command


def parse(*args: str) -> tuple[dict[str, object], tuple[str, ...]]:
    ctx = run_command.make_context("run", list(args))
    return ctx.params, ctx.meta.get("labkeep.raw_args", ())


def test_assignments_and_options_in_any_order() -> None:
    params, raw = parse(
        "-e", "mnist", "--tag", "try2", "--note", "wider layer", "train.py", "lr=0.1", "--tag", "b"
    )
    assert params["target"] == Path("train.py")
    assert params["assignments"] == ("lr=0.1",)
    assert params["experiment"] == "mnist"
    assert params["tags"] == ("try2", "b")
    assert params["note"] == "wider layer"
    assert raw == ()


def test_everything_after_double_dash_is_raw() -> None:
    params, raw = parse("train.py", "x=1", "--", "--some-raw-arg", "3", "y=2", "--")
    assert params["assignments"] == ("x=1",)
    assert raw == ("--some-raw-arg", "3", "y=2", "--")


def test_flag_options() -> None:
    params, _ = parse(
        "train.py", "--flags", "--seed", "3", "--no-capture", "--no-scalars", "-y", "-q",
        "--scalar-regex", "a", "--scalar-regex", "b", "--input", "d.csv", "--config", "c.yaml",
    )  # fmt: skip
    assert params["show_flags"] is True
    assert params["seed"] == 3
    assert params["no_capture"] and params["no_scalars"] and params["yes"] and params["quiet"]
    assert params["scalar_patterns"] == ("a", "b")
    assert params["inputs"] == ("d.csv",)
    assert params["config"] == Path("c.yaml")


def test_defaults() -> None:
    params, raw = parse("train.py")
    assert params["experiment"] == "default"
    assert params["seed"] is None
    assert not params["show_flags"] and not params["quiet"]
    assert raw == ()


def test_stop_grace() -> None:
    ctx = stop_command.make_context("stop", ["12", "--grace", "2.5"])
    assert ctx.params == {"run": "12", "grace": 2.5}
    assert stop_command.make_context("stop", ["3"]).params["grace"] == 10.0


def test_bridge_options() -> None:
    params, _ = parse("train.py", "--bridge-only")
    assert params["bridge_only"] is True and params["no_bridges"] is False
    params, _ = parse("--no-bridges", "train.py")
    assert params["no_bridges"] is True and params["bridge_only"] is False


def test_autolog_option() -> None:
    params, _ = parse("--autolog", "train.py", "lr=0.1")
    assert params["autolog"] is True
    params, _ = parse("train.py")
    assert params["autolog"] is False
