"""A sweep's spec and the records it leaves in the store.

The spec (script, space, objective, optimizer, budget) is kept as JSON text in the sweep
run's summary, so that ``labkeep sweep resume`` needs nothing but the store; each trial's run
records its sweep, its index and the values it was given (``sweep == 3`` reads the first).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkeep import entities
from labkeep.errors import InvalidInputError
from labkeep.sweep._optimizer import (
    DEFAULT_MAX_TRIALS,
    Objective,
    make_pruner,
    make_sampler,
    optimizer_name,
    parse_objective,
    pruner_name,
)
from labkeep.sweep._space import (
    MAX_GRID_POINTS,
    Distribution,
    grid_points,
    grid_size,
    is_grid,
    space_from_json,
    space_to_json,
)

if TYPE_CHECKING:
    from labkeep._client import Client
    from labkeep.entities import RunRecord


#: Summary keys labkeep writes: on a trial, its sweep's number, its index and the values it
#: was given; on the sweep, its spec and the controller that drives it.
SWEEP_KEY = entities.SWEEP_KEY
TRIAL_KEY = entities.TRIAL_KEY
#: On a trial that ``labkeep stop`` stopped: when it was asked (it is not run again).
STOP_REQUEST_KEY = entities.STOP_REQUEST_KEY
TRIAL_PARAMS_KEY = "labkeep.trial_params"
SPEC_KEY = entities.SWEEP_SPEC_KEY
#: On a trial the pruner stopped: the step at which it was stopped.
PRUNED_KEY = "labkeep.pruned"
CONTROLLER_KEY = "labkeep.sweep_controller"
#: On a failed or killed trial that ran again (``--retry-failed``): the attempt that followed.
RETRIED_KEY = "labkeep.retried"
#: On a trial run on a Dask cluster: the token of its task, so a task Dask runs again after
#: its worker died finds the run the first attempt left.
ATTEMPT_KEY = "labkeep.attempt"

#: The target of a sweep of a Python function (``labkeep.sweep``), which has no script.
PYTHON_TARGET = "<python>"

MessageCallback = Callable[[str], None]
OutputCallback = Callable[[str, bytes], None]


@dataclass(frozen=True)
class SweepSpec:
    """Everything a sweep needs, kept in the sweep run's summary so that it can resume."""

    target: str
    cwd: str
    space: dict[str, dict[str, Any]]
    spelled: dict[str, str]
    objective: str
    direction: str
    optimizer: str
    max_trials: int
    parallel: int = 1
    opt_flags: dict[str, Any] = field(default_factory=dict)
    fixed: list[str] = field(default_factory=list)
    extra_args: list[str] = field(default_factory=list)
    experiment: str = "default"
    tags: list[str] = field(default_factory=list)
    config: str | None = None
    inputs: list[str] = field(default_factory=list)
    seed: int | None = None
    capture: bool = True
    scalars: bool = True
    scalar_patterns: list[str] = field(default_factory=list)
    scalar_keys: list[str] = field(default_factory=list)
    #: The rows of a batch file (``@trials.csv``): the grid's points, listed.
    points: list[dict[str, Any]] = field(default_factory=list)
    #: Optuna's pruner: ``median``, ``hyperband`` or ``asha`` (None: every trial runs out).
    pruner: str | None = None
    pruner_options: dict[str, Any] = field(default_factory=dict)
    #: Several objectives (an Optuna multi-objective study): ``[metric, direction]`` pairs,
    #: the first of them also in ``objective``/``direction``. Empty for one objective.
    objectives: list[list[str]] = field(default_factory=list)

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    def grid(self) -> list[dict[str, Any]]:
        """Every point of a grid sweep, in the order they run."""
        return list(self.points) if self.points else list(grid_points(self.distributions()))

    def distributions(self) -> dict[str, Distribution]:
        return space_from_json(self.space)

    def objective_spec(self) -> Objective:
        from labkeep.sweep._optimizer import parse_objective

        return parse_objective(self.objective, self.direction)  # type: ignore[arg-type]

    def objective_specs(self) -> list[Objective]:
        """Every objective, in order (empty for a grid with none)."""
        from labkeep.sweep._optimizer import parse_objective

        if self.objectives:
            return [parse_objective(m, d) for m, d in self.objectives]  # type: ignore[arg-type]
        return [self.objective_spec()] if self.objective else []


