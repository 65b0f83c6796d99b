"""Search spaces from Guild's flag syntax and from Python, and the sweep's settings checked
before any run exists."""

from __future__ import annotations

from pathlib import Path

import pytest

import labkeep
from labkeep.errors import InvalidInputError
from labkeep.runner._flag import Flag, FlagSet
from labkeep.sweep import parse_opt_flags, plan_sweep, split_assignments
from labkeep.sweep._optimizer import parse_objective
from labkeep.sweep._space import (
    MAX_GRID_POINTS,
    Choice,
    IntRange,
    LogUniform,
    Uniform,
    grid_points,
    parse_space,
)


def _flags() -> FlagSet:
    return FlagSet(
        Path("train.py"),
        "globals",
        (
            Flag("x", "global", "float", 0.0),
            Flag("layers", "global", "int", 2),
            Flag("opt", "global", "str", "adam"),
            Flag("noise", "global", "float", 0.1),
            Flag("sizes", "global", "list", [1, 2], item_type="int"),
        ),
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("[-2.0:2.0]", Uniform(-2.0, 2.0)),
        ("[1:5]", IntRange(1, 5)),
        ("loguniform[1e-5:1e-1]", LogUniform(1e-5, 1e-1)),
        ("uniform[0:1]", Uniform(0.0, 1.0)),
        ("[adam,sgd]", Choice(("adam", "sgd"))),
        ("[0.1, 0.01]", Choice((0.1, 0.01))),
        ("0.1", None),
        ("adam", None),
        ("train[:80%]", None),
    ],
)
def test_guild_syntax(raw: str, expected: object) -> None:
    assert parse_space(raw, None, "x") == expected


def test_an_int_range_on_a_float_flag_draws_floats() -> None:
    split = split_assignments(_flags(), ["x=[1:5]", "layers=[2:8]"])
    assert split.space == {"x": Uniform(1.0, 5.0), "layers": IntRange(2, 8)}


