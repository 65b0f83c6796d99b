"""The module-level API: ``labkeep.init()`` and thin functions that forward to the active run."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, cast

from labkeep.errors import InvalidInputError, NotFoundError, RunStateError

if TYPE_CHECKING:
    from labkeep._artifacts import VersionedArtifact
    from labkeep._client import Client
    from labkeep._run import ProcessHooks, Run
    from labkeep._views import RunList, RunView
    from labkeep.entities import ModelVersion
    from labkeep.models import ModelInfo

# Everything heavier than the standard library is imported on first use: `import labkeep`
# stays cheap for scripts that only sometimes log.
_lock = threading.Lock()
_active: Run | None = None
_hooks: ProcessHooks | None = None
#: (pid, uuid) of the handed-over run this process adopted: a later init() starts a child
#: run of it instead (the pid tells a forked worker, which may adopt it too, from its parent).
_adopted: tuple[int, str] | None = None
#: Runs that were active when a child run of theirs started (``init(parent=...)``): each
#: is active again once the runs started after it have finished.
_outer: list[Run] = []

#: The run a bridged tool's call started (``labkeep.bridge()``, or a script under
#: ``labkeep run`` calling MLflow before ``labkeep.init()``): the script's own ``init()``
#: afterwards continues it, rather than failing on an active run.
_bridged: Run | None = None

#: The environment variable through which ``labkeep run`` hands its run to the script.
RUN_ID_ENV = "LABKEEP_RUN_ID"
#: The experiment of the handed-over run: an init() naming another one starts a child run.
RUN_EXPERIMENT_ENV = "LABKEEP_RUN_EXPERIMENT"
STORE_ENV = "LABKEEP_HOME"
MODES = ("online", "disabled")
RESUME_MODES = ("allow", "must", "never")


def init(
    experiment: str | None = None,
    *,
    config: Any = None,
    name: str | None = None,
    tags: list[str] | str | None = None,
    notes: str | None = None,
    store: str | os.PathLike[str] | None = None,
    mode: str | None = None,
    capture: bool | None = None,
    code: bool = True,
    inputs: list[str] | None = None,
    system_metrics: float | None = None,
    parent: Run | str | int | None = None,
    group: str | None = None,
    job_type: str | None = None,
    id: str | int | None = None,
    resume: str | None = None,
) -> Run:
    """Start a run (or attach to the one ``labkeep run`` started) and make it the active run.

    Under ``labkeep run``, the script's first ``init()`` of the runner's experiment (``-e``)
    is the runner's run; every other ``init()`` (a script training several models) starts a
    run of its own, a child of the runner's run, which keeps the snapshot and the console.

    ``capture`` records the snapshot (code, git, packages, host; default on,
    ``LABKEEP_CAPTURE=0`` turns it off), ``code=False`` leaves the code files out,
    ``inputs`` fingerprints data files, and ``system_metrics`` is the sampling interval in
    seconds (default 10, ``LABKEEP_SYSTEM_METRICS``; 0 turns it off).

    ``parent`` (a run, its uuid or number) makes a child run; ``group`` and ``job_type`` are
    attributes to query (``labkeep runs --where "group == 'cv-5fold'"``). ``id`` (a uuid or a
    number) or ``name`` with ``resume`` continues a run, as W&B does: ``must`` continues it
    (NotFoundError when there is none), ``allow`` continues it or starts a run with that id
    or name, ``never`` (the default with ``id``) refuses one that exists.

    >>> with labkeep.init(experiment="iris", config={"C": 1.0}) as run:  # doctest: +SKIP
    ...     run.log({"acc": 0.97})
    """
    global _active, _hooks, _adopted, _bridged
    mode = mode or os.environ.get("LABKEEP_MODE") or "online"
    if mode not in MODES:
        raise InvalidInputError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    if resume is not None and resume not in RESUME_MODES:
        raise InvalidInputError(f"resume={resume!r} is not one of {', '.join(RESUME_MODES)}")
    if resume is not None and id is None and not name:
        raise InvalidInputError("resume= needs the run: give id= (a uuid or number) or name=")
    with _lock:
        if _bridged is not None and _bridged is _active and not _bridged.finished:
            run, _bridged = _bridged, None
            if (experiment is None or experiment == run.experiment) and (
                parent is None and id is None and resume is None and mode != "disabled"
            ):
                _continue(run, config, tags, notes)
                return run
            parent = parent if parent is not None else run  # its own run, inside that one
        nested = parent is not None and _active is not None and not _active.finished
        if _active is not None and not _active.finished and not nested:
            raise RunStateError(
                f"run {_active.uuid[:8]} is still active in this process: call finish() on it first"
            )
        if mode == "disabled":
            from labkeep._disabled import DisabledRun

            # The stand-in has a Run's methods, so labkeep.log() & co. forward to it too.
            _active = cast("Run", DisabledRun(experiment or "default", config))
            return _active
        from labkeep._client import Client
        from labkeep._run import ProcessHooks, iter_tags

        if parent is not None and not isinstance(parent, str | int):
            # A child of a run object lives where its parent does, in its experiment.
            store = parent.store_uri if store is None else store
            experiment = experiment or parent.experiment
        handed = os.environ.get(RUN_ID_ENV) or None
        handed_experiment = os.environ.get(RUN_EXPERIMENT_ENV) or None
        experiment = (
            experiment or handed_experiment or os.environ.get("LABKEEP_EXPERIMENT") or "default"
        )
        attach = parent_uuid = None
        explicit: str | int | None = None
        if isinstance(parent, str | int):
            explicit = parent
        elif parent is not None:
            parent_uuid = parent.uuid  # perhaps not in the store yet: no need to look
        elif handed is not None and id is None and resume is None:
            if _adopted != (os.getpid(), handed) and handed_experiment in (None, experiment):
                attach = handed
            else:
                parent_uuid = handed
        if (parent_uuid is not None and parent is None) or nested:
            # A child's snapshot and system metrics are its parent's: the same process.
            capture = False if capture is None else capture
            system_metrics = 0 if system_metrics is None else system_metrics
        store_uri = store if store is not None else os.environ.get(STORE_ENV) or None
        client = Client(store_uri)
        if explicit is not None:
            parent_uuid = client.store.resolve_run(explicit).uuid
        taken = new_uuid = None
        if id is not None or resume is not None:
            ref: str | int = id if id is not None else name or ""
            taken = client.find_resumable(ref, experiment=experiment, by_name=id is None)
            how = resume or "never"
            if taken is not None and how == "never":
                raise RunStateError(
                    f"run {taken.number} ({taken.uuid[:8]}) already exists: "
                    "resume='allow' or 'must' continues it"
                )
            if taken is None and how == "must":
                raise NotFoundError(
                    f"no run {ref!r} to resume in {client.location.uri}: "
                    "resume='allow' starts it when it does not exist"
                )
            if taken is None and id is not None:
                new_uuid = _new_run_id(id)
        run = client.start_run(
            experiment=experiment,
            name=name or "",
            config=config,
            tags=iter_tags(tags),
            notes=notes or "",
            attach_uuid=attach,
            parent_uuid=parent_uuid,
            capture=_env_flag("LABKEEP_CAPTURE", True) if capture is None else capture,
            code=code,
            inputs=inputs,
            system_metrics=_env_interval("LABKEEP_SYSTEM_METRICS", 10.0)
            if system_metrics is None
            else (system_metrics or None),
            group=group,
            job_type=job_type,
            resume=taken,
            new_uuid=new_uuid,
        )
        if nested and _active is not None:
            _outer.append(_active)
        if attach is not None:
            _adopted = (os.getpid(), attach)
        elif parent_uuid is not None and not capture:
            for path in inputs or ():
                run.use_input(path)
        _active = run
        if _hooks is None:
            _hooks = ProcessHooks()
        if nested:
            _hooks.track(run)  # ends at exit with its parent, if left open
        else:
            _hooks.install(run)
        return run


def bridge_run() -> Run:
    """The run a bridged tool's call records into: the active one, else a run ``init()``
    starts (or attaches, under ``labkeep run``) that the script's own ``init()`` continues."""
    global _bridged
    run = active_run()
    if run is None:
        run = init()
        _bridged = run
    return run


