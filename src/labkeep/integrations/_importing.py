"""What every importer shares: the record a tool's run is read into, and the one path that
writes it to a store.

A run read from another tool becomes one :class:`~labkeep.store._base.WriteBatch`, the same
path a live run's journal takes (journal → ingester → WriteBatch → store): the batch carries
the run's original start and end times, status, metric steps and wall times, so nothing here
writes SQL. Up to :data:`GROUP_RUNS` runs' batches go to the store in one transaction
(:meth:`~labkeep.store._base.Store.apply_many`): a run is never written in part, and a group
either. The labkeep uuid of an imported run is derived from the tool and the run's own id
(``uuid5``), and the run keeps ``import.source`` and ``import.id`` in its summary: importing
again finds the runs (one query) and skips them, and each batch's writer
(``import-<uuid>``) at position 1 makes even a concurrent second import a no-op.

Python's cyclic garbage collector is off while an import runs (:func:`_collector_off`): the
rows it builds are many small objects freed by their reference counts, and each full
collection would walk every object of the process (MLflow, SQLAlchemy and pandas loaded):
for 2,000 runs of 1,000 points each, a quarter of the import's time. What cycles the
readers make are collected after each group is written.

A run that cannot be read is not written at all; the report lists it, and the CLI exits
non-zero so nothing is left half-imported without saying so.
"""

from __future__ import annotations

import gc
import math
import uuid
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from labkeep._values import MAX_KEY_LENGTH, flatten
from labkeep.entities import Artifact, RunStatus, Value
from labkeep.errors import InvalidInputError, LabkeepError
from labkeep.store._base import MetricColumns, RunFinish, RunStart, Store, WriteBatch

#: Where the uuids of imported runs come from: uuid5(IMPORT_NAMESPACE, "tool:original id").
IMPORT_NAMESPACE = uuid.UUID("5b1c1e8e-3f0a-4c52-9f57-6c2d3a9e1a10")
SOURCE_KEY = "import.source"
ID_KEY = "import.id"


class SourceError(LabkeepError):
    """A directory, file or server that is not a store of the tool it was given as (or of
    a version its reader does not understand, or that cannot be reached)."""

    exit_code = 2


class RunReadError(LabkeepError):
    """One run of a store that could be opened cannot be read (a damaged file)."""

    exit_code = 1


@dataclass
class SourceRun:
    """One run of another tool, as its reader gave it, in labkeep's terms."""

    source: str
    source_id: str
    experiment: str
    name: str
    start_time: float
    status: RunStatus
    end_time: float | None = None
    params: dict[str, Value] = field(default_factory=dict)
    #: key → (steps, values, wall times), in logging order: lists, or int64 ("q") and
    #: float64 ("d") arrays.
    metrics: Mapping[str, tuple[Sequence[int], Sequence[float], Sequence[float]]] = field(
        default_factory=dict
    )
    summary: dict[str, Value] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    #: (path in the run, local file) of each artifact.
    artifacts: list[tuple[str, Path]] = field(default_factory=list)
    output: list[tuple[str, float, str]] = field(default_factory=list)
    user: str = ""
    host: str = ""
    notes: str = ""
    error: str | None = None
    exit_code: int | None = None
    parent_id: str | None = None
    #: In the tool's trash (MLflow's deleted runs): imported into labkeep's trash.
    deleted: bool = False

    @property
    def uuid(self) -> str:
        return imported_uuid(self.source, self.source_id)


class Source(Protocol):
    """A tool's store opened for reading: the ids of its runs, then each run on demand."""

    tool: str
    location: str

    def run_ids(self) -> Sequence[str]:
        """The ids of every run there, parents before their children; raises SourceError."""
        ...

    def read_run(self, run_id: str) -> SourceRun:
        """One run; raises RunReadError when its files cannot be understood."""
        ...

    def close(self) -> None: ...


@dataclass
class ImportReport:
    """What an import did: run numbers created, runs already there, runs not understood."""

    tool: str
    location: str
    imported: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Progress:
    """One step of an import, for a progress bar: the run just handled and the counts."""

    run_id: str
    outcome: str  # "imported", "skipped" or "failed"
    done: int
    total: int


