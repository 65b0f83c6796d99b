"""``labkeep sweep sweep.yaml``: a Weights & Biases sweep configuration, run by labkeep.

The keys W&B documents for a sweep map onto a labkeep sweep: ``program`` is the script,
``method`` the optimizer (``grid``, ``random``; ``bayes`` is ``gp``), ``metric`` the objective,
``parameters`` the space (``values``, ``value``, ``min``/``max`` with a ``distribution`` of
``uniform``, ``int_uniform``, ``log_uniform_values``, ``log_uniform``, ``q_uniform``,
``categorical`` or ``constant``; ``normal``, ``q_normal`` and ``log_normal`` with ``mu`` and
``sigma``, searched through the draw's quantile: see :class:`~labkeep.sweep._space.Normal`),
``run_cap`` the number of trials, ``name``/``description``/
``project`` the sweep run's name, notes and experiment. ``command`` may only be W&B's default
(labkeep passes the values as ``labkeep run`` does); ``early_terminate`` of type ``hyperband``
is Optuna's HyperbandPruner (``min_iter``, ``max_iter``, ``eta``). Anything else (nested
parameters, ``q_log_uniform``, ``inv_log_uniform``, hyperband's ``s``) is an error naming it, rather than a
sweep that silently does something else.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkeep.errors import InvalidInputError
from labkeep.sweep._space import (
    Choice,
    Distribution,
    IntRange,
    Normal,
    Uniform,
    choice,
    intrange,
    loguniform,
    uniform,
)

if TYPE_CHECKING:
    from labkeep._client import Client
    from labkeep.runner._flag import Flag, FlagSet
    from labkeep.sweep._spec import SweepSpec

_TOP_KEYS = {"program", "method", "metric", "parameters", "run_cap", "command", "name",
             "description", "project", "early_terminate"}  # fmt: skip
#: W&B's hyperband settings as Optuna's HyperbandPruner names them.
_HYPERBAND = {"min_iter": "min_resource", "max_iter": "max_resource", "eta": "reduction_factor"}
_PARAM_KEYS = {"values", "value", "min", "max", "distribution", "q", "probabilities", "mu",
               "sigma"}  # fmt: skip
_NORMALS = {"normal", "q_normal", "log_normal"}
_METHODS = {"grid": "grid", "random": "random", "bayes": "gp"}
_DEFAULT_COMMAND = {"${env}", "${interpreter}", "${program}", "${args}", "${args_no_hyphens}"}


@dataclass(frozen=True)
class WandbSweep:
    """A W&B sweep configuration, read and checked."""

    program: str
    optimizer: str
    objective: str | None
    goal: str
    space: dict[str, Distribution]
    spelled: dict[str, str]
    fixed: list[str] = field(default_factory=list)
    run_cap: int | None = None
    name: str = ""
    notes: str = ""
    experiment: str = "default"
    pruner: str | None = None
    pruner_options: dict[str, Any] = field(default_factory=dict)


def read_wandb_file(path: Path) -> dict[str, Any]:
    """The mapping in ``path`` (YAML); a missing or malformed file is one line."""
    if not path.is_file():
        raise InvalidInputError(f"no sweep file {path}; check the path")
    try:
        import yaml
    except ImportError:
        raise InvalidInputError("reading a sweep file needs PyYAML: pip install pyyaml") from None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "malformed"
        raise InvalidInputError(f"sweep file {path.name} is not YAML: {first}") from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"sweep file {path.name} must be a mapping with program, ...")
    if not isinstance(data.get("program"), str) or not data["program"].strip():
        raise InvalidInputError(f"sweep file {path.name} names no program: add program: train.py")
    return data


def parse_wandb(data: Mapping[str, Any], flags: FlagSet, shown: str) -> WandbSweep:
    """``data`` (a W&B sweep config) checked against the program's ``flags``."""
    from labkeep.runner._overrides import unknown_flag_error

    for key in data:
        if key not in _TOP_KEYS:
            raise InvalidInputError(
                f"{shown}: unsupported key {key!r}: labkeep reads {', '.join(sorted(_TOP_KEYS))}"
            )
    method = str(data.get("method", "random"))
    if method not in _METHODS:
        raise InvalidInputError(f"{shown}: unknown method {method!r}: use grid, random or bayes")
    command = data.get("command")
    if command is not None and (
        not isinstance(command, list) or not set(map(str, command)) <= _DEFAULT_COMMAND
    ):
        raise InvalidInputError(
            f"{shown}: only W&B's default command (${{env}} ${{interpreter}} ${{program}} "
            "${args}) is supported: labkeep passes the values as labkeep run does; remove it"
        )
    metric = data.get("metric")
    objective, goal = None, "minimize"
    if metric is not None:
        if not isinstance(metric, dict) or not isinstance(metric.get("name"), str):
            raise InvalidInputError(f"{shown}: metric needs a name: {{name: loss, goal: minimize}}")
        objective = metric["name"]
        goal = str(metric.get("goal", "minimize"))
        if goal not in ("minimize", "maximize"):
            raise InvalidInputError(f"{shown}: metric goal is minimize or maximize, not {goal!r}")
        extra = set(metric) - {"name", "goal", "target"}
        if extra:
            raise InvalidInputError(f"{shown}: unsupported key metric.{sorted(extra)[0]}")
    params = data.get("parameters")
    if not isinstance(params, dict) or not params:
        raise InvalidInputError(f"{shown}: parameters must map each flag to its values")
    space: dict[str, Distribution] = {}
    spelled: dict[str, str] = {}
    fixed: list[str] = []
    for name, spec in params.items():
        flag = flags.find(str(name))
        if flag is None and flags.deferred is None:
            raise unknown_flag_error(flags, str(name))
        key = str(name) if flag is None else flag.name
        where = f"{shown}: parameters.{key}"
        if not isinstance(spec, dict):
            raise InvalidInputError(f"{where} must be a mapping such as {{values: [1, 2]}}")
        if "parameters" in spec:
            raise InvalidInputError(f"{where}: nested parameters are not supported; flatten them")
        unknown = set(spec) - _PARAM_KEYS
        if unknown:
            raise InvalidInputError(f"{where}: unsupported key {sorted(unknown)[0]!r}")
        typed = functools.partial(_typed, flag, where)
        dist = _distribution(spec, where, typed)
        if dist is None:
            from labkeep.sweep._spec import _spell_value

            fixed.append(f"{key}={_spell_value(typed(spec['value']))}")
            continue
        space[key] = dist
        spelled[key] = dist.spelled()
    pruner, pruner_options = _early_terminate(data.get("early_terminate"), shown)
    if pruner is not None and objective is None:
        raise InvalidInputError(f"{shown}: early_terminate needs a metric to compare trials by")
    run_cap = data.get("run_cap")
    if run_cap is not None and (not isinstance(run_cap, int) or isinstance(run_cap, bool)):
        raise InvalidInputError(f"{shown}: run_cap must be a whole number, not {run_cap!r}")
    return WandbSweep(
        program=data["program"].strip(),
        optimizer=_METHODS[method],
        objective=objective,
        goal=goal,
        space=space,
        spelled=spelled,
        fixed=fixed,
        run_cap=run_cap,
        name=str(data.get("name", "") or ""),
        notes=str(data.get("description", "") or ""),
        experiment=str(data.get("project", "") or "default"),
        pruner=pruner,
        pruner_options=pruner_options,
    )


