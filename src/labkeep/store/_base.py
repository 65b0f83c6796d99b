"""The Store interface every backend implements (SQLite, PostgreSQL, REST).

Writes arrive as :class:`WriteBatch` objects decoded from a writer's journal; ``apply`` is
idempotent per (writer, position), which makes ingest exactly-once across crashes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from array import array
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

# The batch types are the journal's (what a journal decodes to), re-exported as the Store's.
from labkeep._write_batch import MetricColumns as MetricColumns
from labkeep._write_batch import RunFinish as RunFinish
from labkeep._write_batch import RunResume as RunResume
from labkeep._write_batch import RunStart as RunStart
from labkeep._write_batch import WriteBatch as WriteBatch
from labkeep.entities import MetricHistory, OutputLine, RunInfo, RunRecord, Value

if TYPE_CHECKING:
    from labkeep.query import KeyCatalog
    from labkeep.store._blobs import BlobRead


class Store(ABC):
    """Where runs live. Constructors do no I/O; the first call connects."""

    uri: str

    # -- writing -----------------------------------------------------------------------
    @abstractmethod
    def apply(self, batch: WriteBatch) -> int:
        """Apply ``batch`` atomically unless its position was applied already; return the run number."""

    def apply_many(self, batches: Sequence[WriteBatch]) -> list[int]:
        """Apply ``batches`` in order, each as :meth:`apply` would; return their run numbers.

        SQL stores apply them in one transaction (all or none, one commit for many runs: what
        an import of thousands of runs needs); this default applies them one at a time.
        """
        return [self.apply(batch) for batch in batches]

    @abstractmethod
    def journal_position(self, writer: str) -> int:
        """The journal position up to which ``writer``'s records are in the store (0 if none)."""

    def check_writable(self) -> bool:
        """Raise StoreError when the store refuses this process's writes (a read-only token);
        False when it cannot be reached now (writes then wait in the journal), else True."""
        return True

    @abstractmethod
    def put_blob(self, path: Path, sha256: str | None = None) -> tuple[str, int]:
        """Store a file by content hash (once per content); return (sha256, size).

        A ``sha256`` known from a hash cache lets an already stored blob skip the read."""

    @abstractmethod
    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store bytes by content hash; return (sha256, size)."""

    @abstractmethod
    def blob_path(self, sha256: str) -> Path:
        """Local path of a stored blob whose content matches its sha256; raises
        NotFoundError if it is missing, DamagedStoreError if it was changed or is a link."""

    def read_only_reason(self) -> str | None:
        """Why this store can be read but not changed (a read-only mount), or None."""
        return None

    def open_blob(self, sha256: str) -> BlobRead:
        """A blob's size and its content in chunks, checked against its sha256 as it is
        read (what a server streams). Backends that hold blobs locally check while
        streaming; this default checks the whole blob first."""
        from labkeep.store._blobs import BlobRead, plain_chunks

        path = self.blob_path(sha256)
        return BlobRead(path.stat().st_size, plain_chunks(path))

    # -- reading -----------------------------------------------------------------------
    @abstractmethod
    def resolve_run(self, ref: str | int) -> RunInfo:
        """A run by number, uuid (or unique prefix), name, or ``last``."""

    @abstractmethod
    def list_runs(
        self,
        experiment: str | None = None,
        *,
        include_deleted: bool = False,
        parent_uuid: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        deleted_only: bool = False,
    ) -> list[RunInfo]:
        """Runs, newest first (runs in the trash only with ``include_deleted``/``deleted_only``)."""

    @abstractmethod
    def search_runs(
        self,
        where: str | None = None,
        sort: str | Sequence[str] | None = None,
        experiment: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        include_deleted: bool = False,
        parent_uuid: str | None = None,
        *,
        deleted_only: bool = False,
    ) -> tuple[list[int], int]:
        """The numbers of the runs that match the query ``where`` (see :mod:`labkeep.query`),
        ordered by ``sort`` (``"-metrics.acc, params.lr"``; runs without a key last; ties and
        no sort: newest first), one page of them, and how many match in all. Runs in the
        trash are left out, unless ``include_deleted``; ``deleted_only`` searches the trash.

        Raises :class:`labkeep.query.QueryError` for a query or sort that is wrong.

        >>> store.search_runs("metrics.loss < 0.2", sort="metrics.loss", limit=10)
        ([12, 7, 3], 3)
        """

    def search_numbers(
        self,
        where: str | None = None,
        sort: str | Sequence[str] | None = None,
        experiment: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        include_deleted: bool = False,
        parent_uuid: str | None = None,
    ) -> list[int]:
        """The page of :meth:`search_runs` without the total, which may cost more than the
        page (:func:`implied_total` tells it from a short page); backends that count
        separately override this."""
        return self.search_runs(
            where, sort, experiment, limit, offset, include_deleted, parent_uuid
        )[0]

    def count_runs(
        self,
        where: str | None = None,
        experiment: str | None = None,
        include_deleted: bool = False,
        parent_uuid: str | None = None,
    ) -> int:
        """How many runs match the query ``where`` (the total of :meth:`search_runs`)."""
        return self.search_runs(
            where,
            None,
            experiment,
            limit=0,
            include_deleted=include_deleted,
            parent_uuid=parent_uuid,
        )[1]

    def count_runs_within(
        self,
        steps: int,
        where: str | None = None,
        experiment: str | None = None,
        include_deleted: bool = False,
        parent_uuid: str | None = None,
    ) -> int | None:
        """:meth:`count_runs`, or None when counting would take more than about ``steps``
        units of database work (SQLite's virtual machine steps; deterministic for the same
        data). Backends without such a measure always count."""
        return self.count_runs(where, experiment, include_deleted, parent_uuid)

    def get_run_table(self, numbers: Sequence[int]) -> dict[str, Any]:
        """These runs as columns, one entry per run in order: ``number``, ``uuid``, ``name``,
        ``experiment``, ``status``, ``start_time``, ``end_time``, ``duration``, ``user``,
        ``host``, ``tags``, ``params.K``, ``metrics.K`` (last), ``metrics.K.min|max|count|step``
        and ``summary.K``; a run without a key has None there (NaN in float columns, which
        may be numpy arrays). What ``RunList.to_pandas()`` is built from; backends override
        this with a bulk read."""
        return columns_of(self.get_records(numbers))

    @abstractmethod
    def get_records(self, numbers: Sequence[int]) -> list[RunRecord]:
        """Full records (params, metric summaries, summary, tags, artifacts) of these runs, in order."""

    def get_history(self, number: int, key: str) -> MetricHistory:
        """Every point of one metric of one run, in logging order."""
        steps_b, vals_b, times_b = self.get_history_bytes(number, key)
        steps, vals, times = array("q"), array("d"), array("d")
        steps.frombytes(steps_b)
        vals.frombytes(vals_b)
        times.frombytes(times_b)
        return MetricHistory(key, steps.tolist(), vals.tolist(), times.tolist())

    @abstractmethod
    def get_history_bytes(self, number: int, key: str) -> tuple[bytes, bytes, bytes]:
        """The raw little-endian (int64 steps, float64 values, float64 times) of one metric."""

    @abstractmethod
    def get_snapshot(self, number: int) -> dict[str, Value] | None:
        """The run's reproducibility snapshot (None when it has none)."""

    @abstractmethod
    def get_output(self, number: int, after: int = 0, limit: int | None = None) -> list[OutputLine]:
        """Console lines of a run with id greater than ``after``, oldest first."""

    @abstractmethod
    def list_experiments(self) -> list[str]:
        """Experiment names, oldest first."""

    @abstractmethod
    def count_runs_per_experiment(self) -> dict[str, int]:
        """Each experiment, oldest first, with how many of its runs are not in the trash
        (0 for one whose runs are all there).

        >>> store.count_runs_per_experiment()
        {'default': 3, 'mnist': 12}
        """

    @abstractmethod
    def get_key_catalog(self) -> KeyCatalog:
        """Every param, metric and summary key of the store's runs (those in the trash too),
        read afresh: what a column picker offers and bare names in queries resolve against.

        >>> sorted(store.get_key_catalog().metrics)
        ['acc', 'loss']
        """

    # -- editing -----------------------------------------------------------------------
    @abstractmethod
    def set_tags(self, number: int, add: Iterable[str] = (), remove: Iterable[str] = ()) -> None:
        """Add and remove tags of a run."""

    @abstractmethod
    def set_notes(self, number: int, notes: str) -> None:
        """Replace a run's notes."""

    @abstractmethod
    def set_deleted(self, numbers: Sequence[int], deleted: bool) -> None:
        """Move runs to the trash (``deleted=True``) or restore them."""

    @abstractmethod
    def purge(self, numbers: Sequence[int]) -> int:
        """Remove runs for good (only runs already in the trash); return how many."""

    @abstractmethod
    def running_runs(self) -> list[RunInfo]:
        """Runs whose status is ``running``."""

    @abstractmethod
    def mark_killed(self, numbers: list[int], end_times: list[float]) -> None:
        """Mark ``running`` runs whose process died without saying so as ``killed``."""

    @abstractmethod
    def metric_keys(self, number: int) -> list[str]:
        """The metric keys of a run, sorted."""

    def exists(self) -> bool:
        """Whether there is a store to read yet (a local store is created by the first write)."""
        return True

    @abstractmethod
    def close(self) -> None:
        """Release connections."""


