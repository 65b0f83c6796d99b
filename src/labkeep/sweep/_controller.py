"""The sweep controller: a run whose trials are child runs, driven by an Optuna study.

``labkeep run train.py 'x=[-2.0:2.0]' --optimizer tpe --minimize loss`` comes here. The sweep
is itself a run (its params are the spec as typed, its summary the counts and the best trial);
each trial is launched by the runner exactly as ``labkeep run train.py x=0.37`` would launch it,
with ``parent_uuid`` set to the sweep and ``labkeep.sweep``/``labkeep.trial`` in its summary
(the query language reads ``sweep == 3`` from there).

**State lives in the store, not in Optuna.** The study is Optuna's in-memory one, rebuilt on
every start from the sweep's child runs: each finished trial (completed or failed) is told to
it with ``study.add_trial``, each trial that was cut short (``killed`` when the controller was
SIGKILLed, ``interrupted`` by ``labkeep sweep stop``) is enqueued to run again with the same
values. So ``labkeep sweep resume`` runs exactly the remaining trials, on every backend
(SQLite, PostgreSQL, a labkeep server), with no second copy of the state to keep in step and
no Optuna tables in the database. The cost is re-telling N trials on resume, which is
milliseconds for the trial counts a sweep of processes reaches.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkeep.entities import RunStatus
from labkeep.errors import InvalidInputError, LabkeepError, RunStateError
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
    Choice,
    Distribution,
    grid_points,
    grid_size,
    is_grid,
    space_from_json,
    space_to_json,
)

if TYPE_CHECKING:
    import optuna

    from labkeep._client import Client
    from labkeep._run import Run
    from labkeep.entities import RunRecord
    from labkeep.runner._launch import LaunchResult

#: Summary keys labkeep writes: on a trial, its sweep's number, its index and the values it
#: was given; on the sweep, its spec and the controller that drives it.
SWEEP_KEY = "labkeep.sweep"
TRIAL_KEY = "labkeep.trial"
TRIAL_PARAMS_KEY = "labkeep.trial_params"
SPEC_KEY = "labkeep.sweep_spec"
#: On a trial the pruner stopped: the step at which it was stopped.
PRUNED_KEY = "labkeep.pruned"
CONTROLLER_KEY = "labkeep.sweep_controller"

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

    def grid(self) -> list[dict[str, Any]]:
        """Every point of a grid sweep, in the order they run."""
        return list(self.points) if self.points else list(grid_points(self.distributions()))

    def distributions(self) -> dict[str, Distribution]:
        return space_from_json(self.space)

    def objective_spec(self) -> Objective:
        from labkeep.sweep._optimizer import parse_objective

        return parse_objective(self.objective, self.direction)  # type: ignore[arg-type]


def plan_sweep(
    *,
    target: str,
    cwd: Path,
    space: Mapping[str, Distribution],
    spelled: Mapping[str, str],
    minimize: str | None,
    maximize: str | None,
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
    if minimize and maximize:
        raise InvalidInputError("give --minimize or --maximize, not both")
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
    if name != "grid" and not (minimize or maximize):
        raise InvalidInputError(
            f"optimizer {name} needs an objective: give --minimize METRIC or --maximize METRIC"
        )
    objective, direction = (maximize, "maximize") if maximize else (minimize or "", "minimize")
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
        **launch,
    )
    make_sampler(name, spec.opt_flags)  # a missing package or an unknown option fails now
    if spec.pruner is not None:
        try:
            make_pruner(spec.pruner, spec.pruner_options)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"pruner {spec.pruner}: {exc}") from None
    return spec


def _first(items: Any) -> list[Any]:
    for item in items:
        return [item]
    return []


@dataclass(frozen=True)
class TrialOutcome:
    """One trial as the controller saw it end."""

    index: int
    number: int | None
    status: RunStatus
    params: dict[str, Any]
    value: float | None
    pruned: bool = False


@dataclass
class SweepResult:
    """How a sweep (or this stretch of it) ended."""

    number: int | None
    uuid: str
    status: RunStatus
    completed: int = 0
    failed: int = 0
    pruned: int = 0
    best_number: int | None = None
    best_value: float | None = None
    best_params: dict[str, Any] = field(default_factory=dict)
    trials: list[TrialOutcome] = field(default_factory=list)


@dataclass
class _Running:
    """A trial in flight: Optuna's trial, the event that stops its process, and what the
    pruner has been told of it."""

    trial: Any
    index: int
    params: dict[str, Any]
    stop: threading.Event
    number: int | None = None
    last_step: int = -1
    next_look: float = 0.0
    pruned_at: int | None = None


class SweepController:
    """Runs the remaining trials of one sweep. Used by :func:`start_sweep` and
    :func:`resume_sweep`; ``run_trial`` is how one trial runs (a process, or the objective
    function of :func:`labkeep.sweep`)."""

    def __init__(
        self,
        client: Client,
        sweep_run: Run,
        sweep_number: int,
        spec: SweepSpec,
        run_trial: Callable[[dict[str, Any], int, threading.Event], tuple[int | None, str]],
        *,
        on_message: MessageCallback | None = None,
        parallel: int | None = None,
    ) -> None:
        self.client = client
        self.run = sweep_run
        self.number = sweep_number
        self.spec = spec
        self.run_trial = run_trial
        self.on_message = on_message
        self.parallel = parallel or spec.parallel
        self.stop = threading.Event()
        self.objective = spec.objective_spec() if spec.objective else None
        self.space = spec.distributions()
        self.result = SweepResult(sweep_number, sweep_run.uuid, RunStatus.RUNNING)

    def say(self, text: str) -> None:
        if self.on_message is not None:
            self.on_message(text)

    # -- the study, rebuilt from the store ---------------------------------------------------
    def _study(self) -> tuple[optuna.Study, int, int]:
        """Optuna's study told every finished trial; returns it, how many trials are still
        to run, and the next trial index."""
        import optuna

        sampler = make_sampler(self.spec.optimizer, self.spec.opt_flags)
        study = optuna.create_study(
            sampler=sampler,
            pruner=make_pruner(self.spec.pruner, self.spec.pruner_options),
            direction="maximize" if self.spec.direction == "maximize" else "minimize",
        )
        distributions = {k: d.to_optuna() for k, d in self.space.items()}
        done: list[dict[str, Any]] = []
        cut_short: list[dict[str, Any]] = []
        index = 0
        for record in self._trial_records():
            index = max(index, int(record.summary.get(TRIAL_KEY, 0) or 0))
            params = trial_params(record)
            if params is None:
                continue
            status = record.info.status
            if status is RunStatus.RUNNING:
                raise RunStateError(
                    f"sweep {self.number} still has trial run {record.info.number} running; "
                    f"stop it (labkeep sweep stop {self.number}) before resuming"
                )
            if PRUNED_KEY in record.summary:
                self._count(TrialOutcome(index, record.info.number, status, params, None, True))
                done.append(params)
                study.add_trial(
                    optuna.trial.create_trial(
                        params=params,
                        distributions=distributions,
                        state=optuna.trial.TrialState.PRUNED,
                    )
                )
                continue
            if status in (RunStatus.KILLED, RunStatus.INTERRUPTED):
                cut_short.append(params)
                continue
            outcome = self._outcome(record, params, quiet=True)
            self._count(outcome)
            done.append(params)
            study.add_trial(
                optuna.trial.create_trial(
                    params=params,
                    distributions=distributions,
                    value=outcome.value,
                    state=optuna.trial.TrialState.COMPLETE
                    if outcome.value is not None
                    else optuna.trial.TrialState.FAIL,
                )
            )
        remaining = max(0, self.spec.max_trials - len(done))
        if self.spec.optimizer == "grid":
            left = list(done)  # a batch file may list a point twice: each runs once per listing
            queue = []
            for point in self.spec.grid():
                if point in left:
                    left.remove(point)
                else:
                    queue.append(point)
            queue = queue[:remaining]
        else:
            queue = cut_short[:remaining]
        for params in queue:
            study.enqueue_trial(params, skip_if_exists=False)
        return study, remaining, index + 1

    def _trial_records(self) -> list[RunRecord]:
        store = self.client.store
        numbers = store.search_numbers(sort="number", parent_uuid=self.run.uuid)
        return store.get_records(numbers) if numbers else []

    # -- running -------------------------------------------------------------------------------
    def drive(self) -> SweepResult:
        """Run trials until the budget is spent or :attr:`stop` is set."""
        study, remaining, index = self._study()
        distributions = {k: d.to_optuna() for k, d in self.space.items()}
        if remaining == 0:
            self.say(f"sweep {self.number} has no trials left to run")
        choices = [k for k, d in self.space.items() if isinstance(d, Choice)]
        if self.spec.optimizer == "cmaes" and choices and remaining:
            self.say(f"cmaes searches numbers only: {', '.join(choices)} drawn at random")
        self._record_summary()
        pending: dict[Future[tuple[int | None, str]], _Running] = {}
        launched = 0
        with ThreadPoolExecutor(self.parallel, thread_name_prefix="labkeep-trial") as pool:
            while pending or (launched < remaining and not self.stop.is_set()):
                while (
                    launched < remaining and len(pending) < self.parallel and not self.stop.is_set()
                ):
                    trial = study.ask(distributions)
                    running = _Running(trial, index, dict(trial.params), threading.Event())
                    future = pool.submit(self.run_trial, running.params, index, running.stop)
                    pending[future] = running
                    index += 1
                    launched += 1
                finished, _ = wait(list(pending), timeout=0.2, return_when=FIRST_COMPLETED)
                for future in finished:
                    self._finished_trial(study, pending.pop(future), future)
                for running in pending.values():
                    if self.stop.is_set():
                        running.stop.set()
                    elif self.spec.pruner is not None:
                        self._check_pruning(running)
        self.result.status = RunStatus.INTERRUPTED if self.stop.is_set() else RunStatus.COMPLETED
        self._record_summary()
        return self.result

    def _check_pruning(self, running: _Running) -> None:
        """Tell the pruner what the trial logged since the last look; stop it when the
        pruner says so. Looks at most once a second per trial."""
        now = time.monotonic()
        if now < running.next_look or self.objective is None:
            return
        running.next_look = now + 1.0
        store = self.client.store
        if running.number is None:
            found = store.search_numbers(
                where=f"summary['{TRIAL_KEY}'] == {running.index}",
                parent_uuid=self.run.uuid,
                limit=1,
            )
            if not found:
                return
            running.number = found[0]
        try:
            history = store.get_history(running.number, self.objective.key)
        except LabkeepError:
            return  # nothing logged yet
        trial = running.trial
        for step, value in zip(history.steps, history.values, strict=True):
            if step > running.last_step and math.isfinite(value):
                trial.report(value, step)
                running.last_step = step
        if running.last_step >= 0 and trial.should_prune():
            running.pruned_at = running.last_step
            running.stop.set()

    def _finished_trial(
        self,
        study: optuna.Study,
        running: _Running,
        future: Future[tuple[int | None, str]],
    ) -> None:
        import optuna

        trial, index, params = running.trial, running.index, running.params
        try:
            number, uuid = future.result()
        except Exception as exc:  # a trial that could not even start
            self.say(f"trial {index} could not run: {exc}")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            self._count(TrialOutcome(index, None, RunStatus.FAILED, params, None))
            return
        if number is None:
            self.say(f"trial {index} is kept on this machine; its objective cannot be read")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            self._count(TrialOutcome(index, None, RunStatus.FAILED, params, None))
            return
        record = self.client.store.get_records([number])[0]
        stopped = record.info.status is RunStatus.INTERRUPTED
        if running.pruned_at is not None and stopped and not self.stop.is_set():
            from labkeep.store._base import WriteBatch

            # The run itself has ended (interrupted: it was stopped); a writer of the
            # controller's own records why, which resume and show read.
            self.client.store.apply(
                WriteBatch(
                    run_uuid=uuid,
                    writer=f"sweep-prune-{uuid}",
                    position=1,
                    summary={PRUNED_KEY: running.pruned_at},
                )
            )
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            self.say(f"trial {index} pruned at step {running.pruned_at}")
            self._count(TrialOutcome(index, number, RunStatus.INTERRUPTED, params, None, True))
            self._record_summary()
            return
        if record.info.status in (RunStatus.INTERRUPTED, RunStatus.KILLED):
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return  # cut short by a stop: it runs again on resume
        outcome = self._outcome(record, params, quiet=False)
        if outcome.value is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, outcome.value)
        self._count(outcome)
        self._record_summary()

    def _outcome(self, record: RunRecord, params: dict[str, Any], *, quiet: bool) -> TrialOutcome:
        index = int(record.summary.get(TRIAL_KEY, 0) or 0)
        status = record.info.status
        value = None
        if status is RunStatus.COMPLETED and self.objective is not None:
            value = self.objective.value(record)
            if value is None:
                status = RunStatus.FAILED
                if not quiet:
                    self.say(self.objective.missing(f"trial {index}", record))
        elif status is RunStatus.FAILED and not quiet:
            code = "" if record.info.exit_code is None else f" (exit {record.info.exit_code})"
            self.say(f"trial {index} failed{code}: labkeep show {record.info.number}")
        return TrialOutcome(index, record.info.number, status, params, value)

    def _count(self, outcome: TrialOutcome) -> None:
        result = self.result
        result.trials.append(outcome)
        if outcome.pruned:
            result.pruned += 1
        elif outcome.status is RunStatus.COMPLETED:
            result.completed += 1
        else:
            result.failed += 1
        value = outcome.value
        if value is None:
            return
        better = result.best_value is None or (
            value < result.best_value
            if self.spec.direction == "minimize"
            else value > result.best_value
        )
        if better:
            result.best_value = value
            result.best_number = outcome.number
            result.best_params = dict(outcome.params)

    def _record_summary(self) -> None:
        result = self.result
        summary: dict[str, Any] = {
            "trials.completed": result.completed,
            "trials.failed": result.failed,
            "trials.pruned": result.pruned,
            "trials.total": self.spec.max_trials,
        }
        if result.best_value is not None:
            summary["best.value"] = result.best_value
            summary["best.run"] = result.best_number
            summary["best.params"] = result.best_params
        self.run.summary.update(summary)


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


# -- the command-line sweep -----------------------------------------------------------------------


def _process_trial(
    client: Client,
    spec: SweepSpec,
    sweep_uuid: str,
    sweep_number: int,
    on_output: OutputCallback | None,
    on_message: MessageCallback | None,
    parallel: int,
) -> Callable[[dict[str, Any], int, threading.Event], tuple[int | None, str]]:
    """How one trial runs: ``labkeep run TARGET FIXED… NAME=VALUE…`` as a child run."""
    from labkeep.runner._launch import LaunchSpec, launch

    def run_trial(
        params: dict[str, Any], index: int, stop: threading.Event
    ) -> tuple[int | None, str]:
        assignments = (*spec.fixed, *(f"{k}={_spell_value(v)}" for k, v in params.items()))
        launch_spec = LaunchSpec(
            target=Path(spec.target),
            assignments=assignments,
            extra_args=tuple(spec.extra_args),
            cwd=Path(spec.cwd),
            experiment=spec.experiment,
            tags=tuple(spec.tags),
            config=None if spec.config is None else Path(spec.config),
            inputs=tuple(spec.inputs),
            seed=spec.seed,
            capture=spec.capture,
            scalars=spec.scalars,
            scalar_patterns=tuple(spec.scalar_patterns),
            scalar_keys=tuple(spec.scalar_keys),
            # Trials side by side share the working directory: whose file is whose cannot be
            # told, so outputs are collected only when trials run one at a time.
            collect_outputs=parallel == 1,
            on_output=on_output if parallel == 1 else None,
            on_message=on_message,
            parent_uuid=sweep_uuid,
            summary=trial_summary(sweep_number, index, params),
            stop=stop,
        )
        result: LaunchResult = launch(launch_spec, client)
        return result.number, result.uuid

    return run_trial


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
            "sweep.objective": spec.objective or None,
            "sweep.direction": spec.direction,
            "sweep.max_trials": spec.max_trials,
        }
    )
    return params


def start_sweep(
    client: Client,
    spec: SweepSpec,
    *,
    name: str = "",
    notes: str = "",
    on_output: OutputCallback | None = None,
    on_message: MessageCallback | None = None,
) -> SweepResult:
    """Start a sweep of processes and run it to its end (or until a signal stops it).

    >>> spec = plan_sweep(target="train.py", cwd=Path.cwd(), ...)  # doctest: +SKIP
    >>> start_sweep(Client(), spec).best_value  # doctest: +SKIP
    """
    _check_launch(client, spec)
    run = client.start_run(
        experiment=spec.experiment,
        name=name,
        tags=list(spec.tags),
        notes=notes,
        config=sweep_params(spec),
        capture=False,
        system_metrics=None,
    )
    run.summary.update({SPEC_KEY: json.dumps(asdict(spec))})
    number = _registered_number(run)
    return _drive(client, run, number, spec, on_output, on_message, None, resumed=False)


def _check_launch(client: Client, spec: SweepSpec) -> None:
    """The script, its fixed flags and one point of the space, checked as ``labkeep run``
    checks them, before any run exists."""
    from labkeep.runner._launch import LaunchSpec, prepare_launch

    sample = {name: _sample_value(dist) for name, dist in spec.distributions().items()}
    prepare_launch(
        LaunchSpec(
            target=Path(spec.target),
            assignments=(*spec.fixed, *(f"{k}={_spell_value(v)}" for k, v in sample.items())),
            extra_args=tuple(spec.extra_args),
            cwd=Path(spec.cwd),
            config=None if spec.config is None else Path(spec.config),
            inputs=tuple(spec.inputs),
        ),
        client,
    )


def _sample_value(dist: Distribution) -> Any:
    return dist.values[0] if isinstance(dist, Choice) else dist.low


def _registered_number(run: Run) -> int:
    run._ingester.wake()
    if not run._ingester.registered.wait(30):
        raise RunStateError(
            "the store did not register the sweep run within 30 s; a sweep needs a reachable "
            "store to read its trials back"
        )
    number = run._ingester.number
    if number is None:
        raise RunStateError("the store did not give the sweep run a number")
    return number


def _drive(
    client: Client,
    run: Run,
    number: int,
    spec: SweepSpec,
    on_output: OutputCallback | None,
    on_message: MessageCallback | None,
    parallel: int | None,
    *,
    resumed: bool,
) -> SweepResult:
    width = parallel or spec.parallel
    trial = _process_trial(client, spec, run.uuid, number, on_output, on_message, width)
    controller = SweepController(
        client, run, number, spec, trial, on_message=on_message, parallel=width
    )
    controller_info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
    run.summary.update({CONTROLLER_KEY: json.dumps(controller_info)})
    try:
        with _stop_on_signals(controller.stop):
            result = controller.drive()
    except BaseException as exc:
        _end(client, run, RunStatus.FAILED, resumed, error=str(exc))
        raise
    _end(client, run, result.status, resumed)
    return result


def _end(
    client: Client, run: Run, status: RunStatus, resumed: bool, error: str | None = None
) -> None:
    run.finish(status, error=error)
    if resumed:
        # The sweep's own run ended (killed, stopped) before; a resumed stretch writes through
        # an attached writer, which cannot end it, so its end is applied as a batch of its own.
        from labkeep.store._base import RunFinish, WriteBatch

        client.store.apply(
            WriteBatch(
                run_uuid=run.uuid,
                writer=f"sweep-resume-{run.uuid}-{time.time_ns()}",
                position=1,
                finish=RunFinish(status=status.value, end_time=time.time(), error=error),
            )
        )


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Any:
    """Ctrl-C and SIGTERM (``labkeep sweep stop``) stop the running trials and launch no
    more; the sweep ends ``interrupted`` and can be resumed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(_signum: int, _frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


# -- reading sweeps back --------------------------------------------------------------------------


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


def resume_sweep(
    client: Client,
    ref: str | int,
    *,
    parallel: int | None = None,
    max_trials: int | None = None,
    on_output: OutputCallback | None = None,
    on_message: MessageCallback | None = None,
) -> SweepResult:
    """Run the trials sweep ``ref`` has left: every finished trial is told to the optimizer,
    every trial cut short runs again, none runs twice. ``max_trials`` sets a new budget (the
    trials already done count towards it)."""
    record, spec = get_sweep(client, ref)
    if max_trials is not None:
        if max_trials < 1:
            raise InvalidInputError(f"--max-trials must be at least 1, not {max_trials}")
        if spec.optimizer == "grid":
            max_trials = min(max_trials, len(spec.grid()))
        spec = replace(spec, max_trials=max_trials)
    if spec.target == PYTHON_TARGET:
        raise InvalidInputError(
            f"sweep {record.info.number} searched a Python function; call labkeep.sweep() "
            "again to search more (the command line resumes sweeps of scripts)"
        )
    if record.info.status is RunStatus.RUNNING:
        raise RunStateError(
            f"sweep {record.info.number} is still running; stop it first "
            f"(labkeep sweep stop {record.info.number})"
        )
    if spec.optimizer != "grid" or not spec.objective:
        from labkeep.sweep._optimizer import check_available

        check_available(spec.optimizer)
    _check_controller_gone(record)
    _check_launch(client, spec)
    run = client.start_run(
        experiment=record.info.experiment,
        attach_uuid=record.info.uuid,
        capture=False,
        system_metrics=None,
    )
    if max_trials is not None:
        run.summary.update({SPEC_KEY: json.dumps(asdict(spec))})
    return _drive(
        client, run, record.info.number, spec, on_output, on_message, parallel, resumed=True
    )


def _check_controller_gone(record: RunRecord) -> None:
    controller = _json_dict(record.summary.get(CONTROLLER_KEY))
    if controller is None or controller.get("host") != socket.gethostname():
        return
    pid = controller.get("pid")
    if isinstance(pid, int) and pid != os.getpid() and _controls(pid, controller.get("since")):
        raise RunStateError(
            f"sweep {record.info.number} is being resumed by process {pid}; "
            f"stop it first (labkeep sweep stop {record.info.number})"
        )


def _controls(pid: int, since: object) -> bool:
    """Whether ``pid`` is alive and is the process that recorded itself at ``since``."""
    import psutil

    try:
        created: float = psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return not isinstance(since, int | float) or created <= since + 2.0


def stop_sweep(client: Client, ref: str | int, *, grace: float = 10.0) -> int:
    """Stop sweep ``ref``'s controller (SIGTERM: its trials stop, it ends ``interrupted``);
    returns the sweep's number."""
    record, _spec = get_sweep(client, ref)
    number = record.info.number
    if record.info.status is RunStatus.RUNNING:
        from labkeep.runner._stop import stop_run

        stop_run(client, number, grace=grace)
        return number
    controller = _json_dict(record.summary.get(CONTROLLER_KEY))
    pid = controller.get("pid") if controller is not None else None
    if (
        controller is not None
        and controller.get("host") == socket.gethostname()
        and isinstance(pid, int)
        and _controls(pid, controller.get("since"))
    ):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _controls(pid, controller.get("since")):
            time.sleep(0.1)
        return number
    raise RunStateError(
        f"sweep {number} is {record.info.status.value}, not running; "
        f"`labkeep sweep resume {number}` runs its remaining trials"
    )