def _early_terminate(spec: Any, shown: str) -> tuple[str | None, dict[str, Any]]:
    """W&B's ``early_terminate: {type: hyperband, min_iter: 3, eta: 3}`` as Optuna's
    HyperbandPruner and its arguments."""
    if spec is None:
        return None, {}
    if not isinstance(spec, dict) or spec.get("type") != "hyperband":
        raise InvalidInputError(f"{shown}: early_terminate takes type: hyperband")
    options: dict[str, Any] = {}
    for key, value in spec.items():
        if key == "type":
            continue
        if key not in _HYPERBAND:
            raise InvalidInputError(
                f"{shown}: unsupported key early_terminate.{key}: labkeep reads min_iter, "
                "max_iter and eta"
            )
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"{shown}: early_terminate.{key} must be a whole number")
        options[_HYPERBAND[key]] = value
    return "hyperband", options


def _typed(flag: Flag | None, where: str, value: Any) -> Any:
    """``value`` as the flag's type (a value of an undetected flag stays as it is)."""
    from labkeep.runner._overrides import coerce_value

    if flag is None:
        return value
    try:
        return coerce_value(flag, value)
    except ValueError:
        raise InvalidInputError(
            f"{where}: bad value {value!r} for flag '{flag.name}' (a {flag.type})"
        ) from None


