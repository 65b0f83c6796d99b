"""``labkeep.sweep(objective, space=…)``: a sweep from Python, each trial a child run.

The objective gets a live :class:`~labkeep.Run` whose config holds the trial's values and
returns the value to optimize (or ``None``: the ``minimize``/``maximize`` metric's last value
is read from what it logged). Trials run in this process, ``parallel`` of them in threads.
"""

from __future__ import annotations

import json
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkeep.entities import RunStatus
from labkeep.errors import InvalidInputError
from labkeep.sweep._controller import SweepController, SweepResult
from labkeep.sweep._processes import _registered_number
from labkeep.sweep._space import Distribution, choice
from labkeep.sweep._spec import PYTHON_TARGET, SPEC_KEY, plan_sweep, trial_summary

if TYPE_CHECKING:
    from labkeep._client import Client
    from labkeep._run import Run
    from labkeep._views import RunList, RunView


@dataclass(frozen=True)
class Sweep:
    """A finished sweep: ``best`` is the best trial's run, ``trials`` every trial run."""

    number: int
    result: SweepResult
    _client: Client

    @property
    def best(self) -> RunView | None:
        if self.result.best_number is None:
            return None
        return self._client.get_run(self.result.best_number)

    @property
    def best_value(self) -> float | None:
        return self.result.best_value

    @property
    def trials(self) -> RunList:
        from labkeep._views import RunList

        return RunList(self._client.store, sort="number", parent_uuid=self.result.uuid)


def sweep(
    objective: Callable[[Run], float | None],
    *,
    space: Mapping[str, Distribution | Any],
    minimize: str | None = None,
    maximize: str | None = None,
    n_trials: int | None = None,
    optimizer: str | None = None,
    parallel: int = 1,
    options: Mapping[str, Any] | None = None,
    experiment: str = "default",
    name: str = "",
    store: str | None = None,
) -> Sweep:
    """Search ``space`` with Optuna, each trial a child run of one sweep run.

    >>> def objective(run):  # doctest: +SKIP
    ...     return (run.config["x"] - 1) ** 2
    >>> s = labkeep.sweep(objective, space={"x": labkeep.uniform(-2, 2)}, minimize="loss",
    ...                   n_trials=20, optimizer="tpe")  # doctest: +SKIP
    >>> s.best.config["x"]  # doctest: +SKIP
    """
    from labkeep._client import Client

    if not callable(objective):
        raise InvalidInputError("sweep() takes the objective function first")
    dims: dict[str, Distribution] = {}
    for key, value in space.items():
        if isinstance(value, list | tuple):
            dims[key] = choice(*value)
        elif hasattr(value, "to_optuna"):
            dims[key] = value
        else:
            raise InvalidInputError(
                f"space[{key!r}] is {value!r}: give labkeep.uniform(), loguniform(), "
                "intrange(), choice() or a list"
            )
    metric = minimize or maximize
    spec = plan_sweep(
        target=PYTHON_TARGET,
        cwd=Path.cwd(),
        space=dims,
        spelled={k: d.spelled() for k, d in dims.items()},
        minimize=minimize or ("objective" if not maximize else None),
        maximize=maximize,
        optimizer=optimizer,
        max_trials=n_trials,
        parallel=parallel,
        opt_flags=options,
        experiment=experiment,
    )
    client = Client(store)
    sweep_run = client.start_run(
        experiment=experiment,
        name=name,
        config={**spec.spelled, "sweep.optimizer": spec.optimizer,
                "sweep.objective": metric, "sweep.max_trials": spec.max_trials},
        capture=False,
        system_metrics=None,
    )  # fmt: skip
    from dataclasses import asdict

    sweep_run.summary.update({SPEC_KEY: json.dumps(asdict(spec))})
    number = _registered_number(sweep_run)
    metric_key = spec.objective

    def run_trial(
        params: dict[str, Any], index: int, _stop: threading.Event
    ) -> tuple[int | None, str]:
        trial = client.start_run(
            experiment=experiment,
            parent_uuid=sweep_run.uuid,
            config=params,
            capture=False,
            system_metrics=None,
        )
        trial.summary.update(trial_summary(number, index, params))
        try:
            value = objective(trial)
        except Exception as exc:
            trial.finish(RunStatus.FAILED, error="".join(traceback.format_exception(exc)))
        else:
            if value is not None:
                trial.summary[metric_key] = float(value)
            trial.finish()
        trial._ingester.registered.wait(30)
        return trial._ingester.number, trial.uuid

    controller = SweepController(client, sweep_run, number, spec, run_trial, parallel=parallel)
    try:
        result = controller.drive()
    except BaseException as exc:
        sweep_run.finish(RunStatus.FAILED, error=str(exc))
        raise
    sweep_run.finish(result.status)
    return Sweep(number, result, client)