def imported_uuid(source: str, source_id: str) -> str:
    """The labkeep uuid of a run imported from ``source``: the same on every import."""
    return str(uuid.uuid5(IMPORT_NAMESPACE, f"{source}:{source_id}"))


#: Runs written per store transaction, and the metric points that end a group sooner.
GROUP_RUNS = 500
GROUP_POINTS = 1_000_000


def import_runs(
    store: Store,
    source: Source,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> ImportReport:
    """Write every run of ``source`` not yet in ``store``, up to :data:`GROUP_RUNS` runs per
    transaction (:meth:`Store.apply_many`); progress is reported as each group is written.

    >>> report = import_runs(client.store, mlflow_source("sqlite:///mlflow.db"))
    >>> len(report.imported), len(report.skipped)
    (12, 0)
    """
    with _collector_off():
        return _import(store, source, on_progress, on_start)


@contextmanager
def _collector_off() -> Iterator[None]:
    """The cyclic garbage collector off (see the module's docstring), back as it was after."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _import(
    store: Store,
    source: Source,
    on_progress: Callable[[Progress], None] | None,
    on_start: Callable[[int], None] | None,
) -> ImportReport:
    report = ImportReport(source.tool, source.location)
    ids = list(source.run_ids())
    if on_start is not None:
        on_start(len(ids))
    group = _Group(store, report, ids, on_progress)
    known = _known_imports(store, source.tool)
    run_id = ""
    try:
        for run_id in ids:
            number = known.get(run_id)
            if number is not None:
                report.skipped.append(number)
                group.add(run_id, "skipped")
                continue
            try:
                run = source.read_run(run_id)
                batch = batch_of(store, run)
            except RunReadError as exc:
                report.failed.append((run_id, str(exc)))
                group.add(run_id, "failed")
                continue
            except InvalidInputError as exc:  # a value labkeep cannot store (a key with NUL…)
                report.failed.append((run_id, f"{source.tool} run {run_id}: {exc}"))
                group.add(run_id, "failed")
                continue
            except Exception:
                group.write()  # the runs read whole before it are kept
                raise
            group.add(run_id, "imported", run, batch)
            if group.full():
                group.write()
        group.write()
    except Exception as exc:
        # The source or the store failed under us (a server gone, a full disk): the groups
        # written so far are whole, and the message says how far it got.
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        at = group.first_pending() or run_id
        raise SourceError(
            f"importing from {source.tool} {source.location} stopped at run {at} "
            f"({reason}); {len(report.imported)} of {len(ids)} run(s) were imported whole "
            "before it, and importing again goes on from there"
        ) from exc
    return report


class _Group:
    """Runs read but not yet written, and the progress steps that wait for their write."""

    def __init__(
        self,
        store: Store,
        report: ImportReport,
        ids: list[str],
        on_progress: Callable[[Progress], None] | None,
    ) -> None:
        self.store = store
        self.report = report
        self.total = len(ids)
        self.on_progress = on_progress
        self.done = 0
        self.steps: list[tuple[str, str]] = []
        self.runs: list[tuple[SourceRun, WriteBatch]] = []
        self.points = 0

    def add(
        self,
        run_id: str,
        outcome: str,
        run: SourceRun | None = None,
        batch: WriteBatch | None = None,
    ) -> None:
        self.steps.append((run_id, outcome))
        if run is not None and batch is not None:
            self.runs.append((run, batch))
            self.points += sum(len(c.steps) for c in batch.metrics.values())
        elif not self.runs:
            self._report()

    def full(self) -> bool:
        return len(self.runs) >= GROUP_RUNS or self.points >= GROUP_POINTS

    def first_pending(self) -> str | None:
        return self.runs[0][0].source_id if self.runs else None

    def write(self) -> None:
        if self.runs:
            numbers = self.store.apply_many([batch for _, batch in self.runs])
            deleted = [n for (run, _), n in zip(self.runs, numbers, strict=True) if run.deleted]
            if deleted:
                self.store.set_deleted(deleted, True)
            self.report.imported.extend(numbers)
            self.runs.clear()
            self.points = 0
            gc.collect(1)  # the young objects only: the cycles the group's reading made
        self._report()

    def _report(self) -> None:
        for run_id, outcome in self.steps:
            self.done += 1
            if self.on_progress is not None:
                self.on_progress(Progress(run_id, outcome, self.done, self.total))
        self.steps.clear()


def _known_imports(store: Store, tool: str) -> dict[str, int]:
    """Original id → run number of the runs already imported from ``tool`` (trash included),
    in one query instead of one per run."""
    from labkeep.query import QueryError

    if not store.exists():
        return {}
    try:
        numbers, _ = store.search_runs(
            f"summary['{SOURCE_KEY}'] == '{tool}'", include_deleted=True, limit=None
        )
    except QueryError:  # no run has the key: nothing was imported yet
        return {}
    if not numbers:
        return {}
    table = store.get_run_table(numbers)
    return {
        str(source_id): int(number)
        for number, source_id in zip(table["number"], table[f"summary.{ID_KEY}"], strict=True)
        if source_id is not None
    }


def batch_of(store: Store, run: SourceRun) -> WriteBatch:
    """The one WriteBatch that creates ``run`` whole, its artifacts stored as blobs first."""
    run_uuid = run.uuid
    parent = None if run.parent_id is None else imported_uuid(run.source, run.parent_id)
    start = RunStart(
        uuid=run_uuid,
        experiment=run.experiment or "default",
        name=run.name,
        start_time=run.start_time,
        user=run.user,
        host=run.host,
        parent_uuid=parent,
        notes=run.notes,
    )
    metrics: dict[str, MetricColumns] = {}
    for key, (steps, values, times) in run.metrics.items():
        if len(steps):
            metrics[key] = MetricColumns(
                _column("q", steps), _column("d", values), _column("d", times)
            )
    artifacts = []
    for path, local in run.artifacts:
        sha256, size = store.put_blob(local)
        artifacts.append(Artifact(path, sha256, size, "output", run.end_time or run.start_time))
    end_time = run.end_time
    if end_time is None:  # the last point's time, else the start
        end_time = max([run.start_time, *(max(c.times) for c in metrics.values())])
    summary = {**run.summary, SOURCE_KEY: run.source, ID_KEY: run.source_id}
    return WriteBatch(
        run_uuid=run_uuid,
        writer=f"import-{run_uuid}",
        position=1,
        start=start,
        params=dict(run.params),
        summary=summary,
        tags_added=[t for t in dict.fromkeys(run.tags) if t and len(t) <= MAX_KEY_LENGTH],
        metrics=metrics,
        artifacts=artifacts,
        output=list(run.output),
        finish=RunFinish(run.status.value, end_time, run.error, run.exit_code),
    )


def _column(code: str, column: Sequence[Any]) -> array[Any]:
    """A metric column as the array a batch holds: taken as it is when it is one already (a
    reader's columns, made for this run alone), else converted item by item."""
    if isinstance(column, array) and column.typecode == code:
        return column
    return array(code, column)


def flat_params(config: Any) -> dict[str, Value]:
    """A tool's nested config as labkeep params (``optimizer.lr``)."""
    return flatten(config) if isinstance(config, dict) else {}


def number(value: Any) -> float | None:
    """A metric value as a float, None for what is not a number (a string, a histogram)."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


def series(
    points: Iterator[tuple[int, float, float]] | list[tuple[int, float, float]],
) -> tuple[list[int], list[float], list[float]]:
    """(step, value, time) points as the parallel columns labkeep stores."""
    steps: list[int] = []
    values: list[float] = []
    times: list[float] = []
    for step, value, at in points:
        steps.append(int(step))
        values.append(float(value))
        times.append(float(at) if at is not None and not math.isnan(at) else 0.0)
    return steps, values, times