def _continue(run: Run, config: Any, tags: list[str] | str | None, notes: str | None) -> None:
    """What the script's ``init()`` gives a run a bridged call started before it."""
    from labkeep._run import iter_tags

    if config:
        run.config.update(config)
    found = list(iter_tags(tags))
    if found:
        run.tags.add(*found)
    if notes:
        run.notes = notes


def _new_run_id(ref: str | int) -> str:
    """The uuid a run started by ``init(id=ref, resume="allow")`` gets: ``ref`` itself."""
    import uuid

    try:
        return str(uuid.UUID(str(ref)))
    except ValueError:
        raise InvalidInputError(
            f"id={ref!r} names no run and cannot be a new run's id: give a uuid"
        ) from None


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


def _env_interval(name: str, default: float) -> float | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise InvalidInputError(
            f"{name}={value!r} is not a number of seconds (0 turns it off)"
        ) from None
    return seconds if seconds > 0 else None


def seed(n: int) -> dict[str, Any]:
    """Seed random, numpy and torch (those installed) with ``n`` and record it in the active run.

    >>> labkeep.seed(42)  # doctest: +SKIP
    """
    from labkeep.capture import seed_everything

    seeded = seed_everything(n)
    run = active_run()
    if run is not None:
        run.record_seed(seeded)
    return seeded


