"""Flags: the model, globals/config/notebook detection, overrides and command building."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import pytest

import labkeep.runner as runner
from labkeep.errors import InvalidInputError
from labkeep.runner import Flag, FlagSet, coerce_value, parse_assignment, resolve_overrides
from labkeep.runner._bootstrap import ENV_ARGS, ENV_FLAGS, ENV_MODULE, ENV_SCRIPT
from labkeep.runner._detect import detect_flags
from labkeep.runner._inject import build_command, flag_args
from labkeep.runner._notebook_flags import write_notebook_with_overrides
from labkeep.runner._overrides import is_search_space, parse_raw_args


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_every_public_name_is_exported() -> None:
    for name in runner.__all__:
        assert getattr(runner, name) is not None, name
    with pytest.raises(AttributeError):
        runner.no_such_name  # noqa: B018


# --- globals -------------------------------------------------------------------------------


def test_globals_are_module_level_literals(tmp_path: Path) -> None:
    script = write(
        tmp_path / "train.py",
        """
        import os
        lr = 0.01  # learning rate
        epochs = 5
        noise = -0.5
        offset = +2
        name = "mnist"
        use_gpu = False
        layers = [64, -32]
        opt = None
        sizes: list = [1, 2]
        _private = 3
        path = os.getcwd()
        path = "later"
        epochs = 99
        a, b = 1, 2
        shape = (1, 2)
        def main():
            inner = 1
        if __name__ == "__main__":
            hidden = 4
        """,
    )
    flags = detect_flags(script)
    assert flags.interface == "globals"
    assert [(f.name, f.type, f.default) for f in flags] == [
        ("lr", "float", 0.01),
        ("epochs", "int", 5),
        ("noise", "float", -0.5),
        ("offset", "int", 2),
        ("name", "str", "mnist"),
        ("use_gpu", "bool", False),
        ("layers", "list", [64, -32]),
        ("opt", "none", None),
        ("sizes", "list", [1, 2]),
    ]
    lr = flags.find("lr")
    assert lr is not None
    assert (lr.kind, lr.help, lr.line) == ("global", "learning rate", 3)
    assert flags.defaults()["epochs"] == 5


def test_script_with_syntax_error_is_a_user_error(tmp_path: Path) -> None:
    script = write(tmp_path / "bad.py", "x = (\n")
    with pytest.raises(InvalidInputError, match=r"cannot parse bad.py line 1"):
        detect_flags(script)


def test_missing_script_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="cannot read"):
        detect_flags(tmp_path / "nope.py")


def test_flag_set_round_trips_through_json(tmp_path: Path) -> None:
    flags = FlagSet(
        source=tmp_path / "t.py",
        interface="argparse",
        flags=(
            Flag("lr", "argparse", "float", 0.1, help="rate", option="--lr"),
            Flag("mode", "argparse", "str", "a", choices=("a", "b"), option="--mode"),
            Flag("fast", "argparse", "bool", False, option="--fast", action="store_true"),
            Flag(
                "tags", "argparse", "list", None, option="--tag", action="append", item_type="str"
            ),
            Flag("rate-x", "argparse", "int", 1, option="--rate-x", aliases=("rx",), required=True),
        ),
        config_file=tmp_path / "c.yaml",
        config_option="--config",
        warnings=("w",),
    )
    again = FlagSet.from_dict(json.loads(json.dumps(flags.to_dict())))
    assert again == flags
    assert again.find("rx") is again.flags[4]
    with pytest.raises(ValueError, match="malformed"):
        Flag.from_dict({"name": "x", "kind": "nope", "type": "int"})


# --- overrides -----------------------------------------------------------------------------


def flag_set(*flags: Flag) -> FlagSet:
    return FlagSet(source=Path("train.py"), interface="globals", flags=flags)


FLAGS = flag_set(
    Flag("lr", "global", "float", 0.01),
    Flag("epochs", "global", "int", 5),
    Flag("noise", "global", "float", 0.0),
    Flag("name", "global", "str", "mnist"),
    Flag("debug", "global", "bool", False),
    Flag("layers", "global", "list", [64]),
    Flag("extra", "global", "none", None),
)


def test_parse_assignment() -> None:
    assert parse_assignment("lr=0.01") == ("lr", "0.01")
    assert parse_assignment("expr=a=b") == ("expr", "a=b")
    with pytest.raises(InvalidInputError, match="expected NAME=VALUE"):
        parse_assignment("lr")


def test_values_are_literals_coerced_to_the_flag_type() -> None:
    values = resolve_overrides(
        FLAGS,
        ["lr=1", "epochs=10", "noise=-1e-3", "name=0.10", "debug=yes", "layers=[1, 2]"],
    )
    assert values == {
        "lr": 1.0,
        "epochs": 10,
        "noise": -0.001,
        "name": "0.10",
        "debug": True,
        "layers": [1, 2],
    }
    assert isinstance(values["lr"], float)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("debug=true", True),
        ("debug=False", False),
        ("debug=1", True),
        ("debug=0", False),
        ("debug=no", False),
        ("debug=ON", True),
    ],
)
def test_bool_spellings(text: str, expected: bool) -> None:
    assert resolve_overrides(FLAGS, [text]) == {"debug": expected}


def test_quoted_strings_and_str_to_int() -> None:
    assert resolve_overrides(FLAGS, ["name='a b'", "epochs='7'"]) == {"name": "a b", "epochs": 7}


def test_none_default_accepts_anything() -> None:
    assert resolve_overrides(FLAGS, ["extra=3"]) == {"extra": 3}
    assert resolve_overrides(FLAGS, ["extra=adam"]) == {"extra": "adam"}
    assert resolve_overrides(FLAGS, ["extra=None"]) == {"extra": None}


def test_list_flags() -> None:
    assert resolve_overrides(FLAGS, ["layers=(1,2)"]) == {"layers": [1, 2]}
    assert resolve_overrides(FLAGS, ["layers=8"]) == {"layers": [8]}
    assert resolve_overrides(FLAGS, ["layers=[]"]) == {"layers": []}
    assert resolve_overrides(FLAGS, ["layers=[0.5, 1]"]) == {"layers": [0.5, 1]}
    typed = flag_set(Flag("opts", "argparse", "list", None, item_type="int", option="--opts"))
    assert resolve_overrides(typed, ["opts=['1', 2]"]) == {"opts": [1, 2]}
    words = flag_set(Flag("tags", "click", "list", None, item_type="str", option="--tag"))
    assert resolve_overrides(words, ["tags=[a, b c]"]) == {"tags": ["a", "b c"]}


def test_float_flag_accepts_nan_and_inf() -> None:
    values = resolve_overrides(FLAGS, ["lr=nan", "noise=-inf"])
    assert math.isnan(values["lr"])  # type: ignore[arg-type]
    assert values["noise"] == -math.inf


def test_unknown_flag_suggests_a_close_match_and_lists_valid_flags() -> None:
    flags = flag_set(
        Flag("lr", "global", "float", 0.1),
        Flag("epochs", "global", "int", 1),
        Flag("noise", "global", "float", 0.0),
    )
    with pytest.raises(InvalidInputError) as err:
        resolve_overrides(flags, ["lrr=0.1"])
    assert str(err.value) == (
        "unknown flag 'lrr' for train.py: did you mean 'lr'? valid flags: epochs, lr, noise"
    )
    with pytest.raises(InvalidInputError) as err:
        resolve_overrides(flags, ["zzz=1"])
    assert str(err.value) == "unknown flag 'zzz' for train.py; valid flags: epochs, lr, noise"
    with pytest.raises(InvalidInputError, match="it has no flags"):
        resolve_overrides(flag_set(), ["x=1"])


def test_aliases_resolve_to_the_flag_name() -> None:
    flags = flag_set(
        Flag(
            "learning_rate",
            "argparse",
            "float",
            0.1,
            option="--learning-rate",
            aliases=("learning-rate",),
        ),
    )
    assert resolve_overrides(flags, ["learning-rate=0.2"]) == {"learning_rate": 0.2}
    with pytest.raises(InvalidInputError, match="set twice"):
        resolve_overrides(flags, ["learning-rate=0.2", "learning_rate=0.3"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("epochs=0.5", "bad value '0.5' for flag 'epochs' of train.py: expected an int"),
        ("epochs=abc", "expected an int"),
        ("epochs=True", "expected an int"),
        ("lr=fast", "expected a number"),
        ("debug=maybe", "expected true or false"),
        ("layers={'a': 1}", "expected a list"),
    ],
)
def test_bad_values_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as err:
        resolve_overrides(FLAGS, [text])
    assert "\n" not in str(err.value)


def test_choices_are_enforced() -> None:
    flags = flag_set(
        Flag("opt", "argparse", "str", "adam", choices=("sgd", "adam"), option="--opt")
    )
    assert resolve_overrides(flags, ["opt=sgd"]) == {"opt": "sgd"}
    with pytest.raises(InvalidInputError, match="expected one of sgd, adam"):
        resolve_overrides(flags, ["opt=rmsprop"])


@pytest.mark.parametrize("raw", ["loguniform[1e-4:1e-1]", "[0.1,0.2]", "[1:10]", "uniform[0:1]"])
def test_search_spaces_are_refused_for_single_value_flags(raw: str) -> None:
    with pytest.raises(InvalidInputError, match="sweeps are not supported by this command"):
        resolve_overrides(FLAGS, [f"lr={raw}"])


def test_is_search_space() -> None:
    assert is_search_space("loguniform[1e-4:1e-1]")
    assert is_search_space("[0:10]")
    assert is_search_space("choice[a,b]")
    assert not is_search_space("[1, 2]")
    assert not is_search_space("0.1")
    assert not is_search_space("train[:80%]")


def test_text_that_looks_like_a_space_is_fine_for_str_flags() -> None:
    assert resolve_overrides(FLAGS, ["name=train[:80%]"]) == {"name": "train[:80%]"}
    assert resolve_overrides(FLAGS, ["name='uniform[0:1]'"]) == {"name": "uniform[0:1]"}


def test_coerce_value_for_typed_flag_with_none_default() -> None:
    flag = Flag("decay", "argparse", "float", None, option="--decay")
    assert coerce_value(flag, 1) == 1.0
    assert coerce_value(flag, None) is None


# --- command-line arguments ----------------------------------------------------------------


def test_flag_args_per_action() -> None:
    store = Flag("lr", "argparse", "float", 0.1, option="--lr")
    short = Flag("n", "argparse", "int", 1, option="-n")
    true = Flag("fast", "argparse", "bool", False, option="--fast", action="store_true")
    false = Flag("shuffle", "argparse", "bool", True, option="--no-shuffle", action="store_false")
    both = Flag(
        "aug",
        "click",
        "bool",
        True,
        option="--aug",
        negative_option="--no-aug",
        action="boolean_optional",
    )
    count = Flag("verbose", "argparse", "int", 0, option="--verbose", action="count")
    append = Flag("tag", "click", "list", None, option="--tag", action="append")
    nargs = Flag("layers", "argparse", "list", [1], option="--layers")
    assert flag_args(store, -0.5) == ["--lr=-0.5"]
    assert flag_args(store, None) == []
    assert flag_args(short, -3) == ["-n", "-3"]
    assert (flag_args(true, True), flag_args(true, False)) == (["--fast"], [])
    assert (flag_args(false, False), flag_args(false, True)) == (["--no-shuffle"], [])
    assert (flag_args(both, True), flag_args(both, False)) == (["--aug"], ["--no-aug"])
    assert flag_args(count, 2) == ["--verbose", "--verbose"]
    assert flag_args(append, ["a", "b"]) == ["--tag=a", "--tag=b"]
    assert flag_args(nargs, [1, -2]) == ["--layers", "1", "-2"]


def test_raw_arguments_are_read_with_the_flags_options(tmp_path: Path) -> None:
    flags = FlagSet(
        source=tmp_path / "train.py",
        interface="argparse",
        flags=(
            Flag("epochs", "argparse", "int", 14, option="--epochs", options=("-e", "--epochs")),
            Flag("fast", "argparse", "bool", False, option="--fast", action="store_true"),
            Flag(
                "aug",
                "argparse",
                "bool",
                True,
                option="--aug",
                negative_option="--no-aug",
                action="boolean_optional",
            ),
            Flag("verbose", "argparse", "int", 0, option="-v", action="count"),
            Flag("layers", "argparse", "list", [1], option="--layers", item_type="int"),
            Flag("tag", "argparse", "list", None, option="--tag", action="append"),
            Flag("name", "argparse", "str", "a", option="--name"),
        ),
    )
    raw = parse_raw_args(
        flags,
        ["data.csv", "-e", "3", "--fast", "--no-aug", "-vv", "--layers", "4", "5", "--tag=x",
         "--tag", "y", "--other", "1", "--name", "007", "--", "--epochs", "9"],
    )  # fmt: skip
    assert raw.values == {
        "epochs": 3,
        "fast": True,
        "aug": False,
        "verbose": 2,
        "layers": [4, 5],
        "tag": ["x", "y"],
        "name": "007",
    }
    assert raw.rest == ["data.csv", "--other", "1", "--", "--epochs", "9"]
    assert raw.spelled["epochs"] == "--epochs 3"
    # argparse takes an abbreviation of a long option; click does not.
    assert parse_raw_args(flags, ["--epo", "2"]).values == {"epochs": 2}
    clicked = FlagSet(flags.source, "click", flags.flags)
    assert parse_raw_args(clicked, ["--epo", "2"]).rest == ["--epo", "2"]
    with pytest.raises(InvalidInputError, match="bad value 'many' for flag 'epochs'"):
        parse_raw_args(flags, ["--epochs", "many"])
    with pytest.raises(InvalidInputError, match="expected one argument"):
        parse_raw_args(flags, ["--epochs"])
    # A script without a parser reads its arguments itself.
    plain = FlagSet(flags.source, "globals", (Flag("lr", "global", "float", 0.1),))
    assert parse_raw_args(plain, ["--lr", "2"]) == ({}, ["--lr", "2"], {})


def test_build_command_splits_values_by_kind(tmp_path: Path) -> None:
    flags = FlagSet(
        source=tmp_path / "train.py",
        interface="argparse",
        flags=(
            Flag("lr", "argparse", "float", 0.1, option="--lr"),
            Flag("fast", "argparse", "bool", False, option="--fast", action="store_true"),
            Flag("seed", "global", "int", 0),
        ),
    )
    argv, env = build_command(
        tmp_path / "train.py",
        flags,
        {"lr": 0.2, "fast": True, "seed": 7},
        ["data.csv"],
        python="/usr/bin/python3",
    )
    assert argv == ["/usr/bin/python3", "-u", "-m", "labkeep.runner._bootstrap"]
    assert env[ENV_SCRIPT] == str(tmp_path / "train.py")
    assert json.loads(env[ENV_ARGS]) == ["--lr=0.2", "--fast", "data.csv"]
    assert json.loads(env[ENV_FLAGS]) == {"seed": 7}
    _, env = build_command(tmp_path / "m.py", flags, {}, module="pkg.mod")
    assert env[ENV_MODULE] == "pkg.mod" and ENV_SCRIPT not in env and ENV_FLAGS not in env
    with pytest.raises(InvalidInputError, match="unknown flag 'lrr'"):
        build_command(tmp_path / "train.py", flags, {"lrr": 1})


def test_build_command_writes_a_config_copy(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model": {"depth": 2, "act": "relu"}, "lr": 0.1}))
    script = write(tmp_path / "train.py", "x = 1\n")
    flags = detect_flags(script, config=config)
    assert flags.config_file == config and not flags.config_is_default
    assert [(f.name, f.kind, f.default) for f in flags if f.kind == "config"] == [
        ("model.depth", "config", 2),
        ("model.act", "config", "relu"),
        ("lr", "config", 0.1),
    ]
    values = resolve_overrides(flags, ["model.depth=4", "x=2"])
    run_dir = tmp_path / "run"
    _, env = build_command(script, flags, values, config_dir=run_dir)
    assert json.loads(env[ENV_ARGS]) == ["--config", str(run_dir / "config.json")]
    assert json.loads((run_dir / "config.json").read_text()) == {
        "model": {"depth": 4, "act": "relu"},
        "lr": 0.1,
    }
    assert json.loads(config.read_text())["model"]["depth"] == 2
    # An explicit config with nothing overridden is still passed to the script.
    _, env = build_command(script, flags, {"x": 3})
    assert json.loads(env[ENV_ARGS]) == ["--config", str(config)]
    with pytest.raises(ValueError, match="config_dir"):
        build_command(script, flags, values)


def test_yaml_config_copy_keeps_the_format(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    config = write(tmp_path / "c.yaml", "optimizer:\n  lr: 0.1\n  name: adam\nepochs: 3\n")
    script = write(tmp_path / "train.py", "")
    flags = detect_flags(script, config=config)
    assert flags.defaults() == {"optimizer.lr": 0.1, "optimizer.name": "adam", "epochs": 3}
    values = resolve_overrides(flags, ["optimizer.lr=0.5", "epochs=4"])
    build_command(script, flags, values, config_dir=tmp_path / "out")
    assert yaml.safe_load((tmp_path / "out" / "c.yaml").read_text()) == {
        "optimizer": {"lr": 0.5, "name": "adam"},
        "epochs": 4,
    }


def test_bad_config_files_are_user_errors(tmp_path: Path) -> None:
    script = write(tmp_path / "train.py", "")
    bad = write(tmp_path / "c.json", "{nope")
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        detect_flags(script, config=bad)
    listing = write(tmp_path / "l.json", "[1, 2]")
    with pytest.raises(InvalidInputError, match="must hold a mapping"):
        detect_flags(script, config=listing)
    text = write(tmp_path / "c.txt", "a=1")
    with pytest.raises(InvalidInputError, match=r"must be a \.json, \.yaml or \.yml file"):
        detect_flags(script, config=text)


# --- notebooks -----------------------------------------------------------------------------


def notebook(*cells: tuple[str, list[str]], minor: int = 5) -> str:
    return json.dumps(
        {
            "nbformat": 4,
            "nbformat_minor": minor,
            "metadata": {},
            "cells": [
                {
                    "cell_type": "code" if not source.startswith("#md") else "markdown",
                    "id": f"c{i}",
                    "metadata": {"tags": tags},
                    "execution_count": None,
                    "outputs": [],
                    "source": source.splitlines(keepends=True),
                }
                for i, (source, tags) in enumerate(cells)
            ],
        }
    )


def test_notebook_parameters_cell_wins(tmp_path: Path) -> None:
    nb = tmp_path / "train.ipynb"
    nb.write_text(
        notebook(
            ("%matplotlib inline\nimport math\nseed = 1\n", []),
            ("x = -1.0  # input\nn = 3\n", ["parameters"]),
            ("y = 2\n", []),
        )
    )
    flags = detect_flags(nb)
    assert flags.interface == "notebook"
    assert [(f.name, f.default, f.kind) for f in flags] == [
        ("x", -1.0, "global"),
        ("n", 3, "global"),
    ]
    assert flags.find("x").help == "input"  # type: ignore[union-attr]


def test_notebook_without_parameters_cell_uses_all_code_cells(tmp_path: Path) -> None:
    nb = tmp_path / "train.ipynb"
    nb.write_text(
        notebook(
            ("#md a title\nz = 1\n", []),
            ("!pip list\nx = -1.0\ndata = load()\n", []),
            ("%%bash\necho hi\n", []),
            ("x = 5\ndata = 3\nrate = 0.5\n", []),
        )
    )
    flags = detect_flags(nb)
    assert [(f.name, f.default) for f in flags] == [("x", -1.0), ("rate", 0.5)]


def test_notebook_copy_injects_a_parameters_cell(tmp_path: Path) -> None:
    nb = tmp_path / "train.ipynb"
    nb.write_text(notebook(("x = 1\n", ["parameters"]), ("print(x)\n", [])))
    out = write_notebook_with_overrides(nb, tmp_path / "run" / "train.ipynb", {"x": -2.5, "s": "a"})
    cells = json.loads(out.read_text())["cells"]
    assert [c["metadata"]["tags"] for c in cells] == [["parameters"], ["injected-parameters"], []]
    assert "".join(cells[1]["source"]).endswith("x = -2.5\ns = 'a'")
    assert "id" in cells[1]
    assert json.loads(nb.read_text())["cells"][0]["source"] == ["x = 1\n"]


def test_notebook_copy_rewrites_first_assignments(tmp_path: Path) -> None:
    nb = tmp_path / "train.ipynb"
    nb.write_text(
        notebook(
            ("%time\nname = 'é'; x = [1,\n  2]  # keep\n", []),
            ("x = 9\nrate = 0.5\n", []),
        )
    )
    out = write_notebook_with_overrides(
        nb, tmp_path / "out.ipynb", {"x": [3], "rate": float("nan"), "name": "ü"}
    )
    cells = json.loads(out.read_text())["cells"]
    assert "".join(cells[0]["source"]) == "%time\nname = 'ü'; x = [3]  # keep\n"
    assert "".join(cells[1]["source"]) == "x = 9\nrate = float('nan')\n"
    with pytest.raises(InvalidInputError, match="assigns no nope"):
        write_notebook_with_overrides(nb, tmp_path / "o2.ipynb", {"nope": 1})


def test_bad_notebook_is_a_user_error(tmp_path: Path) -> None:
    nb = write(tmp_path / "bad.ipynb", "{not json")
    with pytest.raises(InvalidInputError, match="not a notebook"):
        detect_flags(nb)


def test_unknown_flag_of_a_parser_read_at_run_time_says_so(tmp_path: Path) -> None:
    flags = FlagSet(tmp_path / "t.py", "argparse", deferred="line 4: 'f(x)' is computed")
    with pytest.raises(InvalidInputError, match=r"built at run time \(line 4.*run it once"):
        resolve_overrides(flags, ["lr=1"])
