"""``labkeep.sweep(objective, space=…)``: a sweep from Python, each trial a child run.

The objective gets a live :class:`~labkeep.Run` whose config holds the trial's values and
returns the value to optimize (or ``None``: the ``minimize``/``maximize`` metric's last value
is read from what it logged). Trials run in this process: on the caller's thread, or
``parallel`` of them in threads. Each trial is a child run whose records go to the sweep
run's journal, or to one journal per worker thread (``Client.start_child_run``): a SIGKILL
loses none of what trials logged, and a trial costs no journal and no ingester thread of its
own.
"""

from __future__ import annotations

import functools
import json
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkeep._run import Run
from labkeep.entities import RunStatus
from labkeep.errors import InvalidInputError, TrialPruned
from labkeep.sweep._controller import SweepController, SweepResult
from labkeep.sweep._processes import _registered_number
from labkeep.sweep._space import Distribution, choice
from labkeep.sweep._spec import PYTHON_TARGET, SPEC_KEY, plan_sweep, trial_summary

if TYPE_CHECKING:
    from labkeep._client import Client
    from labkeep._views import RunList, RunView


@dataclass(frozen=True)
class Sweep:
    """A finished sweep: ``best`` is the best trial's run, ``trials`` every trial run."""

    number: int
    result: SweepResult
    _client: Client

    @property
    def best(self) -> RunView | None:
        """The best trial's run; None with several objectives (see :attr:`front`)."""
        if self.result.best_number is None:
            return None
        return self._client.get_run(self.result.best_number)

    @property
    def front(self) -> list[RunView]:
        """With several objectives: the runs of the trials on the Pareto front."""
        return [self._client.get_run(t.number) for t in self.result.front if t.number is not None]

    @property
    def best_value(self) -> float | None:
        return self.result.best_value

    @property
    def trials(self) -> RunList:
        from labkeep._views import RunList

        return RunList(self._client.store, sort="number", parent_uuid=self.result.uuid)


def sweep(
    objective: Callable[[Run], Any],
    *,
    space: Mapping[str, Distribution | Any],
    minimize: str | Sequence[str] | None = None,
    maximize: str | Sequence[str] | None = None,
    n_trials: int | None = None,
    optimizer: str | None = None,
    parallel: int = 1,
    options: Mapping[str, Any] | None = None,
    prune: str | None = None,
    prune_options: Mapping[str, Any] | None = None,
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

    Several objectives (``minimize=["loss", "time"], maximize="acc"``) make an Optuna
    multi-objective study: the objective returns a dict ``{"loss": …, "acc": …}`` (or a
    sequence in the order minimize's then maximize's, or None: each metric's last logged
    value), and :attr:`Sweep.front` holds the Pareto front instead of one best trial.

    ``prune="median"`` (or ``hyperband``, ``asha``: Optuna's pruners, built with
    ``prune_options``) reports each value of the objective metric the objective logs with
    ``run.log({...}, step=...)`` to Optuna as an intermediate value, as ``trial.report()``
    would; when the pruner gives up on the trial, that ``run.log`` call raises
    :class:`labkeep.TrialPruned` (Optuna's ``trial.should_prune()`` and ``raise
    TrialPruned()``, done for you). Let it propagate: the run ends ``interrupted`` and the
    trial counts as pruned. Raising ``optuna.TrialPruned`` yourself is the same.
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
    names = [*_names(minimize), *_names(maximize)]
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
        pruner=prune,
        pruner_options=prune_options,
        experiment=experiment,
    )
    client = Client(store)
    sweep_run = client.start_run(
        experiment=experiment,
        name=name,
        config={**spec.spelled, "sweep.optimizer": spec.optimizer,
                "sweep.objective": ", ".join(names) or None,
                "sweep.max_trials": spec.max_trials},
        capture=False,
        system_metrics=None,
    )  # fmt: skip
    from dataclasses import asdict

    sweep_run.summary.update({SPEC_KEY: json.dumps(asdict(spec))})
    number = _registered_number(sweep_run)
    metric_keys = [o.key for o in spec.objective_specs()]

    lanes = _Lanes(client, sweep_run, parallel)

    def run_trial(
        params: dict[str, Any], index: int, _stop: threading.Event
    ) -> tuple[int | None, str]:
        trial = client.start_child_run(lanes.host(), config=params, run_class=_TrialRun)
        assert isinstance(trial, _TrialRun)
        trial.summary.update(trial_summary(number, index, params))
        if spec.pruner is not None:
            trial.prune_on(metric_keys[0], functools.partial(controller.report, index))
        try:
            value = objective(trial)
            returned = {} if value is None else _returned(value, metric_keys)
        except Exception as exc:
            if isinstance(exc, TrialPruned) or type(exc).__name__ == "TrialPruned":
                controller.pruned(index)  # Optuna's own TrialPruned counts too
                trial.finish(RunStatus.INTERRUPTED)
                return trial.wait_registered(30), trial.uuid
            trial.finish(RunStatus.FAILED, error="".join(traceback.format_exception(exc)))
        except BaseException:  # Ctrl-C in the objective (trials run on the caller's thread)
            trial.finish(RunStatus.INTERRUPTED)
            raise
        else:
            trial.summary.update(returned)
            trial.finish()
        return trial.wait_registered(30), trial.uuid

    controller = SweepController(
        client, sweep_run, number, spec, run_trial, parallel=parallel, poll_pruning=False,
        inline=True,
    )  # fmt: skip
    try:
        try:
            result = controller.drive()
        finally:
            lanes.close()
    except KeyboardInterrupt:
        sweep_run.finish(RunStatus.INTERRUPTED)
        raise
    except BaseException as exc:
        sweep_run.finish(RunStatus.FAILED, error=str(exc))
        raise
    sweep_run.finish(result.status)
    return Sweep(number, result, client)


