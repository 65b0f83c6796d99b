"""W&B sweep configurations read into labkeep sweeps; every unsupported key is named."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from labkeep.errors import InvalidInputError
from labkeep.runner._flag import Flag, FlagSet
from labkeep.sweep._space import Choice, IntRange, LogUniform, Uniform
from labkeep.sweep._wandb import _as_grid, parse_wandb


def _flags() -> FlagSet:
    return FlagSet(
        Path("train.py"),
        "argparse",
        (
            Flag("lr", "argparse", "float", 0.01),
            Flag("layers", "argparse", "int", 2),
            Flag("opt", "argparse", "str", "adam"),
            Flag("epochs", "argparse", "int", 1),
            Flag("dropout", "argparse", "float", 0.0),
        ),
    )


def _parse(**data: Any) -> Any:
    return parse_wandb({"program": "train.py", **data}, _flags(), "sweep.yaml")


def test_a_full_config() -> None:
    config = _parse(
        method="bayes",
        name="search",
        description="first try",
        project="mnist",
        metric={"name": "val_loss", "goal": "minimize"},
        run_cap=30,
        command=["${env}", "${interpreter}", "${program}", "${args}"],
        parameters={
            "lr": {"min": 1e-5, "max": 1e-1, "distribution": "log_uniform_values"},
            "layers": {"min": 2, "max": 8},
            "opt": {"values": ["adam", "sgd"]},
            "epochs": {"value": 5},
            "dropout": {"min": 0.0, "max": 0.5, "distribution": "q_uniform", "q": 0.1},
        },
    )
    assert config.optimizer == "gp" and config.run_cap == 30
    assert (config.objective, config.goal) == ("val_loss", "minimize")
    assert (config.name, config.notes, config.experiment) == ("search", "first try", "mnist")
    assert config.space == {
        "lr": LogUniform(1e-5, 1e-1),
        "layers": IntRange(2, 8),
        "opt": Choice(("adam", "sgd")),
        "dropout": Uniform(0.0, 0.5, 0.1),
    }
    assert config.fixed == ["epochs=5"]


def test_early_terminate_is_optunas_hyperband() -> None:
    config = _parse(
        metric={"name": "loss"},
        early_terminate={"type": "hyperband", "min_iter": 3, "eta": 2, "max_iter": 27},
        parameters={"lr": {"values": [0.1, 0.01]}},
    )
    assert config.pruner == "hyperband"
    assert config.pruner_options == {"min_resource": 3, "reduction_factor": 2, "max_resource": 27}


def test_log_uniform_takes_exponents_and_grid_walks_ranges() -> None:
    config = _parse(parameters={"lr": {"min": -9, "max": -2, "distribution": "log_uniform"}})
    assert config.space["lr"] == LogUniform(math.exp(-9), math.exp(-2))
    assert _as_grid("layers", IntRange(2, 4), "s.yaml") == Choice((2, 3, 4))
    assert _as_grid("d", Uniform(0.0, 0.3, 0.1), "s.yaml") == Choice((0.0, 0.1, 0.2, 0.3))
    with pytest.raises(InvalidInputError, match="method grid needs values"):
        _as_grid("lr", Uniform(0.0, 1.0), "s.yaml")


def test_normal_distributions_search_the_quantile() -> None:
    from statistics import NormalDist

    from labkeep.sweep._space import (
        Normal,
        optuna_params,
        space_from_json,
        space_to_json,
        trial_values,
    )

    config = _parse(
        parameters={
            "lr": {"mu": -4.0, "sigma": 0.5, "distribution": "log_normal"},
            "dropout": {"mu": 0.2, "sigma": 0.05, "distribution": "normal"},
            "layers": {"mu": 4, "sigma": 2, "q": 2, "distribution": "q_normal"},
        }
    )
    space = config.space
    assert space == {"lr": Normal(-4.0, 0.5, log=True), "dropout": Normal(0.2, 0.05),
                     "layers": Normal(4.0, 2.0, 2.0)}  # fmt: skip
    assert space_from_json(space_to_json(space)) == space
    drawn = {"lr": 0.5, "dropout": NormalDist().cdf(1.0), "layers": 0.9}
    values = trial_values(space, drawn)
    assert values["lr"] == pytest.approx(math.exp(-4.0))  # the median of the log-normal
    assert values["dropout"] == pytest.approx(0.25)  # one sigma above mu
    assert values["layers"] == 6.0  # 4 + 1.28 * 2 = 6.56, rounded to a multiple of 2
    back = optuna_params(space, values)
    assert back["lr"] == pytest.approx(0.5) and back["dropout"] == pytest.approx(drawn["dropout"])
    # Optuna draws quantiles in (0, 1): a random sampler draws the normal distribution itself.
    dist = space["dropout"].to_optuna()
    assert (dist.low, dist.high) == pytest.approx((0.0, 1.0), abs=1e-5)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"early_terminate": {"type": "hyperband", "s": 2}, "metric": {"name": "loss"}},
         "unsupported key early_terminate.s"),
        ({"early_terminate": {"type": "envelope"}}, "early_terminate takes type: hyperband"),
        ({"early_terminate": {"type": "hyperband"}}, "early_terminate needs a metric"),
        ({"entity": "me"}, "unsupported key 'entity'"),
        ({"method": "bohb"}, "unknown method 'bohb'"),
        ({"command": ["python", "train.py", "--fast"]}, "only W&B's default command"),
        ({"metric": {"name": "loss", "goal": "lowest"}}, "goal is minimize or maximize"),
        ({"parameters": {"lr": {"min": 0, "max": 1, "distribution": "q_log_uniform"}}},
         "distribution 'q_log_uniform' is not supported"),
        ({"parameters": {"lr": {"min": 0, "max": 1.0, "distribution": "normal"}}},
         "a normal takes mu and sigma, not min/max"),
        ({"parameters": {"lr": {"mu": 0, "sigma": 0, "distribution": "normal"}}},
         "sigma and q must be positive"),
        ({"parameters": {"lr": {"mu": 0, "scale": 1, "distribution": "normal"}}},
         "unsupported key 'scale'"),
        ({"parameters": {"lr": {"parameters": {"a": {"value": 1}}}}}, "nested parameters"),
        ({"parameters": {"depth": {"values": [1, 2]}}}, "unknown flag 'depth'"),
        ({"parameters": {"layers": {"values": [1, "two"]}}}, "bad value 'two' for flag 'layers'"),
        ({"parameters": {"lr": {"min": 1.0, "max": 0.1}}}, "the low end must be below"),
        ({"parameters": {"lr": {"min": 0, "max": 1, "distribution": "log_uniform_values"}}},
         "both ends must be above 0"),
        ({"parameters": {}}, "parameters must map each flag"),
        ({"run_cap": "ten"}, "run_cap must be a whole number"),
    ],
)  # fmt: skip
def test_unsupported_or_bad_configs_are_named(data: dict[str, Any], message: str) -> None:
    data = {"parameters": {"lr": {"values": [0.1]}}, **data}
    with pytest.raises(InvalidInputError) as caught:
        _parse(**data)
    assert message in str(caught.value)
    assert str(caught.value).startswith("sweep.yaml") or "flag" in str(caught.value)
    assert "\n" not in str(caught.value)
