"""The live run: what ``labkeep.init()`` returns and training code logs to.

Everything a run logs goes through its journal (see ``_journal``); a background ingester
moves it into the store. ``log()`` only packs a record into shared memory.
"""

from __future__ import annotations

import atexit
import functools
import logging
import operator
import os
import signal
import sys
import threading
import time
import traceback
import weakref
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from labkeep import _journal as j
from labkeep._media import Media, is_media
from labkeep._values import (
    MAX_INT64,
    MIN_INT64,
    check_key,
    check_keys,
    check_metric,
    check_text,
    flatten,
    short_repr,
)
from labkeep.entities import RunStatus
from labkeep.errors import InvalidInputError, RunStateError

if TYPE_CHECKING:
    from labkeep._artifacts import VersionedArtifact
    from labkeep._client import Client
    from labkeep._ingest import RunIngester
    from labkeep._snapshot import SnapshotRecorder
    from labkeep.capture import SystemMonitor
    from labkeep.models import ModelInfo

logger = logging.getLogger(__name__)
#: How long ``finish()`` waits for the store to take everything the run logged.
FINISH_TIMEOUT_S = 120.0
#: How long ``finish()`` waits for a labkeep server that has not yet taken a single batch of
#: the run (down, or silent): its journal is kept for ``labkeep sync`` instead.
UNANSWERED_FINISH_TIMEOUT_S = 5.0
_time = time.time
#: A metric record counts its keys in 16 bits.
MAX_KEYS_PER_LOG = 65535
_FLOAT = float
_FLOATS = {float}
#: The fewest keys a ``log()`` call must have for its key order to be remembered.
_SAME_KEYS_MIN = 16


