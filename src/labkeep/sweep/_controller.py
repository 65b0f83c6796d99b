"""The sweep controller: asks an Optuna study for trials, runs them side by side (as
processes through ``_processes``, or as a Python function through ``_api``), tells it how each
ended, stops trials its pruner gives up on, and keeps the sweep run's summary (counts, best
trial) current. The sweep is itself a run; each trial a child run with ``labkeep.sweep`` and
``labkeep.trial`` in its summary (the query language reads ``sweep == 3`` from there).

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

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labkeep.entities import RunStatus
from labkeep.errors import LabkeepError, RunStateError
from labkeep.sweep._optimizer import make_pruner, make_sampler, pareto_front
from labkeep.sweep._space import Choice, optuna_params, trial_values
from labkeep.sweep._spec import (
    PRUNED_KEY,
    RETRIED_KEY,
    STOP_REQUEST_KEY,
    TRIAL_KEY,
    MessageCallback,
    SweepSpec,
    trial_params,
)

if TYPE_CHECKING:
    import optuna

    from labkeep._client import Client
    from labkeep._run import Run
    from labkeep.entities import RunRecord


#: How often the sweep run's summary follows the finished trials, at most.
SUMMARY_EVERY_S = 0.5
#: How often the controller looks for trials that ``labkeep stop`` asked to stop.
STOP_REQUESTS_EVERY_S = 1.0


@dataclass(frozen=True)
class TrialOutcome:
    """One trial as the controller saw it end."""

    index: int
    number: int | None
    status: RunStatus
    params: dict[str, Any]
    value: float | None
    pruned: bool = False
    #: Every objective's value, in order, when the sweep has several.
    values: tuple[float, ...] | None = None


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
    #: With several objectives: the trials on the Pareto front (instead of one best).
    front: list[TrialOutcome] = field(default_factory=list)


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
    attempts: int = 0
    #: ``labkeep stop`` asked for this trial alone to stop.
    stop_requested: bool = False


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
        retry_failed: int = 0,
        poll_pruning: bool = True,
        inline: bool = False,
    ) -> None:
        self.client = client
        self.retry_failed = retry_failed
        self.run = sweep_run
        self.number = sweep_number
        self.spec = spec
        self.run_trial = run_trial
        self.on_message = on_message
        self.parallel = parallel or spec.parallel
        self.stop = threading.Event()
        self.objective = spec.objective_spec() if spec.objective else None
        self.objectives = spec.objective_specs()
        self.space = spec.distributions()
        self.result = SweepResult(sweep_number, sweep_run.uuid, RunStatus.RUNNING)
        #: False when the trials report their values themselves (:meth:`report`), as the
        #: objective of ``labkeep.sweep`` does from ``run.log``; True: read from the store.
        self.poll_pruning = poll_pruning
        #: With ``parallel`` 1: run each trial on this thread rather than a worker's (the
        #: objective of ``labkeep.sweep``: a trivial trial costs less than two thread switches).
        self.inline = inline and self.parallel == 1
        self._in_flight: dict[int, _Running] = {}
        self._summary_due = 0.0
        self._summary_lock = threading.Lock()
        #: The write a throttled finish put off: due when the throttle lets it, even if the
        #: next trial (on this thread, say) takes minutes.
        self._summary_timer: threading.Timer | None = None
        self._summary_closed = False
        self._next_stop_look = 0.0

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
            directions=[o.direction for o in self.objectives] or ["minimize"],
        )
        distributions = {k: d.to_optuna() for k, d in self.space.items()}
        done: list[dict[str, Any]] = []
        cut_short: list[dict[str, Any]] = []
        index = 0
        for record in self._trial_records():
            index = max(index, int(record.summary.get(TRIAL_KEY, 0) or 0))
            params = trial_params(record)
            if params is None or RETRIED_KEY in record.summary:
                continue  # an attempt that ran again counts through the attempt after it
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
                        params=optuna_params(self.space, params),
                        distributions=distributions,
                        state=optuna.trial.TrialState.PRUNED,
                    )
                )
                continue
            if status in (RunStatus.KILLED, RunStatus.INTERRUPTED) and (
                STOP_REQUEST_KEY not in record.summary
            ):
                cut_short.append(params)
                continue
            outcome = self._outcome(record, params, quiet=True)
            self._count(outcome)
            done.append(params)
            values = _told(outcome)
            study.add_trial(
                optuna.trial.create_trial(
                    params=optuna_params(self.space, params),
                    distributions=distributions,
                    values=values,
                    state=optuna.trial.TrialState.COMPLETE
                    if values is not None
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
            study.enqueue_trial(optuna_params(self.space, params), skip_if_exists=False)
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
        try:
            with ThreadPoolExecutor(self.parallel, thread_name_prefix="labkeep-trial") as pool:
                submit = _run_here if self.inline else pool.submit
                while pending or (launched < remaining and not self.stop.is_set()):
                    while (
                        launched < remaining
                        and len(pending) < self.parallel
                        and not self.stop.is_set()
                    ):
                        trial = study.ask(distributions)
                        values = trial_values(self.space, trial.params)
                        running = _Running(trial, index, values, threading.Event())
                        self._in_flight[index] = running
                        future = submit(self.run_trial, running.params, index, running.stop)
                        pending[future] = running
                        index += 1
                        launched += 1
                    finished, _ = wait(list(pending), timeout=0.2, return_when=FIRST_COMPLETED)
                    for future in finished:
                        running = pending.pop(future)
                        if self._finished_trial(study, running, future):
                            running.attempts += 1
                            running.number = None
                            again = submit(
                                self.run_trial, running.params, running.index, running.stop
                            )
                            pending[again] = running
                        else:
                            self._in_flight.pop(running.index, None)
                    if pending and not self.stop.is_set():
                        self._check_stop_requests()
                    for running in pending.values():
                        if self.stop.is_set():
                            running.stop.set()
                        elif self.spec.pruner is not None and self.poll_pruning:
                            self._check_pruning(running)
        except BaseException:
            self._end_summary()  # Ctrl-C and the like: what ends the sweep writes its end
            raise
        if self.stop.is_set():
            self.result.status = RunStatus.INTERRUPTED
        elif self.result.failed and not (self.result.completed or self.result.pruned):
            self.result.status = RunStatus.FAILED  # not one trial gave the objective a value
        else:
            self.result.status = RunStatus.COMPLETED
        self._close_summary()
        return self.result

    def report(self, index: int, value: float, step: int) -> bool:
        """Tell the pruner trial ``index``'s objective was ``value`` at ``step``; True when
        the pruner stops the trial (from the trial's own thread)."""
        running = self._in_flight.get(index)
        if running is None or self.spec.pruner is None or not math.isfinite(value):
            return False
        if step <= running.last_step:
            return False  # Optuna keeps the first value told for a step
        running.trial.report(value, step)
        running.last_step = step
        if running.trial.should_prune():
            running.pruned_at = step
            return True
        return False

    def pruned(self, index: int) -> None:
        """Trial ``index`` stopped itself as pruned (its objective raised TrialPruned)."""
        running = self._in_flight.get(index)
        if running is not None and running.pruned_at is None:
            running.pruned_at = max(running.last_step, 0)

    def _check_stop_requests(self) -> None:
        """Stop the trials that ``labkeep stop`` asked to stop (a request in the trial run's
        summary: the trial shares its process with others, so no signal can single it
        out). Looks at most once a second."""
        now = time.monotonic()
        if now < self._next_stop_look:
            return
        self._next_stop_look = now + STOP_REQUESTS_EVERY_S
        store = self.client.store
        try:
            asked = store.search_numbers(
                where=f"summary['{STOP_REQUEST_KEY}'] > 0 and status == 'running'",
                parent_uuid=self.run.uuid,
            )
        except LabkeepError:
            return  # no run was ever asked: the key is unknown to the store
        for record in store.get_records(asked) if asked else []:
            running = self._in_flight.get(int(record.summary.get(TRIAL_KEY, -1)))
            if running is not None and not running.stop.is_set():
                running.stop_requested = True
                running.stop.set()

    def _check_pruning(self, running: _Running) -> None:
        """Tell the pruner what the trial logged since the last look; stop it when the
        pruner says so. Looks at most once a second per trial."""
        now = time.monotonic()
        if now < running.next_look or self.objective is None:
            return
        running.next_look = now + 1.0
        store = self.client.store
        if running.number is None:
            try:
                found = store.search_numbers(
                    where=f"summary['{TRIAL_KEY}'] == {running.index}",
                    parent_uuid=self.run.uuid,
                    sort="-number",  # a trial run again: its newest attempt
                    limit=1,
                )
            except LabkeepError:
                return  # no trial has recorded its index yet: the key is unknown to the store
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
    ) -> bool:
        """Tell the study how the trial ended; True when it is to run again instead
        (``retry_failed``)."""
        import optuna

        trial, index, params = running.trial, running.index, running.params
        try:
            number, uuid = future.result()
        except Exception as exc:  # a trial that could not even start
            self.say(f"trial {index} could not run: {exc}")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            self._count(TrialOutcome(index, None, RunStatus.FAILED, params, None))
            return False
        if number is None:
            self.say(f"trial {index} is kept on this machine; its objective cannot be read")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            self._count(TrialOutcome(index, None, RunStatus.FAILED, params, None))
            return False
        record = self.client.store.get_records([number])[0]
        if self._retry(running, record, uuid):
            return True
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
            return False
        if running.stop_requested and stopped:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            self.say(f"trial {index} stopped (run {number}); the sweep goes on")
            self._count(TrialOutcome(index, number, RunStatus.INTERRUPTED, params, None))
            self._record_summary(force=False)
            return False
        if record.info.status in (RunStatus.INTERRUPTED, RunStatus.KILLED):
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            if not self.stop.is_set():
                self.say(
                    f"trial {index} {record.info.status.value} (run {number}); the sweep goes "
                    f"on, and `labkeep sweep resume {self.number}` runs it again"
                )
            return False  # cut short by a stop: it runs again on resume
        outcome = self._outcome(record, params, quiet=False)
        values = _told(outcome)
        if values is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, values)
        self._count(outcome)
        self._record_summary(force=False)
        return False

    def _retry(self, running: _Running, record: RunRecord, uuid: str) -> bool:
        """Whether a failed or killed trial runs again: ``retry_failed`` attempts each, never
        after a stop or a prune. The attempt left behind is marked so that resume skips it."""
        status = record.info.status
        if (
            status not in (RunStatus.FAILED, RunStatus.KILLED)
            or running.attempts >= self.retry_failed
            or running.pruned_at is not None
            or self.stop.is_set()
        ):
            return False
        from labkeep.store._base import WriteBatch

        self.client.store.apply(
            WriteBatch(
                run_uuid=uuid,
                writer=f"sweep-retry-{uuid}",
                position=1,
                summary={RETRIED_KEY: running.attempts + 1},
            )
        )
        self.say(
            f"trial {running.index} {status.value} (run {record.info.number}); running it "
            f"again, attempt {running.attempts + 2} of {self.retry_failed + 1}"
        )
        return True

    def _outcome(self, record: RunRecord, params: dict[str, Any], *, quiet: bool) -> TrialOutcome:
        index = int(record.summary.get(TRIAL_KEY, 0) or 0)
        status = record.info.status
        value = None
        values: tuple[float, ...] | None = None
        if status is RunStatus.COMPLETED and self.objectives:
            found = [(o, o.value(record)) for o in self.objectives]
            lacking = [o for o, v in found if v is None]
            if lacking:
                status = RunStatus.FAILED
                if not quiet:
                    self.say(lacking[0].missing(f"trial {index}", record))
            else:
                values = tuple(v for _, v in found if v is not None)
                value = values[0]
                if len(values) == 1:
                    values = None
        elif status is RunStatus.FAILED and not quiet:
            code = "" if record.info.exit_code is None else f" (exit {record.info.exit_code})"
            self.say(f"trial {index} failed{code}: labkeep show {record.info.number}")
        return TrialOutcome(index, record.info.number, status, params, value, values=values)

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
        if outcome.values is not None:
            scored = [t for t in result.trials if t.values is not None]
            directions = [o.direction for o in self.objectives]
            front = pareto_front([t.values for t in scored if t.values], directions)
            result.front = [scored[i] for i in front]
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

    def _record_summary(self, *, force: bool = True) -> None:
        """Write the counts and the best trial into the sweep run's summary: at the start,
        the end and on a prune, and after a finished trial at most every
        ``SUMMARY_EVERY_S`` (each write is a store transaction of its own, which would cost
        a sweep of quick in-process trials as much as the trials themselves)."""
        with self._summary_lock:
            if self._summary_closed:
                return
            now = time.monotonic()
            if not force and now < self._summary_due:
                if self._summary_timer is None:
                    self._summary_timer = threading.Timer(
                        self._summary_due - now, self._record_summary
                    )
                    self._summary_timer.daemon = True
                    self._summary_timer.start()
                return
            if self._summary_timer is not None:
                self._summary_timer.cancel()
                self._summary_timer = None
            self._summary_due = now + SUMMARY_EVERY_S
            self._write_summary()

    def _close_summary(self) -> None:
        """The last write: nothing put off may reach the sweep run once it ends."""
        self._record_summary()
        self._end_summary()

    def _end_summary(self) -> None:
        with self._summary_lock:
            self._summary_closed = True
            if self._summary_timer is not None:
                self._summary_timer.cancel()
                self._summary_timer = None

    def _write_summary(self) -> None:
        result = self.result
        summary: dict[str, Any] = {
            "trials.completed": result.completed,
            "trials.failed": result.failed,
            "trials.pruned": result.pruned,
            "trials.total": self.spec.max_trials,
        }
        if self.spec.multi_objective:
            summary["pareto.runs"] = [t.number for t in result.front]
            summary["pareto.trials"] = [t.index for t in result.front]
        if result.best_value is not None:
            summary["best.value"] = result.best_value
            summary["best.run"] = result.best_number
            summary["best.params"] = result.best_params
        self.run.summary.update(summary)


def _run_here(
    run_trial: Callable[[dict[str, Any], int, threading.Event], tuple[int | None, str]],
    params: dict[str, Any],
    index: int,
    stop: threading.Event,
) -> Future[tuple[int | None, str]]:
    """``pool.submit`` on this thread: the trial has run when it returns. Ctrl-C and other
    BaseExceptions end the sweep, as they would from the wait on a worker."""
    future: Future[tuple[int | None, str]] = Future()
    try:
        future.set_result(run_trial(params, index, stop))
    except Exception as exc:
        future.set_exception(exc)
    return future


def _told(outcome: TrialOutcome) -> list[float] | None:
    """What Optuna is told a finished trial scored (None: it failed)."""
    if outcome.values is not None:
        return list(outcome.values)
    return None if outcome.value is None else [outcome.value]