def _distribution(spec: Mapping[str, Any], where: str, typed: Any) -> Distribution | None:
    distribution = spec.get("distribution")
    if "value" in spec or distribution == "constant":
        if "value" not in spec:
            raise InvalidInputError(f"{where}: a constant needs value: ...")
        return None
    if "values" in spec or distribution == "categorical":
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise InvalidInputError(f"{where}: values must be a non-empty list")
        try:
            return choice(*(typed(v) for v in values))
        except InvalidInputError as exc:
            message = str(exc)
            raise InvalidInputError(
                message if message.startswith(where) else f"{where}: {message}"
            ) from None
    if distribution in _NORMALS:
        return _normal(spec, str(distribution), where)
    if "min" not in spec or "max" not in spec:
        raise InvalidInputError(f"{where} needs values, value, or min and max")
    low, high = spec["min"], spec["max"]
    for end in (low, high):
        if isinstance(end, bool) or not isinstance(end, int | float):
            raise InvalidInputError(f"{where}: min and max must be numbers, not {end!r}")
    if distribution is None:
        distribution = (
            "int_uniform" if isinstance(low, int) and isinstance(high, int) else "uniform"
        )
    try:
        if distribution == "int_uniform":
            if not (isinstance(low, int) and isinstance(high, int)):
                raise InvalidInputError("int_uniform needs whole-number min and max")
            return intrange(low, high)
        if distribution == "uniform":
            return uniform(low, high)
        if distribution == "log_uniform_values":
            return loguniform(low, high)
        if distribution == "log_uniform":  # min and max are exponents of e
            return loguniform(math.exp(low), math.exp(high))
        if distribution == "q_uniform":
            q = spec.get("q", 1.0)
            if isinstance(q, bool) or not isinstance(q, int | float) or q <= 0:
                raise InvalidInputError(f"q must be a positive number, not {q!r}")
            base = uniform(low, high)
            return Uniform(base.low, base.high, float(q))
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc}") from None
    raise InvalidInputError(
        f"{where}: distribution {distribution!r} is not supported; use uniform, int_uniform, "
        "log_uniform_values, log_uniform, q_uniform, normal, q_normal, log_normal, "
        "categorical or constant"
    )


def _normal(spec: Mapping[str, Any], distribution: str, where: str) -> Normal:
    """W&B's ``normal`` (``mu`` 0 and ``sigma`` 1 unless given), ``q_normal`` and
    ``log_normal``."""
    numbers = {}
    for key, default in (("mu", 0.0), ("sigma", 1.0), ("q", 1.0)):
        value = spec.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInputError(f"{where}: {key} must be a number, not {value!r}")
        numbers[key] = float(value)
    if numbers["sigma"] <= 0 or numbers["q"] <= 0:
        raise InvalidInputError(f"{where}: sigma and q must be positive")
    if "min" in spec or "max" in spec:
        raise InvalidInputError(f"{where}: a {distribution} takes mu and sigma, not min/max")
    step = numbers["q"] if distribution == "q_normal" else None
    return Normal(numbers["mu"], numbers["sigma"], step, log=distribution == "log_normal")


def plan_wandb_sweep(
    client: Client, path: Path, *, cwd: Path, parallel: int = 1, max_trials: int | None = None
) -> tuple[SweepSpec, WandbSweep]:
    """The sweep ``path`` describes, checked against its program's flags (found as
    ``labkeep run`` finds them), ready for :func:`start_sweep`."""
    from labkeep.runner._launch import LaunchSpec, detect
    from labkeep.sweep._spec import plan_sweep

    data = read_wandb_file(path)
    _program, flags = detect(LaunchSpec(target=Path(data["program"].strip()), cwd=cwd), client)
    config = parse_wandb(data, flags, path.name)
    space = dict(config.space)
    if config.optimizer == "grid":
        space = {k: _as_grid(k, d, path.name) for k, d in space.items()}
    spec = plan_sweep(
        target=config.program,
        cwd=cwd,
        space=space,
        spelled=config.spelled,
        minimize=config.objective if config.goal == "minimize" else None,
        maximize=config.objective if config.goal == "maximize" else None,
        optimizer=config.optimizer,
        max_trials=max_trials if max_trials is not None else config.run_cap,
        parallel=parallel,
        pruner=config.pruner,
        pruner_options=config.pruner_options,
        fixed=config.fixed,
        experiment=config.experiment,
    )
    return spec, config


def _as_grid(name: str, dist: Distribution, shown: str) -> Distribution:
    """W&B's grid walks whole-number and stepped ranges too."""
    if isinstance(dist, IntRange):
        return Choice(tuple(range(dist.low, dist.high + 1)))
    if isinstance(dist, Uniform) and dist.step is not None:
        count = math.floor((dist.high - dist.low) / dist.step + 1e-9) + 1
        return Choice(tuple(round(dist.low + i * dist.step, 12) for i in range(count)))
    if isinstance(dist, Choice):
        return dist
    raise InvalidInputError(
        f"{shown}: method grid needs values (or int_uniform, q_uniform) for {name}, "
        f"not {dist.spelled()}; use method random or bayes"
    )