def test_fixed_values_stay_fixed_and_choices_take_the_flag_type() -> None:
    split = split_assignments(_flags(), ["noise=0.3", "x=[1,2]", "sizes=[3,4]"])
    assert split.fixed == ("noise=0.3", "sizes=[3,4]")  # a list flag takes the list itself
    assert split.space == {"x": Choice((1.0, 2.0))}
    assert split.spelled == {"x": "[1,2]"}


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("x=[2:1]", "x=[2:1]: the low end must be below the high end; write x=[1:2]"),
        ("x=loguniform[2:1]", "below the high end; write x=loguniform[1:2]"),
        ("x=[1:1]", "x=[1:1] is a single value; give it as x=1"),
        ("x=loguniform[0:1]", "x=loguniform[0:1]: both ends must be above 0"),
        ("x=normal[0:1]", "x=normal[0:1]: normal[] is not a distribution labkeep searches"),
        ("x=[a:b]", "x=[a:b]: 'a' is not a number"),
        ("layers=[1.5:3]", "layers=[1.5:3]: flag 'layers' takes an int"),
        ("layers=[1,two]", "bad value 'two' for flag 'layers'"),
        ("opt=[1:2]", "flag 'opt' takes str, not a number range"),
        ("y=[1:2]", "unknown flag 'y'"),
    ],
)
def test_bad_spaces_are_one_line_errors(assignment: str, message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        split_assignments(_flags(), [assignment])
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_python_constructors() -> None:
    assert labkeep.uniform(-2, 2) == Uniform(-2.0, 2.0)
    assert labkeep.loguniform(1e-5, 1e-1) == LogUniform(1e-5, 1e-1)
    assert labkeep.intrange(2, 8) == IntRange(2, 8)
    assert labkeep.choice("adam", "sgd") == labkeep.choice(["adam", "sgd"])
    for bad, message in [
        (lambda: labkeep.uniform(2, 1), "the low end must be below the high end"),
        (lambda: labkeep.loguniform(0, 1), "both ends must be above 0"),
        (lambda: labkeep.intrange(1, 2.5), "both ends must be ints"),  # type: ignore[arg-type]
        (lambda: labkeep.choice(), "at least one value"),
        (lambda: labkeep.choice(1, 1), "lists a value twice"),
        (lambda: labkeep.choice({"a": 1}), "is a dict"),  # type: ignore[arg-type]
    ]:
        with pytest.raises(InvalidInputError, match=message):
            bad()


def test_grid_points_vary_the_last_flag_fastest() -> None:
    space = {"lr": Choice((0.1, 0.01)), "opt": Choice(("adam", "sgd"))}
    assert list(grid_points(space)) == [
        {"lr": 0.1, "opt": "adam"},
        {"lr": 0.1, "opt": "sgd"},
        {"lr": 0.01, "opt": "adam"},
        {"lr": 0.01, "opt": "sgd"},
    ]


def _plan(space: dict[str, object], **kwargs: object) -> object:
    settings: dict[str, object] = {
        "target": "train.py",
        "cwd": Path.cwd(),
        "spelled": {k: "?" for k in space},
        "minimize": "loss",
        "maximize": None,
        "optimizer": None,
        "max_trials": None,
    }
    settings.update(kwargs)
    return plan_sweep(space=space, **settings)  # type: ignore[arg-type]


def test_grid_is_the_default_for_lists_and_random_for_ranges() -> None:
    grid = _plan({"lr": Choice((0.1, 0.01)), "opt": Choice(("adam", "sgd", "rms"))})
    assert (grid.optimizer, grid.max_trials) == ("grid", 6)  # type: ignore[attr-defined]
    capped = _plan({"lr": Choice((0.1, 0.01, 0.001))}, max_trials=2)
    assert capped.max_trials == 2  # type: ignore[attr-defined]
    ranged = _plan({"x": Uniform(-2.0, 2.0)})
    assert (ranged.optimizer, ranged.max_trials) == ("random", 20)  # type: ignore[attr-defined]


def test_several_objectives_make_a_multi_objective_spec() -> None:
    spec = _plan({"x": Uniform(0, 1)}, minimize=["loss", "time"], maximize="acc")
    assert spec.objectives == [["loss", "minimize"], ["time", "minimize"], ["acc", "maximize"]]
    assert spec.multi_objective and (spec.objective, spec.direction) == ("loss", "minimize")
    assert [o.direction for o in spec.objective_specs()] == ["minimize", "minimize", "maximize"]
    assert not _plan({"x": Uniform(0, 1)}).multi_objective


def test_the_pareto_front_keeps_the_points_nothing_beats() -> None:
    from labkeep.sweep._optimizer import pareto_front

    points = [(1.0, 0.5), (2.0, 0.9), (1.5, 0.4), (1.0, 0.5), (3.0, 0.95)]
    assert pareto_front(points, ["minimize", "maximize"]) == [0, 1, 3, 4]
    assert pareto_front(points, ["minimize", "minimize"]) == [0, 2, 3]


@pytest.mark.parametrize(
    ("space", "kwargs", "message"),
    [
        ({"x": Uniform(0, 1)}, {"optimizer": "hyperopt"}, "unknown optimizer 'hyperopt'"),
        ({"x": Uniform(0, 1)}, {"max_trials": 0}, "--max-trials must be at least 1, not 0"),
        ({"x": Uniform(0, 1)}, {"parallel": 0}, "--parallel must be at least 1"),
        ({"x": Uniform(0, 1)}, {"optimizer": "grid"}, "grid search needs a list of values for 'x'"),
        ({"x": Uniform(0, 1)}, {"minimize": None}, "optimizer random needs an objective"),
        ({"x": Uniform(0, 1)}, {"maximize": "loss"}, "an objective metric is named twice"),
        (
            {"x": Uniform(0, 1)},
            {"maximize": "acc", "optimizer": "cmaes"},
            "optimizer cmaes optimizes one objective",
        ),
        (
            {"x": Uniform(0, 1)},
            {"maximize": "acc", "pruner": "median"},
            "--prune needs one objective",
        ),
        (
            {"x": Uniform(0, 1)},
            {"optimizer": "tpe", "opt_flags": {"sed": 1}},
            "optimizer tpe has no option 'sed'",
        ),
        (
            {f"f{i}": Choice(tuple(range(11))) for i in range(4)},
            {},
            f"the grid has 14,641 points (over {MAX_GRID_POINTS:,}); cap it with --max-trials N",
        ),
        ({}, {}, "a sweep needs a searched flag"),
        ({"x": Uniform(0, 1)}, {"pruner": "early"}, "unknown pruner 'early'"),
        (
            {"x": Uniform(0, 1)},
            {"pruner": "median", "minimize": "loss.min"},
            "give --minimize loss, not loss.min",
        ),
        (
            {"x": Choice((1, 2))},
            {"pruner": "asha", "minimize": None},
            "--prune asha needs an objective",
        ),
    ],
)
def test_bad_sweep_settings_are_one_line_errors(
    space: dict[str, object], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        _plan(space, **kwargs)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_big_grid_runs_with_max_trials() -> None:
    space = {f"f{i}": Choice(tuple(range(11))) for i in range(4)}
    assert _plan(space, max_trials=50).max_trials == 50  # type: ignore[attr-defined]


def test_gp_without_pytorch_names_the_extra() -> None:
    pytest.importorskip("optuna")
    try:
        import torch  # noqa: F401
    except ImportError:
        with pytest.raises(InvalidInputError, match=r"needs PyTorch.*pip install 'labkeep\[gp\]'"):
            _plan({"x": Uniform(0, 1)}, optimizer="gp")
    else:
        assert _plan({"x": Uniform(0, 1)}, optimizer="bayesian").optimizer == "gp"  # type: ignore[attr-defined]


def test_objectives_and_optimizer_options() -> None:
    assert parse_objective("loss", "minimize").spelled == "loss"
    objective = parse_objective("loss.min", "minimize")
    assert (objective.key, objective.accessor) == ("loss", "min")
    assert parse_objective("val.acc", "maximize").key == "val.acc"
    assert parse_opt_flags(["seed=1", "n_startup_trials=5", "multivariate=True"]) == {
        "seed": 1,
        "n_startup_trials": 5,
        "multivariate": True,
    }
    with pytest.raises(InvalidInputError, match="KEY=VALUE"):
        parse_opt_flags(["seed"])