class _JournalDict(MutableMapping[str, Any]):
    """A dict whose writes are journalled (``run.config``, ``run.summary``)."""

    def __init__(self, run: Run, rtype: int, what: str) -> None:
        self._run = run
        self._rtype = rtype
        self._what = what
        self._data: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __delitem__(self, key: str) -> None:
        raise InvalidInputError(
            f"{self._what} values cannot be deleted once logged: overwrite {key!r}"
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"{self._what}({self._data!r})"

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Take a dict, an argparse Namespace or a dataclass (nested ones flatten to dotted keys)."""
        values: dict[str, Any] = {}
        for arg in args:
            values.update(flatten(arg))
        values.update(flatten(kwargs))
        if values:
            self._run._write_json(self._rtype, values)
            self._data.update(values)


class _Tags:
    """The run's tags: a set-like view whose changes are journalled."""

    def __init__(self, run: Run) -> None:
        self._run = run
        self._tags: list[str] = []

    def add(self, *tags: str) -> None:
        new = [check_key(t, "tag") for t in tags if t not in self._tags]
        if new:
            self._run._write_json(j.T_TAGS, {"add": new})
            self._tags.extend(new)

    def remove(self, *tags: str) -> None:
        gone = [t for t in tags if t in self._tags]
        if gone:
            self._run._write_json(j.T_TAGS, {"remove": gone})
            self._tags = [t for t in self._tags if t not in gone]

    def __contains__(self, tag: object) -> bool:
        return tag in self._tags

    def __iter__(self) -> Iterator[str]:
        return iter(self._tags)

    def __len__(self) -> int:
        return len(self._tags)

    def __repr__(self) -> str:
        return f"tags({self._tags!r})"


class Run:
    """A live run. Use it as a context manager, or call :meth:`finish`.

    >>> with labkeep.init(experiment="iris", config={"C": 1.0}) as run:  # doctest: +SKIP
    ...     run.log({"loss": 0.3}, step=0)

    Runs are made by :meth:`Client.start_run <labkeep._client.Client.start_run>` (what
    ``labkeep.init()``, ``labkeep run`` and sweeps call), which opens the run's journal and
    ingester and hands them over here; from then on the run owns them, and :meth:`finish`
    drains and closes them. Constructing it does no I/O.
    """

    def __init__(
        self,
        client: Client,
        journal: j.RunJournal,
        ingester: RunIngester,
        *,
        uuid: str,
        experiment: str,
        name: str,
        attached: bool,
        notes: str = "",
        first_step: int = 0,
        first_system_step: int = 0,
    ) -> None:
        self._client = client
        self._journal = journal
        self._ingester = ingester
        self.uuid = uuid
        self.experiment = experiment
        self._name = name
        self.attached = attached
        self.config = _JournalDict(self, j.T_PARAMS, "config")
        self.summary = _JournalDict(self, j.T_SUMMARY, "summary")
        self.tags = _Tags(self)
        self._notes = notes
        self._key_ids: dict[str, int] = {}
        #: The keys of the last wide ``log()`` call, in its order, and their ids.
        self._last_names: tuple[str, ...] = ()
        self._last_ids: list[Any] = []
        self._step = first_step
        self._finished = False
        self._status: RunStatus = RunStatus.RUNNING
        self._monitor: SystemMonitor | None = None
        self._snapshot: SnapshotRecorder | None = None
        self._key_lock = threading.Lock()
        self._sys_step = first_system_step
        #: The kind of media each media key logged holds (a key holds one kind, never numbers).
        self._media_kinds: dict[str, str] = {}
        self._finish_hooks: list[Callable[[], None]] = []
        _UNDRAINED.add(self)

    # -- identity ----------------------------------------------------------------------
    @property
    def number(self) -> int:
        """The run's short number in its store (waits for the store to register the run)."""
        number = self.wait_registered(60)
        if number is None:
            raise RunStateError(
                f"the store has not registered run {self.uuid} yet: is it reachable?"
            )
        return number

    def wait_registered(self, timeout: float) -> int | None:
        """The run's number once the store has registered it, waiting at most ``timeout``
        seconds (0: not at all); None when it has not (an unreachable store: the run waits in
        its journal for ``labkeep sync``).

        >>> run.wait_registered(5)  # doctest: +SKIP
        12
        """
        if self._ingester.number is None and timeout > 0:
            self._ingester.wake()
            self._ingester.registered.wait(timeout)
        return self._ingester.number

    @property
    def name(self) -> str:
        if not self._name:
            self._name = self._client.store.resolve_run(self.number).name
        return self._name

    @property
    def status(self) -> RunStatus:
        return self._status

    @property
    def store_uri(self) -> str:
        return self._client.location.uri

    @property
    def finished(self) -> bool:
        """Whether :meth:`finish` was called (the run takes no more writes)."""
        return self._finished

    # -- logging -----------------------------------------------------------------------
    def log(self, data: dict[str, Any], step: int | None = None) -> None:
        """Log metric values at ``step`` (the next step when omitted), and media:
        :class:`labkeep.Image`, :class:`labkeep.Histogram`, :class:`labkeep.Table` values (or
        lists of one kind of them), read back with ``RunView.media(key)``.

        Out-of-order and repeated steps are kept as logged (media logged again at a step
        replace what that key held there). Returns without touching the database; what it
        handed over survives a crash of this process. Media content goes to the store's
        blob store first, once per distinct content.

        >>> run.log({"loss": 0.3, "samples": labkeep.Image(pixels)}, step=3)  # doctest: +SKIP
        """
        if step is None:
            step = self._step
            if step > MAX_INT64:
                step = self._check_step(step)
        elif type(step) is not int or not MIN_INT64 <= step <= MAX_INT64:
            step = self._check_step(step)
        if type(data) is not dict and not isinstance(data, Mapping):
            raise InvalidInputError(
                f"log() takes a dict of metric values, not a {type(data).__name__} "
                f"{short_repr(data)}: log({{'loss': 0.1}})"
            )
        # The step counter moves only once the call is accepted: a refused value uses none.
        ids = self._key_ids
        if len(data) == 1:  # the most common call, kept short
            for key, value in data.items():
                if type(value) is not _FLOAT and is_media(value):
                    self._write_media(self._store_media({key: value}), step)
                    self._step = step + 1
                    return
                kid = ids.get(key)
                if kid is None:
                    kid = self._define_key(key)
                if type(value) is not _FLOAT:
                    value = check_metric(key, value)
                try:
                    self._journal.append_metric(_time(), step, kid, value)
                except (ValueError, TypeError):
                    self._raise_if_finished()
                    raise
            self._step = step + 1
            return
        if len(data) > MAX_KEYS_PER_LOG:
            raise InvalidInputError(
                f"log() got {len(data):,} keys in one call: log at most {MAX_KEYS_PER_LOG:,} "
                "at a time (split the dict)"
            )
        if len(data) >= _SAME_KEYS_MIN and tuple(data) == self._last_names:
            # The keys of the previous call, in its order (a wide run logs one dict shape
            # every step): their ids are known, and floats need no check.
            values = list(data.values())
            if set(map(type, values)) == _FLOATS:
                row: list[Any] = [0.0] * (2 * len(values))
                row[::2] = self._last_ids
                row[1::2] = values
                try:
                    self._journal.append_metrics(_time(), step, row)
                except (ValueError, TypeError):
                    self._raise_if_finished()
                    raise
                self._step = step + 1
                return
        if not data.keys() <= ids.keys():
            # Define the call's new keys together: one journal record, not one a key.
            self._define_keys(
                [
                    key
                    for key, value in data.items()
                    if key not in ids and (type(value) is _FLOAT or not is_media(value))
                ]
            )
        flat: list[Any] = []
        append = flat.append
        media: dict[str, Any] | None = None
        for key, value in data.items():
            if type(value) is not _FLOAT and is_media(value):
                if media is None:
                    media = {}
                media[key] = value
                continue
            kid = ids.get(key)
            if kid is None:
                kid = self._define_key(key)
            append(kid)
            append(value if type(value) is _FLOAT else check_metric(key, value))
        # Media blobs are stored before anything is journalled: a refusal leaves no record.
        records = None if media is None else self._store_media(media)
        if flat:
            try:
                self._journal.append_metrics(_time(), step, flat)
            except (ValueError, TypeError):
                self._raise_if_finished()
                raise
        if records is not None:
            self._write_media(records, step)
        elif len(data) >= _SAME_KEYS_MIN:
            self._last_names, self._last_ids = tuple(data), flat[::2]
        self._step = step + 1

    def _store_media(self, media: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
        """Check media keys and store their content as blobs; what ``_write_media`` journals."""
        self._raise_if_finished()
        checked: list[tuple[str, list[Media]]] = []
        for key, value in media.items():
            check_key(key, "media key")
            items: list[Media] = [value] if isinstance(value, Media) else list(value)
            kinds = sorted({item.kind for item in items})
            if len(kinds) > 1:
                raise InvalidInputError(
                    f"log() got {' and '.join(kinds)} in one list under {key!r}: log each kind "
                    "under a key of its own"
                )
            if key in self._key_ids:
                raise InvalidInputError(
                    f"{key!r} holds numbers in this run: log the {kinds[0]} under another key"
                )
            known = self._media_kinds.get(key)
            if known is not None and known != kinds[0]:
                raise InvalidInputError(
                    f"{key!r} holds {known} media in this run: log the {kinds[0]} under another key"
                )
            checked.append((key, items))
        put = self._client.store.put_bytes
        stored = []
        for key, items in checked:
            entries = []
            for item in items:
                sha, size = put(item.data)
                entries.append({"kind": item.kind, "sha256": sha, "size": size, "meta": item.meta})
            stored.append((key, entries))
        return stored

    def _write_media(self, records: list[tuple[str, list[dict[str, Any]]]], step: int) -> None:
        now = _time()
        for key, entries in records:
            self._write_json(j.T_MEDIA, {"key": key, "step": step, "time": now, "items": entries})
            self._media_kinds[key] = entries[0]["kind"]

    def log_rows(self, rows: list[tuple[int, list[tuple[str, float]]]]) -> None:
        """``log(dict(pairs), step)`` for each ``(step, pairs)`` row, in one go: what the runner
        calls with the scalars a script printed (floats, many steps a second). Each key's
        points become one journal record. A key may appear twice in a row: both are kept.

        >>> run.log_rows([(0, [("loss", 0.9)]), (1, [("loss", 0.7), ("acc", 0.5)])])  # doctest: +SKIP
        """
        if not rows:
            return
        columns: dict[str, tuple[array[int], array[float]]] = {}
        last = self._step - 1
        for step, pairs in rows:
            if not MIN_INT64 <= step <= MAX_INT64:
                # A step a script printed that no store can hold: its scalars are dropped,
                # and the run goes on.
                logger.warning("scalars at step %s dropped: past 64-bit steps", short_repr(step))
                continue
            last = step
            for key, value in pairs:
                column = columns.get(key)
                if column is None:
                    column = columns[key] = (array("q"), array("d"))
                column[0].append(step)
                column[1].append(value if type(value) is _FLOAT else check_metric(key, value))
        now = _time()
        ids = self._key_ids
        for key, (steps, values) in columns.items():
            kid = ids.get(key)
            if kid is None:
                kid = self._define_key(key)
            try:
                self._journal.append_metric_column(now, kid, steps, values)
            except (ValueError, TypeError):
                self._raise_if_finished()
                raise
        self._step = last + 1

    def _raise_if_finished(self) -> None:
        if self._finished:
            raise RunStateError(f"run {self.uuid} is finished: start a new run to log more")

    def _check_step(self, step: Any) -> int:
        if isinstance(step, bool) or not hasattr(step, "__index__"):
            raise InvalidInputError(f"step {short_repr(step)} is not an integer: pass an int step")
        number = operator.index(step)
        if not MIN_INT64 <= number <= MAX_INT64:
            raise InvalidInputError(
                f"step {short_repr(number)} is beyond 64-bit steps (±9.2e18): pass a smaller step"
            )
        return number

    def _refuse_media_keys(self, keys: Iterable[str]) -> None:
        """A key that holds media takes no numbers."""
        for key in keys if self._media_kinds else ():
            if key in self._media_kinds:
                raise InvalidInputError(
                    f"{key!r} holds {self._media_kinds[key]} media in this run: log numbers "
                    "under another key"
                )

    def _define_key(self, key: str) -> int:
        check_key(key, "metric key")
        self._refuse_media_keys((key,))
        self._raise_if_finished()
        with self._key_lock:  # the system monitor defines keys from its own thread
            kid = self._key_ids.get(key)
            if kid is None:
                kid = len(self._key_ids)
                self._journal.append_key(kid, key)
                self._key_ids[key] = kid
        return kid

    def _define_keys(self, keys: list[str]) -> None:
        """Define many new metric keys at once, as one journal record (a wide run's first
        ``log()`` defines tens of thousands)."""
        if len(keys) < 2:
            for key in keys:
                self._define_key(key)
            return
        check_keys(keys, "metric key")
        self._refuse_media_keys(keys)
        self._raise_if_finished()
        with self._key_lock:  # the system monitor defines keys from its own thread
            ids = self._key_ids
            new = [key for key in keys if key not in ids]
            first = len(ids)
            if new:
                self._journal.append_keys(first, new)
                ids.update(zip(new, range(first, first + len(new)), strict=True))

    def _log_system(self, sample: dict[str, float]) -> None:
        """System metrics: their own step counter, so the user's steps are not disturbed."""
        if self._finished:
            return
        flat: list[Any] = []
        for key, value in sample.items():
            flat.append(self._key_ids.get(key) if key in self._key_ids else self._define_key(key))
            flat.append(float(value))
        if flat:
            self._journal.append_metrics(_time(), self._sys_step, flat)
            self._sys_step += 1

    def log_output(self, groups: list[list[Any]]) -> None:
        """Journal console lines a tracked script printed: ``[[stream, time, [text, ...]], ...]``
        (what ``labkeep run`` records; ``labkeep show --output`` reads them back)."""
        self._write_json(j.T_OUTPUT, {"groups": groups})

    def monitor_system(self, interval: float, pid: int | None = None) -> None:
        """Sample system metrics (CPU, memory, GPU) every ``interval`` seconds until the run
        finishes: of this process, or of ``pid``'s process tree (a script ``labkeep run``
        started). They have their own step counter, apart from the run's steps."""
        from labkeep.capture import SystemMonitor

        if self._monitor is not None:
            self._monitor.stop()
        self._monitor = SystemMonitor(self._log_system, interval=interval, pid=pid)
        self._monitor.start()

    def capture_snapshot(
        self,
        *,
        cwd: Path,
        argv: list[str],
        entry_point: str | None,
        code: bool = True,
        inputs: list[str] | None = None,
    ) -> None:
        """Capture what reproduces the run (code, git state, packages, host, inputs) on a
        thread; :meth:`finish` waits for it. Inputs and seeds recorded later are added."""
        from labkeep._snapshot import SnapshotRecorder

        self._snapshot = SnapshotRecorder(
            self._client.store,
            lambda data: self._write_json(j.T_SNAPSHOT, data),
            cwd=cwd,
            argv=argv,
            entry_point=entry_point,
            cache_dir=self._client.location.cache_dir,
            code=code,
            inputs=inputs,
        )
        self._snapshot.start()

    def set_snapshot_value(self, key: str, value: Any) -> None:
        """Record ``key`` in the run's snapshot (``labkeep run`` records the command that
        reruns the script); nothing when this writer captures no snapshot."""
        if self._snapshot is not None:
            self._snapshot.set(key, value)

    def set_snapshot_argv(self, argv: list[str]) -> None:
        """The command line turned out otherwise than at the start (flags ``labkeep run``
        injected once the script's parser was known): record this one in the snapshot."""
        if self._snapshot is not None:
            self._snapshot.set_argv(argv)

    def use_input(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Fingerprint an input file or directory; ``labkeep rerun`` checks it is unchanged.

        >>> run.use_input("data/train.csv")  # doctest: +SKIP
        """
        from labkeep.capture import fingerprint_input

        fingerprint = fingerprint_input(path, self._client.location.cache_dir)
        if self._snapshot is not None:
            self._snapshot.add_input(fingerprint)
        else:  # attached to a run whose owner keeps the snapshot
            self._write_json(j.T_SNAPSHOT_ADD, {"inputs": [fingerprint]})
        return fingerprint

    def record_seed(self, seeded: dict[str, Any]) -> None:
        if self._snapshot is not None:
            self._snapshot.add_seed(seeded)
        else:
            self._write_json(j.T_SNAPSHOT_ADD, {"seeds": [seeded]})

    def _write_json(self, rtype: int, value: Any) -> None:
        if self._finished:
            raise RunStateError(f"run {self.uuid} is finished: start a new run to change it")
        self._journal.append_json(rtype, value)

    @property
    def notes(self) -> str:
        return self._notes

    @notes.setter
    def notes(self, text: str) -> None:
        self._write_json(j.T_NOTES, check_text(text, "notes"))
        self._notes = text

    def log_artifact(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        kind: str = "output",
        *,
        volatile: bool = False,
        type: str | None = None,
    ) -> str:
        """Store a file (once per content, by sha256) as an artifact of this run; return its name.

        ``volatile=True`` marks an output that differs on every run by design (a timestamp,
        a log): ``labkeep rerun --verify`` keeps it but leaves it out of the verdict. The
        names are kept in the snapshot's ``volatile`` list (a directory as ``name/``).

        With ``type`` (``"dataset"``, ``"model"``…), the file or directory becomes a version of
        the named artifact ``name``: the version it has when the content is the same, else
        the next (``v0``, ``v1``…); the return is its label, ``NAME:vN``, which
        :meth:`use_artifact` takes.

        >>> run.log_artifact("logs/progress.txt", volatile=True)  # doctest: +SKIP
        'progress.txt'
        >>> run.log_artifact("data/", name="train-set", type="dataset")  # doctest: +SKIP
        'train-set:v0'
        """
        if type is not None:
            return self._log_versioned(Path(path), name, type)
        source = Path(path)
        if source.is_dir():
            dir_name = name or source.name
            children = sorted(p for p in source.rglob("*") if p.is_file())
            names = [
                _artifact_name(f"{dir_name}/{child.relative_to(source).as_posix()}", kind)
                for child in children
            ]
            # Sent several at a time: to object storage or a server each file is a round
            # trip or two, which one at a time would leave the link idle.
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=_PARALLEL_PUTS) as pool:
                stored = list(pool.map(self._client.store.put_blob, children))
            for artifact_name, (sha, size) in zip(names, stored, strict=True):
                self._write_artifact(artifact_name, sha, size, kind)
            if volatile:
                self._write_json(j.T_SNAPSHOT_ADD, {"volatile": [dir_name + "/"]})
            return dir_name
        if not source.is_file():
            raise InvalidInputError(
                f"artifact {str(path)!r} does not exist: give the path of a file"
            )
        artifact_name = _artifact_name(name or source.name, kind)
        self._store_file(source, artifact_name, kind)
        if volatile:
            self._write_json(j.T_SNAPSHOT_ADD, {"volatile": [artifact_name]})
        return artifact_name

    def _write_artifact(self, artifact_name: str, sha: str, size: int, kind: str) -> None:
        self._write_json(
            j.T_ARTIFACT,
            {"path": artifact_name, "sha256": sha, "size": size, "kind": kind, "created": _time()},
        )

    def _store_file(self, source: Path, artifact_name: str, kind: str) -> tuple[str, int]:
        sha, size = self._client.store.put_blob(source)
        self._write_artifact(artifact_name, sha, size, kind)
        return sha, size

    def _log_versioned(self, source: Path, name: str | None, type: str) -> str:
        from labkeep._artifacts import artifact_files
        from labkeep._values import check_registry_name
        from labkeep.entities import ArtifactFile

        self._raise_if_finished()
        name = check_registry_name(name or source.name, "artifact name")
        type = check_registry_name(type, "artifact type")
        kind = type if len(type) <= 16 else "artifact"
        found = list(artifact_files(source))  # fails before anything is stored
        files = []
        for child, rel in found:
            sha, size = self._store_file(child, f"{name}/{rel}", kind)
            files.append(ArtifactFile(rel, sha, size))
        return self._client.store.log_artifact_version(name, type, files, self.uuid).label

    def use_artifact(self, ref: str) -> VersionedArtifact:
        """Record that this run uses a version of a named artifact (``NAME:latest``,
        ``NAME:v1``, ``NAME:ALIAS``) and return it, to locate or download its files.
        ``labkeep rerun`` makes the rerun use the same version.

        >>> data = run.use_artifact("train-set:latest")  # doctest: +SKIP
        >>> root = data.download()                       # doctest: +SKIP
        """
        from labkeep._artifacts import VersionedArtifact, resolve

        self._raise_if_finished()
        store = self._client.store
        version = resolve(store, ref)
        store.use_artifact_version(version.name, version.version, self.uuid)
        return VersionedArtifact(store, version, self._client.location.cache_dir)

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait until the store holds everything this run logged so far (False when it did
        not within ``timeout`` seconds): before reading the run back, for example to
        register the model it just logged.

        >>> run.log_model(clf); run.flush()  # doctest: +SKIP
        True
        """
        return self._ingester.flush(timeout)

    def log_model(self, model: Any, name: str = "model", *, input_example: Any = None) -> ModelInfo:
        """Store a model under ``name`` in its framework's format (scikit-learn through
        skops, XGBoost, LightGBM, Keras, PyTorch; anything else with cloudpickle, which loads
        only when trusted), with the framework versions, the input example and the signature
        it gives. ``labkeep.load_model("runs:/RUN/NAME")`` loads it back.

        >>> run.log_model(clf, "model", input_example=X[:5])  # doctest: +SKIP
        """
        from labkeep.models import log_model

        return log_model(self, model, name, input_example=input_example)

    # -- ending ------------------------------------------------------------------------
    def add_finish_hook(self, hook: Callable[[], None]) -> None:
        """Call ``hook()`` when :meth:`finish` starts, before the run ends: what logs into
        the run from another thread (autolog saving a model) waits there until it is done."""
        self._finish_hooks.append(hook)

    def finish(
        self,
        status: str | RunStatus | None = None,
        *,
        error: str | None = None,
        exit_code: int | None = None,
    ) -> None:
        """End the run (``completed`` unless told otherwise) and wait until everything it
        logged is in the store. Calling it twice is harmless."""
        if self._finished:
            return
        while self._finish_hooks:
            self._finish_hooks.pop(0)()
        # What was logged goes into the store meanwhile: the ingester would otherwise sleep
        # out its interval (up to 0.5 s, half the time a wide run of 1M points takes).
        self._ingester.wake()
        ended = _time()  # the run's end, not when the snapshot and the store caught up
        final = RunStatus.COMPLETED if status is None else _final_status(status)
        if self._monitor is not None:
            self._monitor.stop()
        if self._snapshot is not None and not self._snapshot.join():
            logger.warning("snapshot capture did not finish in time")
        if not self.attached:
            self._journal.append_json(
                j.T_FINISH,
                {
                    "status": final.value,
                    "end_time": ended,
                    # A traceback is text to read; PostgreSQL cannot store NUL in it.
                    "error": None if error is None else error.replace("\x00", "\\x00"),
                    "exit_code": exit_code,
                },
            )
        self._finished = True
        self._status = final
        self._drain()

    def _drain(self) -> None:
        """Wait until the store has everything this run journalled, then drop the journal;
        a store that could not take it all keeps the journal for the next reader."""
        location = self._client.location
        silent = location.kind == "http" and not self._ingester.registered.is_set()
        done = self._ingester.stop(UNANSWERED_FINISH_TIMEOUT_S if silent else FINISH_TIMEOUT_S)
        _UNDRAINED.discard(self)
        if done and self._ingester.error is None:
            self._journal.close(remove=True)
            return
        self._journal.close(remove=False)
        logger.warning(
            "run %s is kept in %s; it reaches the store %s the next time labkeep opens it "
            "(or run `labkeep sync`)",
            self.uuid[:8],
            self._journal.directory,
            location.uri,
        )

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.finish()
        else:
            self._finish_from_exception(exc_type, exc, tb)

    def _finish_from_exception(
        self, exc_type: type[BaseException], exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            self.finish(RunStatus.INTERRUPTED)
        elif issubclass(exc_type, SystemExit):
            code = exc.code if isinstance(exc, SystemExit) else None
            ok = code in (None, 0)
            self.finish(
                RunStatus.COMPLETED if ok else RunStatus.FAILED,
                exit_code=code if isinstance(code, int) else (0 if ok else 1),
            )
        else:
            text = "".join(traceback.format_exception(exc_type, exc, tb))
            self.finish(RunStatus.FAILED, error=text)

    def __repr__(self) -> str:
        return f"<labkeep.Run {self.uuid[:8]} experiment={self.experiment!r} status={self._status.value}>"


#: The runs of this process whose records may not all be in the store yet (not finished, or
#: finishing): a read of their store waits for them first (:func:`flush_own_runs`).
_UNDRAINED: weakref.WeakSet[Run] = weakref.WeakSet()


def flush_own_runs(store_uri: str, timeout: float = 30.0) -> None:
    """Wait until what this process's runs logged into ``store_uri`` so far is in it, so
    that a read made after logging sees it (as ``mlflow.search_runs()`` after
    ``log_metric`` does): a run started a moment ago, or one autolog is finishing in the
    background. A store that does not take the records within ``timeout`` seconds is read
    as it is."""
    deadline = time.monotonic() + timeout
    for run in list(_UNDRAINED):
        if run.store_uri == store_uri:
            run.flush(max(0.0, deadline - time.monotonic()))


class ProcessHooks:
    """Finishes the active run when the process ends: on normal exit (completed), on an
    uncaught exception (failed, traceback kept), on Ctrl-C or SIGTERM (interrupted), and on
    ``sys.exit(code)``, ``exit(code)`` or ``quit(code)`` from the main thread (failed unless
    the code is 0 or None, with the exit code kept). A bare ``raise SystemExit(code)`` outside
    a ``with`` block reaches no hook Python offers; the run ends completed then."""

    def __init__(self) -> None:
        self.installed = False
        self.run: Run | None = None
        #: Every unfinished run this process started, oldest first: child runs too
        #: (``init(parent=...)``), which end with the same status as the run around them.
        self.runs: list[Run] = []
        self._prev_excepthook = sys.excepthook
        self._exc: tuple[type[BaseException], BaseException, TracebackType | None] | None = None
        self._exit: SystemExit | None = None

    def install(self, run: Run) -> None:
        self.run = run
        self._exc = None
        self.track(run)

    def track(self, run: Run) -> None:
        """End ``run`` too when the process ends, if it has not ended by then (a child run
        left open inside its parent's ``with`` block)."""
        self.runs = [r for r in self.runs if not r.finished]
        self.runs.append(run)
        if self.installed:
            return
        self.installed = True
        atexit.register(self._at_exit)
        self._prev_excepthook = sys.excepthook
        sys.excepthook = self._excepthook
        self._watch_exits()
        main = threading.current_thread() is threading.main_thread()
        if main and signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, self._on_sigterm)

    def _watch_exits(self) -> None:
        """Note the code of ``sys.exit`` and of the ``exit``/``quit`` builtins (the
        interpreter tells ``atexit`` nothing of why it ends)."""
        import builtins

        def watched(call: Any) -> Any:
            @functools.wraps(call)
            def exit_with(*args: Any, **kwargs: Any) -> Any:
                if threading.current_thread() is threading.main_thread():
                    self._exit = SystemExit(*args, **kwargs)
                return call(*args, **kwargs)

            return exit_with

        sys.exit = watched(sys.exit)
        for name in ("exit", "quit"):
            if callable(getattr(builtins, name, None)):
                setattr(builtins, name, watched(getattr(builtins, name)))

    def _excepthook(
        self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        self._exc = (exc_type, exc, tb)
        self._prev_excepthook(exc_type, exc, tb)

    def _open_runs(self) -> list[Run]:
        """The runs still open, innermost (newest) first: children end before parents."""
        return [r for r in reversed(self.runs) if not r.finished]

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        for run in self._open_runs():
            run.finish(RunStatus.INTERRUPTED)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    def _at_exit(self) -> None:
        for run in self._open_runs():
            if self._exc is not None:
                run._finish_from_exception(*self._exc)
            elif self._exit is not None:
                run._finish_from_exception(SystemExit, self._exit, None)
            else:
                run.finish()


def _final_status(status: str | RunStatus) -> RunStatus:
    ends = [s.value for s in RunStatus if s.finished]
    if status not in ends:
        raise InvalidInputError(
            f"status {status!r} does not end a run: use one of {', '.join(ends)}"
        )
    return RunStatus(status)


def iter_tags(tags: Iterable[str] | str | None) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        return [check_key(tags, "tag")]
    return [check_key(t, "tag") for t in tags]


#: How many files of a directory ``log_artifact`` sends at once.
_PARALLEL_PUTS = 8


def _artifact_name(name: str, kind: str) -> str:
    """A checked artifact name (relative, inside the run) after checking its kind."""
    if not isinstance(kind, str) or not 0 < len(kind) <= 16:
        raise InvalidInputError(f"artifact kind {kind!r} must be a word of 1 to 16 characters")
    artifact_name = check_key(name, "artifact name")
    if artifact_name.startswith("/") or ".." in Path(artifact_name).parts:
        raise InvalidInputError(
            f"artifact name {artifact_name!r} leaves the run: use a relative name without '..'"
        )
    return artifact_name
