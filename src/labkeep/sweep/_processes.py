"""Sweeps of processes: ``labkeep run`` with a search space, ``labkeep sweep resume|stop``.

Each trial is launched by the runner exactly as ``labkeep run train.py x=0.37`` would launch
it, with ``parent_uuid`` set to the sweep. The controller process handles Ctrl-C and SIGTERM
(``labkeep sweep stop``): the running trials stop, the sweep ends ``interrupted`` and resumes
later. A resumed stretch writes to the sweep run through an attached writer and records the
controller's pid in its summary, so that ``sweep stop`` finds it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkeep.entities import RunStatus
from labkeep.errors import InvalidInputError, RunStateError
from labkeep.sweep._controller import SweepController, SweepResult
from labkeep.sweep._space import Choice, Distribution, Normal
from labkeep.sweep._spec import (
    CONTROLLER_KEY,
    PYTHON_TARGET,
    SPEC_KEY,
    MessageCallback,
    OutputCallback,
    SweepSpec,
    _json_dict,
    _spell_value,
    get_sweep,
    sweep_params,
    trial_summary,
)

if TYPE_CHECKING:
    from labkeep._client import Client
    from labkeep._run import Run
    from labkeep.entities import RunRecord
    from labkeep.runner._launch import LaunchResult, LaunchSpec


def trial_launch_spec(
    spec: SweepSpec,
    params: dict[str, Any],
    index: int,
    sweep_uuid: str,
    sweep_number: int,
    *,
    parallel: int,
    stop: threading.Event,
    on_output: OutputCallback | None = None,
    on_message: MessageCallback | None = None,
) -> LaunchSpec:
    """``labkeep run TARGET FIXED… NAME=VALUE…`` for one trial, as a child run of the sweep."""
    from labkeep.runner._launch import LaunchSpec

    assignments = (*spec.fixed, *(f"{k}={_spell_value(v)}" for k, v in params.items()))
    return LaunchSpec(
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
    from labkeep.runner._launch import launch

    def run_trial(
        params: dict[str, Any], index: int, stop: threading.Event
    ) -> tuple[int | None, str]:
        launch_spec = trial_launch_spec(
            spec,
            params,
            index,
            sweep_uuid,
            sweep_number,
            parallel=parallel,
            stop=stop,
            on_output=on_output,
            on_message=on_message,
        )
        result: LaunchResult = launch(launch_spec, client)
        return result.number, result.uuid

    return run_trial


def start_sweep(
    client: Client,
    spec: SweepSpec,
    *,
    name: str = "",
    notes: str = "",
    on_output: OutputCallback | None = None,
    on_message: MessageCallback | None = None,
    dask: str | None = None,
    retry_failed: int = 0,
) -> SweepResult:
    """Start a sweep of processes and run it to its end (or until a signal stops it).

    ``dask`` is the address of a Dask scheduler whose workers run the trials (see
    ``_dask``); ``retry_failed`` how many times a failed or killed trial runs again.

    >>> spec = plan_sweep(target="train.py", cwd=Path.cwd(), ...)  # doctest: +SKIP
    >>> start_sweep(Client(), spec).best_value  # doctest: +SKIP
    """
    _check_retry(retry_failed)
    _check_launch(client, spec)
    with _cluster(client, spec, dask) as cluster:
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
        return _drive(client, run, number, spec, on_output, on_message, None,
                      resumed=False, cluster=cluster, retry_failed=retry_failed)  # fmt: skip


def _check_retry(retry_failed: int) -> None:
    if retry_failed < 0:
        raise InvalidInputError(f"--retry-failed must be 0 or more, not {retry_failed}")


@contextlib.contextmanager
def _cluster(client: Client, spec: SweepSpec, address: str | None) -> Iterator[Any]:
    """The Dask client of the scheduler at ``address`` (None: trials run here), checked
    against the store and the sweep's code before any run exists, and closed at the end."""
    if address is None:
        yield None
        return
    from labkeep.sweep._dask import check_shippable, check_store_for_dask, connect

    check_store_for_dask(client.location, address)
    check_shippable(spec)
    dask_client = connect(address, client.location)
    try:
        yield dask_client
    finally:
        dask_client.close()


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
    if isinstance(dist, Choice):
        return dist.values[0]
    return dist.value(0.5) if isinstance(dist, Normal) else dist.low


def _registered_number(run: Run) -> int:
    number = run.wait_registered(30)
    if number is None:
        raise RunStateError(
            "the store did not register the sweep run within 30 s; a sweep needs a reachable "
            "store to read its trials back"
        )
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
    cluster: Any = None,
    retry_failed: int = 0,
) -> SweepResult:
    width = parallel or spec.parallel
    try:
        if cluster is None:
            trial = _process_trial(client, spec, run.uuid, number, on_output, on_message, width)
        else:
            from labkeep.sweep._dask import cluster_threads, dask_trial

            # Without --parallel, as many trials at once as the cluster has threads.
            width = parallel or max(spec.parallel, cluster_threads(cluster))
            trial = dask_trial(cluster, client, spec, run.uuid, number)
    except BaseException as exc:
        _end(client, run, RunStatus.FAILED, resumed, error=str(exc))
        raise
    controller = SweepController(
        client, run, number, spec, trial, on_message=on_message, parallel=width,
        retry_failed=retry_failed,
    )  # fmt: skip
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


def resume_sweep(
    client: Client,
    ref: str | int,
    *,
    parallel: int | None = None,
    max_trials: int | None = None,
    on_output: OutputCallback | None = None,
    on_message: MessageCallback | None = None,
    dask: str | None = None,
    retry_failed: int = 0,
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
    _check_retry(retry_failed)
    _check_launch(client, spec)
    with _cluster(client, spec, dask) as cluster:
        run = client.start_run(
            experiment=record.info.experiment,
            attach_uuid=record.info.uuid,
            capture=False,
            system_metrics=None,
        )
        if max_trials is not None:
            run.summary.update({SPEC_KEY: json.dumps(asdict(spec))})
        return _drive(client, run, record.info.number, spec, on_output, on_message, parallel,
                      resumed=True, cluster=cluster, retry_failed=retry_failed)  # fmt: skip


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