def plan_sweep(
    *,
    target: str,
    cwd: Path,
    space: Mapping[str, Distribution],
    spelled: Mapping[str, str],
    minimize: str | Sequence[str] | None,
    maximize: str | Sequence[str] | None,
    optimizer: str | None,
    max_trials: int | None,
    parallel: int = 1,
    opt_flags: Mapping[str, Any] | None = None,
    points: list[dict[str, Any]] | None = None,
    pruner: str | None = None,
    pruner_options: Mapping[str, Any] | None = None,
    **launch: Any,
) -> SweepSpec:
    """Check a sweep's settings and return its spec; every mistake is an
    :class:`InvalidInputError` raised before any run exists."""
    if not space:
        raise InvalidInputError(
            "a sweep needs a searched flag, such as 'x=[-2.0:2.0]' or 'lr=[0.1,0.01]'"
        )
    if max_trials is not None and max_trials < 1:
        raise InvalidInputError(f"--max-trials must be at least 1, not {max_trials}")
    if parallel < 1:
        raise InvalidInputError(f"--parallel must be at least 1, not {parallel}")
    wanted = [[m, "minimize"] for m in _metrics(minimize)]
    wanted += [[m, "maximize"] for m in _metrics(maximize)]
    objectives = wanted if len(wanted) > 1 else []
    if objectives and len({m for m, _ in wanted}) < len(wanted):
        raise InvalidInputError("an objective metric is named twice; name each one once")
    name = optimizer_name(optimizer) if optimizer else ("grid" if is_grid(space) else "random")
    if points and name != "grid":
        raise InvalidInputError(
            f"a batch file lists its trials; it takes no --optimizer {name} (leave it out)"
        )
    if name == "grid":
        size = len(points) if points else grid_size(space) if is_grid(space) else 0
        list(_first(grid_points(space)))  # a range in a grid is an error naming the flag
        if max_trials is None and size > MAX_GRID_POINTS:
            raise InvalidInputError(
                f"the grid has {size:,} points (over {MAX_GRID_POINTS:,}); "
                "cap it with --max-trials N or search with --optimizer random"
            )
        trials = size if max_trials is None else min(size, max_trials)
    else:
        trials = DEFAULT_MAX_TRIALS if max_trials is None else max_trials
    if name != "grid" and not wanted:
        raise InvalidInputError(
            f"optimizer {name} needs an objective: give --minimize METRIC or --maximize METRIC"
        )
    objective, direction = wanted[0] if wanted else ("", "minimize")
    if objectives and name == "cmaes":
        raise InvalidInputError(
            "optimizer cmaes optimizes one objective; for several use tpe, random, gp or qmc"
        )
    if objectives and pruner is not None:
        raise InvalidInputError(
            "--prune needs one objective (Optuna prunes no multi-objective study)"
        )
    if pruner is not None:
        pruner = pruner_name(pruner)
        if not objective:
            raise InvalidInputError(
                f"--prune {pruner} needs an objective: give --minimize METRIC or --maximize METRIC"
            )
        if parse_objective(objective, direction).accessor != "last":  # type: ignore[arg-type]
            raise InvalidInputError(
                f"--prune compares the values a trial logs as it goes; give --{direction} "
                f"{objective.rpartition('.')[0]}, not {objective}"
            )
    spec = SweepSpec(
        target=target,
        cwd=str(cwd),
        space=space_to_json(space),
        spelled=dict(spelled),
        objective=objective,
        direction=direction,
        optimizer=name,
        max_trials=trials,
        parallel=parallel,
        opt_flags=dict(opt_flags or {}),
        points=list(points or []),
        pruner=pruner,
        pruner_options=dict(pruner_options or {}),
        objectives=objectives,
        **launch,
    )
    make_sampler(name, spec.opt_flags)  # a missing package or an unknown option fails now
    if spec.pruner is not None:
        try:
            make_pruner(spec.pruner, spec.pruner_options)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"pruner {spec.pruner}: {exc}") from None
    return spec