def _names(given: str | Sequence[str] | None) -> list[str]:
    return [] if given is None else [given] if isinstance(given, str) else list(given)


def _returned(value: Any, keys: list[str]) -> dict[str, float]:
    """What the objective returned, as summary values of the objective metrics."""
    if isinstance(value, Mapping):
        return {k: float(v) for k, v in value.items() if k in keys}
    if isinstance(value, list | tuple):
        if len(value) != len(keys):
            raise InvalidInputError(
                f"the objective returned {len(value)} values for {len(keys)} objectives "
                f"({', '.join(keys)}); return one per objective or a dict"
            )
        return {k: float(v) for k, v in zip(keys, value, strict=True)}
    return {keys[0]: float(value)}


class _Lanes:
    """Whose journal the trials write into: the sweep run's while one trial runs at a time;
    with ``parallel`` trials at once, one journal per worker thread, attached to the sweep
    run and used by every trial that thread runs. Trials logging side by side into one
    journal would interleave their records, and every change of run ends a batch (a store
    transaction of its own)."""

    def __init__(self, client: Client, sweep_run: Run, parallel: int) -> None:
        self._client = client
        self._sweep_run = sweep_run
        self._parallel = parallel
        self._local = threading.local()
        self._opened: list[Run] = []
        self._lock = threading.Lock()

    def host(self) -> Run:
        """The run whose journal this thread's next trial writes into."""
        if self._parallel <= 1:
            return self._sweep_run
        lane: Run | None = getattr(self._local, "lane", None)
        if lane is None:
            lane = self._client.start_run(
                experiment=self._sweep_run.experiment,
                attach_uuid=self._sweep_run.uuid,
                capture=False,
                system_metrics=None,
            )
            self._local.lane = lane
            with self._lock:
                self._opened.append(lane)
        return lane

    def close(self) -> None:
        """Drain and remove the worker threads' journals (their trials have ended)."""
        with self._lock:
            opened, self._opened = self._opened, []
        for lane in opened:
            lane.finish()


class _TrialRun(Run):
    """A sweep trial's run: each value of the objective metric it logs is reported to the
    pruner, and ``log`` raises :class:`TrialPruned` when the pruner stops the trial."""

    _prune_key: str | None = None
    _report: Callable[[float, int], bool] | None = None

    def prune_on(self, key: str, report: Callable[[float, int], bool]) -> None:
        self._prune_key, self._report = key, report

    def log(self, data: dict[str, Any], step: int | None = None) -> None:
        super().log(data, step)
        key, report = self._prune_key, self._report
        if report is None or key not in data:
            return
        at = self._step - 1
        try:
            value = float(data[key])
        except (TypeError, ValueError):
            return
        if report(value, at):
            raise TrialPruned(f"the pruner stopped this trial at step {at}")