#: The attribute columns of :meth:`Store.get_run_table`, in order.
TABLE_ATTRIBUTES = (
    "number",
    "uuid",
    "name",
    "experiment",
    "status",
    "start_time",
    "end_time",
    "duration",
    "user",
    "host",
    "tags",
)
#: The columns of one metric key ``K``: ``metrics.K`` is its last value.
METRIC_STATS = ("", ".min", ".max", ".count", ".step")


def columns_of(records: Sequence[RunRecord]) -> dict[str, Any]:
    """Records as the columns :meth:`Store.get_run_table` returns: attributes, then params,
    metrics and summary keys, each sorted."""
    table: dict[str, Any] = {
        "number": [r.info.number for r in records],
        "uuid": [r.info.uuid for r in records],
        "name": [r.info.name for r in records],
        "experiment": [r.info.experiment for r in records],
        "status": [r.info.status.value for r in records],
        "start_time": [r.info.start_time for r in records],
        "end_time": [r.info.end_time for r in records],
        "duration": [r.info.duration for r in records],
        "user": [r.info.user for r in records],
        "host": [r.info.host for r in records],
        "tags": [list(r.tags) for r in records],
    }
    _put_typed(table, "params", [r.params for r in records])
    for key in sorted({k for r in records for k in r.metrics}):
        stats = [r.metrics.get(key) for r in records]
        table[f"metrics.{key}"] = [None if m is None else m.last for m in stats]
        table[f"metrics.{key}.min"] = [None if m is None else m.min for m in stats]
        table[f"metrics.{key}.max"] = [None if m is None else m.max for m in stats]
        table[f"metrics.{key}.count"] = [None if m is None else m.count for m in stats]
        table[f"metrics.{key}.step"] = [None if m is None else m.last_step for m in stats]
    _put_typed(table, "summary", [r.summary for r in records])
    return table


def _put_typed(table: dict[str, Any], prefix: str, mappings: list[dict[str, Value]]) -> None:
    for key in sorted({k for m in mappings for k in m}):
        table[f"{prefix}.{key}"] = [m.get(key) for m in mappings]


def implied_total(numbers: Sequence[int], limit: int | None, offset: int) -> int | None:
    """How many runs match in all, if a page of them tells: one shorter than ``limit`` holds
    the last match (unless it is empty past the start, which says nothing of where the
    matches ended)."""
    if (limit is None or len(numbers) < limit) and (numbers or offset == 0):
        return offset + len(numbers)
    return None