def _metrics(given: str | Sequence[str] | None) -> list[str]:
    if given is None:
        return []
    items = [given] if isinstance(given, str) else list(given)
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise InvalidInputError(f"an objective is a metric name such as loss, not {item!r}")
    return [item.strip() for item in items]


def _first(items: Any) -> list[Any]:
    for item in items:
        return [item]
    return []


def trial_summary(sweep_number: int, index: int, params: Mapping[str, Any]) -> dict[str, Any]:
    """What a trial's run records of its sweep. The values go as JSON text: a dict in a
    summary would be flattened to dotted keys and lose its shape."""
    return {SWEEP_KEY: sweep_number, TRIAL_KEY: index, TRIAL_PARAMS_KEY: json.dumps(dict(params))}


def trial_params(record: RunRecord) -> dict[str, Any] | None:
    """The values the optimizer gave a trial (None for a run that is no trial)."""
    return _json_dict(record.summary.get(TRIAL_PARAMS_KEY))


def _json_dict(text: object) -> dict[str, Any] | None:
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _spell_value(value: Any) -> str:
    """A sampled value as typed after ``name=`` (parsed back by the runner like any other)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "None"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def sweep_params(spec: SweepSpec) -> dict[str, Any]:
    """The sweep run's params: its flags as typed, and how it searches."""
    from labkeep.runner._overrides import parse_assignment

    params: dict[str, Any] = {}
    for text in spec.fixed:
        name, raw = parse_assignment(text)
        params[name] = raw
    params.update(spec.spelled)
    params.update(
        {
            "sweep.target": spec.target,
            "sweep.optimizer": spec.optimizer,
            "sweep.objective": ", ".join(m for m, _ in spec.objectives) or spec.objective or None,
            "sweep.direction": ", ".join(d for _, d in spec.objectives) or spec.direction,
            "sweep.max_trials": spec.max_trials,
        }
    )
    return params


def get_sweep(client: Client, ref: str | int) -> tuple[RunRecord, SweepSpec]:
    """The sweep run ``ref`` (a run reference; ``last`` is the newest sweep) and its spec;
    a run that is no sweep is an error."""
    from labkeep.errors import NotFoundError

    client.recover()
    if not client.store.exists():
        raise NotFoundError(f"no sweep {ref}: the store has no runs yet")
    if ref == "last":
        newest = client.store.search_numbers(
            where=f"'{SPEC_KEY}' in summary", sort="-number", limit=1
        )
        if not newest:
            raise NotFoundError("no sweeps yet: labkeep run SCRIPT 'x=[LOW:HIGH]' --minimize M")
        ref = newest[0]
    info = client.store.resolve_run(ref)
    record = client.store.get_records([info.number])[0]
    data = _json_dict(record.summary.get(SPEC_KEY))
    if data is None:
        raise NotFoundError(f"run {info.number} is not a sweep; `labkeep sweeps` lists them")
    return record, SweepSpec(**data)


def list_sweeps(client: Client) -> list[RunRecord]:
    """Every sweep run, newest first."""
    client.recover()
    if not client.store.exists():
        return []
    numbers = client.store.search_numbers(where=f"'{SPEC_KEY}' in summary", sort="-number")
    return client.store.get_records(numbers) if numbers else []


def sweep_trials(client: Client, sweep: RunRecord) -> list[RunRecord]:
    """The sweep's trial runs, oldest first."""
    numbers = client.store.search_numbers(sort="number", parent_uuid=sweep.info.uuid)
    return client.store.get_records(numbers) if numbers else []