def use_input(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Fingerprint an input of the active run (see :meth:`Run.use_input`)."""
    return _require_run().use_input(path)


def active_run() -> Run | None:
    """The run this process is logging to, if any."""
    global _active
    run = _active
    if run is not None and run.finished and _outer:
        with _lock:
            while _outer and _active is not None and _active.finished:
                _active = _outer.pop()
            run = _active
    return run if run is not None and not run.finished else None


def release(run: Run) -> None:
    """Stop treating ``run`` as this process's active run without finishing it: autolog
    ends the runs it started in the background, once their model is saved, while the script
    goes on (and may start a run of its own)."""
    global _active
    with _lock:
        if _active is run:
            _active = _outer.pop() if _outer else None


def _require_run() -> Run:
    run = active_run()
    if run is None:
        raise RunStateError("no active run: call labkeep.init() first")
    return run


def log(data: dict[str, Any], step: int | None = None) -> None:
    """Log metrics to the active run (see :meth:`Run.log`)."""
    _require_run().log(data, step)


def finish(status: str | None = None) -> None:
    """Finish the active run."""
    _require_run().finish(status)


def log_artifact(
    path: str | os.PathLike[str],
    name: str | None = None,
    *,
    volatile: bool = False,
    type: str | None = None,
) -> str:
    """Store a file as an artifact of the active run (``volatile``: not part of a verdict;
    ``type``: a new version of the named artifact ``name``, see :meth:`Run.log_artifact`)."""
    return _require_run().log_artifact(path, name, volatile=volatile, type=type)


def use_artifact(ref: str, *, store: str | os.PathLike[str] | None = None) -> VersionedArtifact:
    """A version of a named artifact (``"train-set:latest"``, ``"train-set:v1"``, an alias),
    recorded as used by the active run when there is one.

    >>> data = labkeep.use_artifact("train-set:latest")  # doctest: +SKIP
    >>> data.download()                                  # doctest: +SKIP
    """
    run = active_run()
    if run is not None and store is None:
        return run.use_artifact(ref)
    from labkeep._artifacts import VersionedArtifact, resolve
    from labkeep._client import Client

    client = Client(store)
    return VersionedArtifact(client.store, resolve(client.store, ref), client.location.cache_dir)


def _registry_client(store: str | os.PathLike[str] | None) -> Client:
    """The store of the registry: ``store``, else the active run's (flushed, so that a model
    it just logged is there), else the default."""
    from labkeep._client import Client

    run = active_run()
    if store is None and run is not None:
        run.flush()
        return Client(run.store_uri)
    return Client(store)


def register_model(
    model_uri: str,
    name: str,
    *,
    description: str = "",
    tags: Mapping[str, str] | None = None,
    store: str | os.PathLike[str] | None = None,
) -> ModelVersion:
    """Register a run's model (``runs:/RUN/NAME``) as the next version of the registered
    model ``name`` (created with version 1 if new).

    >>> labkeep.register_model("runs:/7/model", "iris-clf").version  # doctest: +SKIP
    1
    """
    from labkeep._registry import register_model as register

    client = _registry_client(store)
    return register(client, model_uri, name, description=description, tags=tags)


def set_alias(
    name: str, alias: str, version: int, *, store: str | os.PathLike[str] | None = None
) -> None:
    """Point an alias of a registered model at one of its versions, moving it if it was set.

    >>> labkeep.set_alias("iris-clf", "production", version=1)  # doctest: +SKIP
    """
    _registry_client(store).store.set_model_alias(name, alias, version)


def delete_alias(name: str, alias: str, *, store: str | os.PathLike[str] | None = None) -> None:
    """Remove an alias of a registered model."""
    _registry_client(store).store.delete_model_alias(name, alias)


def log_model(model: Any, name: str = "model", *, input_example: Any = None) -> ModelInfo:
    """Store a model with the active run (see :meth:`labkeep.Run.log_model`)."""
    return _require_run().log_model(model, name, input_example=input_example)


class _ActiveDict(MutableMapping[str, Any]):
    """``labkeep.config`` / ``labkeep.summary``: the active run's, whichever run that is."""

    def __init__(self, attr: str) -> None:
        self._attr = attr

    def _target(self) -> MutableMapping[str, Any]:
        target: MutableMapping[str, Any] = getattr(_require_run(), self._attr)
        return target

    def __getitem__(self, key: str) -> Any:
        return self._target()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._target()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._target()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._target())

    def __len__(self) -> int:
        return len(self._target())

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._target().update(*args, **kwargs)

    def __repr__(self) -> str:
        run = active_run()
        return f"<labkeep.{self._attr} of {'no active run' if run is None else run.uuid[:8]}>"


