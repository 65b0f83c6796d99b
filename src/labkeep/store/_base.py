"""The Store interface every backend implements (SQLite, PostgreSQL, REST).

Writes arrive as :class:`WriteBatch` objects decoded from a writer's journal; ``apply`` is
idempotent per (writer, position), which makes ingest exactly-once across crashes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from array import array
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

# The batch types are the journal's (what a journal decodes to), re-exported as the Store's.
from labkeep._write_batch import MetricBlock as MetricBlock
from labkeep._write_batch import MetricColumns as MetricColumns
from labkeep._write_batch import RunFinish as RunFinish
from labkeep._write_batch import RunResume as RunResume
from labkeep._write_batch import RunStart as RunStart
from labkeep._write_batch import WriteBatch as WriteBatch
from labkeep.entities import (
    ArtifactFile,
    ArtifactLink,
    ArtifactVersion,
    MediaEntry,
    MetricHistory,
    ModelVersion,
    NamedArtifact,
    OutputLine,
    RegisteredModel,
    RunInfo,
    RunRecord,
    Value,
)

if TYPE_CHECKING:
    from labkeep.query import KeyCatalog
    from labkeep.store._artifacts import ArtifactWriter
    from labkeep.store._blobs import BlobRead
    from labkeep.store._gc import GarbageReport


class Store(ABC):
    """Where runs live. Constructors do no I/O; the first call connects."""

    uri: str
    #: Whether ``apply`` reads ``WriteBatch.metric_block`` (the live ingester then asks its
    #: decoder for wide runs' metrics column-wise).
    takes_metric_blocks = False

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

    def blob_writer(self) -> ArtifactWriter:
        """A blob written in pieces (an upload a server receives), stored under its sha256
        by ``finish()``; dropped if the ``with`` block ends without it."""
        from labkeep.errors import StoreError

        raise StoreError(f"the store at {self.uri} takes blobs whole (put_blob)")

    @abstractmethod
    def keep_blob(self, sha256: str) -> int | None:
        """The size of a stored blob, noting that it was put again now (a writer is about to
        name it, so garbage collection leaves it), or None when it is not stored."""

    @abstractmethod
    def artifact_location(self) -> str:
        """Where the store's blobs live: a directory or ``s3://bucket/prefix``."""

    @abstractmethod
    def record_artifact_location(self, uri: str) -> None:
        """Record ``uri`` as where every machine finds this store's blobs (``labkeep server
        --artifacts``); refuses a location other than one already recorded."""

    @abstractmethod
    def collect_garbage(self, grace_s: float, *, dry_run: bool = False) -> GarbageReport:
        """Remove the blobs that nothing names any more and that were last put more than
        ``grace_s`` seconds ago (and before the oldest live run started); with ``dry_run``
        only list them (see :mod:`labkeep.store._gc`).

        >>> store.collect_garbage(24 * 3600, dry_run=True).size
        1048576
        """

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
    def media_keys(self, number: int) -> dict[str, str]:
        """The keys a run logged media under, sorted, each with its kind (``image``,
        ``plotly``, ``histogram`` or ``table``).

        >>> store.media_keys(7)
        {'samples': 'image', 'weights': 'histogram'}
        """

    @abstractmethod
    def list_media(self, number: int, key: str, step: int | None = None) -> list[MediaEntry]:
        """The media a run logged under ``key`` (only at ``step`` when given), by step and
        then place in the list logged; NotFoundError when the run has none under ``key``.

        >>> [(m.step, m.meta["caption"]) for m in store.list_media(7, "samples")]
        [(0, 'epoch 0'), (1, 'epoch 1')]
        """

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
    def count_children(self, parent_uuids: Sequence[str]) -> dict[str, dict[str, int]]:
        """How many child runs (not in the trash) each of these runs has, by status; runs
        without children are left out. What a tree of runs shows beside a collapsed parent.

        >>> store.count_children([sweep.uuid, plain.uuid])
        {'6f1c…': {'completed': 97, 'failed': 3}}
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

    # -- model registry ----------------------------------------------------------------
    # Not on a training loop's path: each call goes straight to the database, atomically.

    @abstractmethod
    def create_model_version(
        self,
        name: str,
        run_uuid: str,
        model_path: str,
        *,
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        """Register the model ``model_path`` of run ``run_uuid`` as the next version of
        ``name`` (1 for a new name, which is created). Concurrent callers get distinct
        versions.

        >>> store.create_model_version("iris-clf", run.uuid, "model").version
        1
        """

    @abstractmethod
    def get_registered_model(self, name: str) -> RegisteredModel:
        """One registered model; NotFoundError naming the ones there are."""

    @abstractmethod
    def list_registered_models(self) -> list[RegisteredModel]:
        """Every registered model, by name."""

    @abstractmethod
    def list_model_versions(self, name: str) -> list[ModelVersion]:
        """The versions of ``name``, newest first."""

    @abstractmethod
    def find_model_versions(self, run_uuid: str) -> list[ModelVersion]:
        """Every registered version (of any name) whose model is one of this run's, by name
        and version."""

    @abstractmethod
    def get_model_version(self, name: str, ref: int | str) -> ModelVersion:
        """A version of ``name``: by number (``3``, ``"3"``), ``"latest"``, or an alias."""

    @abstractmethod
    def set_model_alias(self, name: str, alias: str, version: int) -> None:
        """Point ``alias`` of ``name`` at ``version`` (moving it from where it pointed)."""

    @abstractmethod
    def delete_model_alias(self, name: str, alias: str) -> None:
        """Remove an alias; NotFoundError when ``name`` has no such alias."""

    @abstractmethod
    def update_registered_model(
        self,
        name: str,
        *,
        description: str | None = None,
        set_tags: Mapping[str, str] | None = None,
        delete_tags: Sequence[str] = (),
    ) -> RegisteredModel:
        """Change a registered model's description and tags."""

    @abstractmethod
    def update_model_version(
        self,
        name: str,
        version: int,
        *,
        description: str | None = None,
        set_tags: Mapping[str, str] | None = None,
        delete_tags: Sequence[str] = (),
    ) -> ModelVersion:
        """Change a model version's description and tags."""

    @abstractmethod
    def delete_model_version(self, name: str, version: int) -> None:
        """Remove one version (and the aliases that pointed at it); the run keeps its model."""

    @abstractmethod
    def delete_registered_model(self, name: str) -> None:
        """Remove a registered model, its versions and aliases; the runs keep their models."""

    # -- versioned artifacts -----------------------------------------------------------

    @abstractmethod
    def log_artifact_version(
        self, name: str, type: str, files: Sequence[ArtifactFile], run_uuid: str
    ) -> ArtifactVersion:
        """Record that run ``run_uuid`` produced these files (blobs already stored) as the
        artifact ``name``: the version with the same content if there is one, else the next
        (0 for a new name). Concurrent callers with different content get distinct versions.
        """

    @abstractmethod
    def list_named_artifacts(self) -> list[NamedArtifact]:
        """Every named artifact, by name."""

    @abstractmethod
    def list_artifact_versions(self, name: str) -> list[ArtifactVersion]:
        """The versions of ``name`` (without their files), newest first."""

    @abstractmethod
    def get_artifact_version(self, name: str, ref: int | str) -> ArtifactVersion:
        """A version with its files: by number (``1``, ``"v1"``, ``"1"``), ``"latest"`` or an
        alias."""

    @abstractmethod
    def set_artifact_alias(self, name: str, alias: str, version: int) -> None:
        """Point ``alias`` of artifact ``name`` at ``version``."""

    @abstractmethod
    def delete_artifact_alias(self, name: str, alias: str) -> None:
        """Remove an artifact alias; NotFoundError when there is no such alias."""

    @abstractmethod
    def use_artifact_version(self, name: str, version: int, run_uuid: str) -> None:
        """Record that run ``run_uuid`` used version ``version`` of ``name`` (once)."""

    @abstractmethod
    def list_artifact_links(
        self, *, run_uuid: str | None = None, name: str | None = None
    ) -> list[ArtifactLink]:
        """What runs produced and used: of one run, of one artifact's versions, or both
        filters; oldest first."""

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
