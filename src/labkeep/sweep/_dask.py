"""Trials on an existing Dask distributed cluster: ``--dask ADDRESS`` (or ``LABKEEP_DASK``).

**The code travels through the store.** Before the first trial the controller keeps the code
of the sweep's directory in the store as blobs, with a manifest (the form of a run's code
snapshot), and each trial's task carries the blobs to its worker. Each trial is one
task: on whichever worker runs it, the task opens the same store, puts there any blob that
machine's store lacks (a PostgreSQL store keeps blobs on each machine's disk), writes the code
into a temporary directory from the store's blobs (``repro.materialise``, as ``labkeep
checkout`` does) and launches the trial there through the runner, exactly as a local trial.
No shared file system is assumed; inputs given by ``--input`` are read by absolute path.

**Which stores.** PostgreSQL or a labkeep server. A SQLite file is one machine's, so it is
refused unless the scheduler's address is a loopback one (127.0.0.1, localhost, ::1) and so is
every worker's: a cluster that can only be on this machine, where every worker sees the path.

**A worker that dies mid-trial.** Dask runs the task again elsewhere (its
``allowed-failures``); the task finds the run the first attempt left, by an attempt token in
the run's summary, and launches nothing. With ``allowed-failures`` 0 the future fails with
``KilledWorker`` instead. Either way the controller marks that run ``killed`` and the sweep
goes on; ``--retry-failed N`` runs it again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from labkeep.entities import RunStatus
from labkeep.errors import InvalidInputError, LabkeepError
from labkeep.sweep._spec import ATTEMPT_KEY, SweepSpec, trial_summary

if TYPE_CHECKING:
    from labkeep._client import Client
    from labkeep.entities import RunInfo
    from labkeep.store._base import Store
    from labkeep.store._uri import StoreLocation

logger = logging.getLogger("labkeep")

DASK_ENV = "LABKEEP_DASK"
#: How long to wait for the scheduler to answer, and for it to have a worker.
CONNECT_TIMEOUT_S = 10.0
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})

TrialRunner = Callable[[dict[str, Any], int, threading.Event], tuple[int | None, str]]


class DaskClusterError(LabkeepError):
    """The Dask scheduler cannot be reached or used."""


def dask_address(given: str | None) -> str | None:
    """``--dask ADDRESS``, else ``LABKEEP_DASK``, else None (trials run here)."""
    value = (given or os.environ.get(DASK_ENV, "")).strip()
    return value or None


def _host(address: str) -> str:
    """The host of a Dask address (``tcp://10.0.0.5:8786``, ``10.0.0.5:8786``)."""
    raw = address if "://" in address else f"tcp://{address}"
    try:
        return (urlsplit(raw).hostname or "").lower()
    except ValueError:
        return ""


def check_store_for_dask(location: StoreLocation, address: str) -> None:
    """Refuse a SQLite store with a scheduler that is not on this machine's loopback."""
    if location.kind == "sqlite" and _host(address) not in LOOPBACK:
        raise InvalidInputError(
            f"the store {location.uri} is a SQLite file on this machine, which the workers of "
            f"the Dask scheduler at {address} cannot share; use a PostgreSQL store or a labkeep "
            "server (--store postgresql://… or http://…)"
        )


def connect(address: str, location: StoreLocation) -> Any:
    """A ``distributed.Client`` of the scheduler at ``address``, with at least one worker;
    one-line :class:`DaskClusterError` when there is none to use."""
    distributed = _distributed()
    try:
        client = distributed.Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except Exception as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise DaskClusterError(
            f"cannot reach the Dask scheduler at {address} ({reason}); start it, or fix "
            f"--dask / {DASK_ENV}"
        ) from None
    try:
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
        except Exception:
            raise DaskClusterError(
                f"the Dask scheduler at {address} has no workers; start some "
                f"(dask worker {address}) and try again"
            ) from None
        if location.kind == "sqlite":
            workers = client.scheduler_info().get("workers", {})
            far = sorted(w for w in workers if _host(w) not in LOOPBACK)
            if far:
                raise InvalidInputError(
                    f"the store {location.uri} is a SQLite file on this machine and worker "
                    f"{far[0]} is not; use a PostgreSQL store or a labkeep server"
                )
    except BaseException:
        client.close()
        raise
    return client


def _distributed() -> Any:
    """The ``distributed`` package (typed loosely: it ships no annotations mypy accepts)."""
    import importlib

    try:
        return importlib.import_module("distributed")
    except ImportError:
        raise InvalidInputError(
            "--dask needs Dask's distributed scheduler: pip install 'labkeep[dask]'"
        ) from None


def cluster_threads(dask_client: Any) -> int:
    """How many tasks the cluster runs at once (its workers' threads)."""
    workers = dask_client.scheduler_info().get("workers", {})
    return max(1, sum(int(w.get("nthreads", 1)) for w in workers.values()))


@dataclass(frozen=True)
class CodeShipment:
    """The sweep's code as the workers get it: the manifest's blob, the links, the target
    and config file inside the code, and every blob's bytes by sha256."""

    manifest: str
    target: str
    config: str | None
    links: list[dict[str, str]] = field(default_factory=list)
    blobs: dict[str, bytes] = field(default_factory=dict)


def _inside(cwd: Path, path: str, what: str) -> str:
    full = (cwd / path).resolve()
    try:
        return full.relative_to(cwd.resolve()).as_posix()
    except ValueError:
        raise InvalidInputError(
            f"the {what} {path} is outside {cwd}; with --dask the trials get the code of the "
            "directory the sweep starts in, so start it from a directory that holds it"
        ) from None


def check_shippable(spec: SweepSpec) -> tuple[str, str | None]:
    """The script and config file as paths inside the sweep's directory (what the workers
    get); a one-line error for one outside it."""
    cwd = Path(spec.cwd)
    target = _inside(cwd, spec.target, "script")
    config = _inside(cwd, spec.config, "config file") if spec.config else None
    return target, config


def ship_code(store: Store, spec: SweepSpec) -> CodeShipment:
    """Keep the code of the sweep's directory in the store and return it for the workers."""
    from labkeep.capture._code import collect_code

    cwd = Path(spec.cwd)
    target, config = check_shippable(spec)
    section, files = collect_code(cwd, keep=[target, *([config] if config else [])])
    blobs: dict[str, bytes] = {}
    entries = []
    for code_file in files:
        data = Path(code_file.abspath).read_bytes()
        sha, size = store.put_bytes(data)
        blobs[sha] = data
        entries.append({"path": code_file.path, "sha256": sha, "size": size,
                        "mode": code_file.mode})  # fmt: skip
    manifest = json.dumps(entries, sort_keys=True).encode()
    manifest_sha, _ = store.put_bytes(manifest)
    blobs[manifest_sha] = manifest
    links = [dict(link) for link in section.get("links") or []]
    return CodeShipment(manifest_sha, target, config, links, blobs)


def _attempt_run(store: Store, sweep_uuid: str, attempt: str) -> RunInfo | None:
    """The run a trial's task started under ``attempt``, if it got that far."""
    from labkeep.query._errors import QueryError

    try:
        found = store.search_numbers(
            where=f"summary['{ATTEMPT_KEY}'] == '{attempt}'", parent_uuid=sweep_uuid, limit=1
        )
    except QueryError:
        return None  # no run has recorded an attempt yet: the key is unknown to the store
    return store.get_records(found)[0].info if found else None


def _mark_killed(store: Store, number: int) -> None:
    info = store.get_records([number])[0].info
    if info.status is RunStatus.RUNNING:
        store.mark_killed([number], [info.heartbeat or time.time()])


def dask_trial(
    dask_client: Any,
    client: Client,
    spec: SweepSpec,
    sweep_uuid: str,
    sweep_number: int,
) -> TrialRunner:
    """How one trial runs on the cluster: a task of :func:`run_trial_task`, waited for here;
    setting ``stop`` stops the trial on its worker."""
    distributed = _distributed()

    # Each task carries the code rather than a scattered copy: scattered data dies with the
    # worker that holds it, and every task after would fail for want of it.
    code = ship_code(client.store, spec)
    location = client.location
    store_uri = location.db_url if location.kind == "sqlite" else location.uri
    spec_json = json.dumps(asdict(spec))
    try:
        dask_client.run(warm_worker, store_uri)
    except Exception as exc:  # a worker that cannot warm up says why on its first trial
        logger.debug("warming the Dask workers failed: %s", exc)

    def run_trial(
        params: dict[str, Any], index: int, stop: threading.Event
    ) -> tuple[int | None, str]:
        attempt = secrets.token_hex(8)
        stop_name = f"labkeep-stop-{attempt}"
        future = dask_client.submit(
            run_trial_task, store_uri, sweep_uuid, sweep_number, spec_json, code, params,
            index, attempt, stop_name, key=f"labkeep-trial-{index}-{attempt}", pure=False,
        )  # fmt: skip
        # Woken by the future itself: a poll would leave the worker idle between trials.
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        told = False
        while not done.wait(0.2):
            if stop.is_set() and not told:
                distributed.Event(stop_name, client=dask_client).set()
                told = True
        try:
            number, uuid, lost = future.result()
        except Exception as exc:
            left = _attempt_run(client.store, sweep_uuid, attempt)
            if left is None:
                raise DaskClusterError(f"its task failed on the Dask cluster: {exc}") from None
            number, uuid, lost = left.number, left.uuid, True
        if lost:
            _mark_killed(client.store, number)
        return number, uuid

    return run_trial


#: What a worker process keeps between its tasks: a task that opened the store, checked the
#: code's blobs and read the sweep's run leaves them to the next trial (each costs a query or
#: a connection, paid between two trials otherwise). Clients are per thread: a worker with
#: several threads runs tasks side by side, and a store connection is not shared.
_worker = threading.local()
_worker_lock = threading.Lock()
#: (store URI, blob sha256) that this worker process has seen in its store.
_blobs_kept: set[tuple[str, str]] = set()
_sweep_infos: dict[tuple[str, str], RunInfo] = {}


def _worker_client(store_uri: str) -> Client:
    """This worker thread's client of ``store_uri``, opened on its first task."""
    from labkeep._client import Client

    clients: dict[str, Client] = _worker.__dict__.setdefault("clients", {})
    client = clients.get(store_uri)
    if client is None:
        client = clients[store_uri] = Client(store_uri)
    return client


def _keep_blobs(store_uri: str, store: Store, code: CodeShipment) -> None:
    """Put into this machine's store every blob of ``code`` it lacks (once per worker)."""
    for sha, data in code.blobs.items():
        if (store_uri, sha) in _blobs_kept:
            continue
        try:
            present = store.blob_path(sha).is_file()
        except LabkeepError:
            present = False
        if not present:
            store.put_bytes(data)
        with _worker_lock:
            _blobs_kept.add((store_uri, sha))


def _sweep_info(store_uri: str, store: Store, sweep_uuid: str) -> RunInfo:
    """The sweep's run, read once per worker (its snapshot's code is what the trials use)."""
    key = (store_uri, sweep_uuid)
    info = _sweep_infos.get(key)
    if info is None:
        info = store.resolve_run(sweep_uuid)
        with _worker_lock:
            _sweep_infos[key] = info
    return info


def warm_worker(store_uri: str) -> None:
    """On each worker, before the first trial: import what a trial runs and open the store
    once. A fresh worker otherwise pays this (about half a second of CPU) inside its first
    trial, beside the other workers' trials on the same cores."""
    import labkeep.repro
    import labkeep.runner._launch
    import labkeep.sweep._processes  # noqa: F401
    from labkeep._client import Client

    Client(store_uri).close()  # imports the store's backend


def run_trial_task(
    store_uri: str,
    sweep_uuid: str,
    sweep_number: int,
    spec_json: str,
    code: CodeShipment,
    params: dict[str, Any],
    index: int,
    attempt: str,
    stop_name: str,
) -> tuple[int | None, str, bool]:
    """On a worker: one trial from the code in the store; returns its run's number and uuid,
    and whether it is a run an earlier attempt of this task left (its worker died)."""
    from labkeep.repro import RunSnapshot, materialise
    from labkeep.runner._launch import launch
    from labkeep.sweep._processes import trial_launch_spec

    client = _worker_client(store_uri)
    store = client.store
    left = _attempt_run(store, sweep_uuid, attempt)
    if left is not None:
        return left.number, left.uuid, True
    _keep_blobs(store_uri, store, code)
    spec = SweepSpec(**json.loads(spec_json))
    snapshot = RunSnapshot(
        store,
        _sweep_info(store_uri, store, sweep_uuid),
        {"code": {"manifest": code.manifest, "links": code.links}},
    )
    stop = threading.Event()
    with (
        tempfile.TemporaryDirectory(prefix="labkeep-trial-") as tmp,
        _stop_from(stop_name, stop),
    ):
        directory = materialise(snapshot, Path(tmp) / "code").directory
        base = trial_launch_spec(
            spec, params, index, sweep_uuid, sweep_number, parallel=1, stop=stop
        )
        launch_spec = replace(
            base,
            target=Path(code.target),
            cwd=directory,
            config=None if code.config is None else Path(code.config),
            inputs=tuple(str(Path(spec.cwd) / i) for i in spec.inputs),
            collect_outputs=False,
            summary={**trial_summary(sweep_number, index, params), ATTEMPT_KEY: attempt},
        )
        result = launch(launch_spec, client)
    return result.number, result.uuid, False


@contextlib.contextmanager
def _stop_from(name: str, stop: threading.Event) -> Iterator[None]:
    """Set ``stop`` when the controller sets the Dask event ``name`` (a sweep stopped)."""
    try:
        distributed = _distributed()
        # The worker's client, taken here in the task's thread: the watcher's thread has none.
        event = distributed.Event(name, client=distributed.get_client())
    except Exception:  # not inside a Dask worker: nothing to watch
        yield
        return
    done = threading.Event()

    def watch() -> None:
        while not done.wait(1.0):
            try:
                if event.is_set():
                    stop.set()
                    return
            except Exception:
                return

    watcher = threading.Thread(target=watch, name="labkeep-trial-stop", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
