"""``labkeep stop``: end a run that ``labkeep run`` is running, from another terminal.

The run's recorded pid is its ``labkeep run`` process; SIGTERM makes it stop the script (see
``_child.py``) and finish the run as ``interrupted``. If it has not exited after the grace
period it gets SIGKILL, and the run, whose process vanished, is marked ``killed``.

A sweep's trial is different: its recorded pid is the sweep's controller (or the Dask worker
that runs it), which runs other trials too, so a signal would stop them all. ``labkeep stop``
asks for the trial to stop through the store instead (``STOP_REQUEST_KEY`` in its summary);
the controller looks for such requests every second and stops that trial alone, which ends
``interrupted`` while the sweep goes on. Stopping the sweep's own run stops the sweep.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from labkeep.entities import STOP_REQUEST_KEY, SWEEP_SPEC_KEY, TRIAL_KEY, RunStatus
from labkeep.errors import NotFoundError, RunStateError

if TYPE_CHECKING:
    from labkeep._client import Client
    from labkeep.entities import RunInfo

#: Seconds a process may have started after its run's start time and still be its owner.
_START_SLACK_S = 2.0
#: How long a trial may take to see its stop request, beyond the grace its process gets.
_REQUEST_SLACK_S = 5.0


@dataclass(frozen=True)
class StopResult:
    """The run's number and final status, and whether SIGKILL was needed."""

    number: int
    status: RunStatus
    killed: bool


def stop_run(client: Client, ref: str | int, *, grace: float = 10.0) -> StopResult:
    """Stop the running run ``ref`` (number, name, uuid prefix, ``last``) on this host.

    Raises :class:`RunStateError` when it is not running or runs on another host.
    """
    client.recover()
    info = client.store.resolve_run(ref)
    if info.status is not RunStatus.RUNNING:
        raise RunStateError(
            f"run {info.number} is {info.status.value}, not running; nothing to stop"
        )
    if _is_trial(client, info):
        return _request_stop(client, info.uuid, info.number, grace)
    host = socket.gethostname()
    if info.host and info.host != host:
        raise RunStateError(f"run {info.number} runs on host {info.host}; run `labkeep stop` there")
    pid = info.pid
    killed = False
    if pid is not None and _owns_run(pid, info.start_time):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, grace):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            killed = True
            _wait_gone(pid, 5.0)
    client.recover(force=True)  # a process that vanished leaves a killed run
    final = client.store.resolve_run(info.number)
    return StopResult(info.number, final.status, killed)


def _is_trial(client: Client, info: RunInfo) -> bool:
    """Whether the run is a sweep's trial: its summary says so, or, in the moment after it
    started and before its summary reached the store, its parent is a sweep run."""
    record = client.store.get_records([info.number])[0]
    if TRIAL_KEY in record.summary:
        return True
    if not info.parent_uuid:
        return False
    try:
        parent = client.store.resolve_run(info.parent_uuid)
    except NotFoundError:
        return False
    return SWEEP_SPEC_KEY in client.store.get_records([parent.number])[0].summary


def _request_stop(client: Client, uuid: str, number: int, grace: float) -> StopResult:
    """Ask through the store for sweep trial ``number`` to stop, and wait until it has."""
    import secrets

    from labkeep.store._base import WriteBatch

    client.store.apply(
        WriteBatch(
            run_uuid=uuid,
            writer=f"stop-{uuid}-{secrets.token_hex(4)}",
            position=1,
            summary={STOP_REQUEST_KEY: time.time()},
        )
    )
    deadline = time.monotonic() + grace + _REQUEST_SLACK_S
    while True:
        info = client.store.resolve_run(number)
        if info.status is not RunStatus.RUNNING:
            return StopResult(number, info.status, False)
        if time.monotonic() > deadline:
            raise RunStateError(
                f"trial run {number} was asked to stop but still runs; is its sweep's "
                "controller alive? `labkeep sweep stop` stops the whole sweep"
            )
        time.sleep(0.1)


def _owns_run(pid: int, start_time: float) -> bool:
    """Whether ``pid`` is alive and started before its run (so it is not a reused pid)."""
    import psutil

    try:
        created: float = psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return created <= start_time + _START_SLACK_S


def _wait_gone(pid: int, timeout: float) -> bool:
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False