config = _ActiveDict("config")
summary = _ActiveDict("summary")


def get_run(ref: str | int, *, store: str | os.PathLike[str] | None = None) -> RunView:
    """A stored run by number, name, uuid prefix or ``"last"``.

    >>> labkeep.get_run(3).metrics["acc"].max  # doctest: +SKIP
    """
    from labkeep._client import Client

    return Client(store).get_run(ref)


def runs(
    experiment: str | None = None,
    *,
    where: str | None = None,
    sort: str | list[str] | None = None,
    limit: int | None = None,
    offset: int = 0,
    include_deleted: bool = False,
    store: str | os.PathLike[str] | None = None,
) -> RunList:
    """The runs that match the query ``where``, ordered by ``sort`` (newest first by
    default; runs without a sort key last), lazily: nothing is read before first use.

    The query language is the CLI's: ``metrics.loss < 0.2 and params.lr >= 1e-3``,
    ``status == 'failed' or 'baseline' in tags``, bare names (``loss < 0.2``) mean a param,
    else a metric. A malformed query raises :class:`labkeep.query.QueryError` here, an
    unknown key on first use.

    >>> runs = labkeep.runs(where="metrics.loss < 0.2", experiment="mnist",
    ...                     sort="metrics.loss", limit=50)  # doctest: +SKIP
    >>> runs.to_pandas()  # doctest: +SKIP
    """
    from labkeep._client import Client

    return Client(store).runs(
        experiment,
        where=where,
        sort=sort,
        limit=limit,
        offset=offset,
        include_deleted=include_deleted,
    )
