"""The SQL Store: SQLite and PostgreSQL. Every read and write goes through the driver's
DB-API connection (:mod:`._connect`), as SQL text with bound parameters written once for both
dialects (``?`` placeholders; :meth:`Connection.sql` adapts them): a command that lists or
shows runs never imports SQLAlchemy. The SQLAlchemy models (:mod:`._schema`) and the Alembic
migrations only define and migrate the schema.

Writes take turns on one write connection; reads go to a small pool of other connections,
so a server's query or UI page never waits behind an ingest batch being written (SQLite's
WAL and PostgreSQL's MVCC let a reader see the last commit while a writer works). A
connection the database dropped (a restart, a terminated backend) is closed rather than
reused, and the next call opens a new one."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid as uuid_mod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkeep._values import run_number, run_ref
from labkeep.entities import (
    Artifact,
    ArtifactFile,
    ArtifactLink,
    ArtifactVersion,
    MediaEntry,
    MetricSummary,
    ModelVersion,
    NamedArtifact,
    OutputLine,
    RegisteredModel,
    RunInfo,
    RunRecord,
    RunStatus,
)
from labkeep.errors import (
    AmbiguousRefError,
    InvalidInputError,
    NotFoundError,
    ReadOnlyStoreError,
    StoreError,
)
from labkeep.store._artifacts import (
    ArtifactStore,
    ArtifactWriter,
    LocalArtifacts,
    normalise_artifacts_uri,
    open_artifacts,
)
from labkeep.store._base import Store, WriteBatch
from labkeep.store._blobs import BlobRead
from labkeep.store._gc import GarbageReport, collect_garbage, live_cutoff
from labkeep.store._refs import snapshot_refs
from labkeep.store._uri import StoreLocation
from labkeep.store.sql import _apply, _apply_new, _lineage, _registry
from labkeep.store.sql._connect import Connection, connect, damage_reported

if TYPE_CHECKING:
    from labkeep.query import KeyCatalog
    from labkeep.store.sql._search import CatalogCache

_IN_CHUNK = 500
#: Idle read connections a store keeps; reads beyond them open their own and close them after.
IDLE_READERS = 4
#: The columns of a run as :meth:`SqlStore._info` reads them, its experiment's name last.
_RUN_COLUMNS = (
    "runs.number, runs.uuid, runs.name, runs.status, runs.start_time, runs.end_time, "
    "runs.heartbeat, runs.username, runs.host, runs.pid, runs.notes, runs.error, "
    "runs.exit_code, runs.parent_uuid, runs.deleted, runs.reproduces_uuid, runs.run_group, "
    "runs.job_type, experiments.name"
)
_RUN_SELECT = (
    f"SELECT {_RUN_COLUMNS} FROM runs JOIN experiments ON experiments.id = runs.experiment_id"
)


class SqlStore(Store):
    """A store in a SQL database. No I/O until the first call."""

    takes_metric_blocks = True

    def __init__(self, location: StoreLocation) -> None:
        self.location = location
        self.uri = location.uri
        self._artifacts: ArtifactStore | None = None  # chosen at the first blob call
        self._conn: Connection | None = None
        self._lock = threading.RLock()  # the write connection's
        self._readers: list[Connection] = []
        self._readers_lock = threading.Lock()
        self._catalog_lock = threading.Lock()
        self._catalog: CatalogCache | None = None  # made by the first search
        self._json_blobs: dict[str, Any] = {}

    # -- connections -------------------------------------------------------------------
    def writer(self) -> Connection:
        with self._lock:
            if self._conn is not None and self._conn.dropped_while_idle():
                self._conn.close()
                self._conn = None
            if self._conn is None:
                self._conn = connect(self.location)
            return self._conn

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Connection]:
        """The write connection, under the lock; dropped if the database broke it (server
        restart, network cut), so the next call reconnects instead of failing for good."""
        with self._lock, damage_reported(self.location):
            conn = self.writer()
            try:
                yield conn
            except BaseException as exc:
                if conn.broken and self._conn is conn:
                    self._conn = None
                    conn.close()
                    if not isinstance(exc, StoreError):
                        raise ConnectionLostError(
                            f"lost the connection to the database of {self.uri} "
                            f"({_first_line(exc)}): nothing of this call was stored; retry it"
                        ) from exc
                raise

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A read connection from the pool (never the write connection: a read does not
        wait for a write in progress); the read's transaction (which PostgreSQL opens) is
        ended afterwards."""
        with damage_reported(self.location):
            conn = None
            with self._readers_lock:
                while self._readers and conn is None:
                    conn = self._readers.pop()
                    if conn.dropped_while_idle():
                        conn.close()
                        conn = None
            if conn is None:
                conn = connect(self.location)
            try:
                yield conn
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    conn.raw.rollback()
                self._release(conn)
                if conn.broken and not isinstance(exc, StoreError):
                    raise ConnectionLostError(
                        f"lost the connection to the database of {self.uri} "
                        f"({_first_line(exc)}): retry"
                    ) from exc
                raise
            try:
                conn.raw.commit()
            except BaseException:
                self._release(conn)
                raise
            self._release(conn)

    def _release(self, conn: Connection) -> None:
        """Back to the pool, unless the database dropped it or the pool is full."""
        if not conn.broken:
            with self._readers_lock:
                if len(self._readers) < IDLE_READERS:
                    self._readers.append(conn)
                    return
        conn.close()

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one statement written with ``?`` placeholders."""
        with self._reading() as conn:
            cur = conn.raw.cursor()
            try:
                cur.execute(conn.sql(sql), tuple(params))
                return list(cur.fetchall())
            finally:
                cur.close()

    def exists(self) -> bool:
        """Whether there is a store to read (a SQLite file that exists, or any server)."""
        return self.location.kind != "sqlite" or self.location.sqlite_path.exists()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()

    # -- writing -----------------------------------------------------------------------
    def apply(self, batch: WriteBatch) -> int:
        refs = None
        if batch.snapshot is not None:
            # Read before the write transaction: the manifest is a blob on disk.
            refs = snapshot_refs(dict(batch.snapshot), self._read_json_blob)
        try:
            with self._writing() as conn:
                return _apply.apply_batch(conn, batch, refs)
        except ConnectionLostError:
            # The transaction died with its connection (a database restart mid-batch): once
            # more on a new one. Safe, as a batch applied twice changes nothing.
            with self._writing() as conn:
                return _apply.apply_batch(conn, batch, refs)

    def apply_many(self, batches: Sequence[WriteBatch]) -> list[int]:
        refs = [
            None
            if batch.snapshot is None
            else snapshot_refs(dict(batch.snapshot), self._read_json_blob)
            for batch in batches
        ]
        pairs = list(zip(batches, refs, strict=True))
        with self._writing() as conn:
            if (
                conn.dialect == "sqlite"
                and len(batches) > 1
                and all(_apply_new.creates_run_whole(b) for b in batches)
            ):
                # Runs read whole from another tool (an import): a table at a time.
                return _apply_new.apply_new_runs(conn, pairs)
            return _apply.apply_batches(conn, pairs)

    def _read_json_blob(self, sha256: str) -> Any:
        """A JSON blob (a code manifest), remembered: blobs never change."""
        found = self._json_blobs.get(sha256)
        if found is None:
            found = json.loads(self.artifacts.local_path(sha256).read_bytes())
            if len(self._json_blobs) >= 64:
                self._json_blobs.clear()
            self._json_blobs[sha256] = found
        return found

    def journal_position(self, writer: str) -> int:
        rows = self._rows("SELECT position FROM journal_positions WHERE writer = ?", (writer,))
        return 0 if not rows else int(rows[0][0])

    # -- blobs ---------------------------------------------------------------------------
    @property
    def artifacts(self) -> ArtifactStore:
        """Where this store's blobs live: the recorded artifact location, else the one the
        location names (``--artifacts``, ``LABKEEP_ARTIFACTS``), else ``blob_dir``."""
        found = self._artifacts
        if found is None:
            with self._lock:
                if self._artifacts is None:
                    self._artifacts = self._open_artifacts()
                found = self._artifacts
        return found

    def _open_artifacts(self) -> ArtifactStore:
        from labkeep.store._progress import transfer_progress

        recorded = self._recorded_artifacts()
        chosen = self.location.artifacts
        if recorded is not None and chosen is not None and recorded != chosen:
            raise StoreError(
                f"the store at {self.uri} keeps its artifacts at {recorded}, not {chosen}: "
                "unset LABKEEP_ARTIFACTS (or --artifacts), or give the recorded location"
            )
        uri = recorded or chosen
        if uri is None:
            return LocalArtifacts(self.location.blob_dir)
        return open_artifacts(uri, self.location.blob_dir, progress=transfer_progress)

    def _recorded_artifacts(self) -> str | None:
        if not self.exists():
            return None
        rows = self._rows("SELECT value FROM store_settings WHERE name = ?", ("artifacts",))
        return str(rows[0][0]) if rows else None

    def artifact_location(self) -> str:
        return self.artifacts.uri

    def record_artifact_location(self, uri: str) -> None:
        wanted = normalise_artifacts_uri(uri)
        self._refuse_if_read_only()
        with self._writing() as conn, conn.transaction() as cur:
            cur.execute(conn.sql("SELECT value FROM store_settings WHERE name = ?"), ("artifacts",))
            row = cur.fetchone()
            if row is not None and row[0] != wanted:
                raise StoreError(
                    f"the store at {self.uri} keeps its artifacts at {row[0]}, not {wanted}: "
                    "give the recorded location (its blobs are there)"
                )
            if row is None:
                cur.execute(
                    conn.sql("INSERT INTO store_settings (name, value) VALUES (?, ?)"),
                    ("artifacts", wanted),
                )
        with self._lock:
            self._artifacts = None

    def put_blob(self, path: Path, sha256: str | None = None) -> tuple[str, int]:
        return self.artifacts.put(path, sha256)

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        return self.artifacts.put_bytes(data)

    def keep_blob(self, sha256: str) -> int | None:
        store = self.artifacts
        size = store.size(sha256)
        if size is not None:
            store.touch(sha256)
        return size

    def blob_writer(self) -> ArtifactWriter:
        return self.artifacts.writer()

    def blob_path(self, sha256: str) -> Path:
        return self.artifacts.local_path(sha256)

    def open_blob(self, sha256: str) -> BlobRead:
        return self.artifacts.open(sha256)

    def collect_garbage(self, grace_s: float, *, dry_run: bool = False) -> GarbageReport:
        if not dry_run:
            self._refuse_if_read_only()
        store = self.artifacts
        cutoff = live_cutoff(time.time(), grace_s, self.running_runs())
        # Named by a run (blob_refs), or by a version of a named artifact, which outlives
        # the run that logged it (artifact_files).
        referenced = {
            str(row[0])
            for row in self._rows(
                "SELECT sha256 FROM blob_refs UNION SELECT sha256 FROM artifact_files"
            )
        }

        def still_named(candidates: list[str]) -> set[str]:
            # In one transaction with the removal of their rows: a record naming one that
            # lands from now on finds it (and its row) or waits for this to commit.
            with self._writing() as conn, conn.transaction() as cur:
                named: set[str] = set()
                for part in _chunks(candidates):
                    cur.execute(
                        conn.sql(
                            f"SELECT sha256 FROM blob_refs WHERE sha256 IN ({_marks(part)}) "
                            f"UNION SELECT sha256 FROM artifact_files "
                            f"WHERE sha256 IN ({_marks(part)})"
                        ),
                        tuple(part) * 2,
                    )
                    named.update(str(row[0]) for row in cur.fetchall())
                gone = sorted(set(candidates) - named)
                for part in _chunks(gone):
                    cur.execute(
                        conn.sql(f"DELETE FROM blobs WHERE sha256 IN ({_marks(part)})"),
                        tuple(part),
                    )
            return named

        return collect_garbage(store, referenced, cutoff, still_named, dry_run=dry_run)

    def mark_killed(self, numbers: list[int], end_times: list[float]) -> None:
        with self._writing() as conn:
            _apply.mark_killed(conn, numbers, end_times)

    # -- reading -----------------------------------------------------------------------
    @staticmethod
    def _info(row: Sequence[Any]) -> RunInfo:
        """A run from a row of :data:`_RUN_COLUMNS`."""
        return RunInfo(
            number=row[0],
            uuid=row[1],
            name=row[2],
            status=RunStatus(row[3]),
            start_time=row[4],
            end_time=row[5],
            heartbeat=row[6],
            user=row[7],
            host=row[8],
            pid=row[9],
            notes=row[10],
            error=row[11],
            exit_code=row[12],
            parent_uuid=row[13],
            deleted=bool(row[14]),
            reproduces_uuid=row[15],
            group=row[16],
            job_type=row[17],
            experiment=row[18],
        )

    def resolve_run(self, ref: str | int) -> RunInfo:
        text = run_ref(ref)
        if text == "last":
            rows = self._rows(
                f"{_RUN_SELECT} WHERE NOT runs.deleted ORDER BY runs.number DESC LIMIT 1"
            )
            if not rows:
                raise NotFoundError(f"no runs in the store at {self.uri} yet")
            return self._info(rows[0])
        number = run_number(text)
        if number is not None:
            rows = self._rows(f"{_RUN_SELECT} WHERE runs.number = ?", (number,))
            if rows:
                return self._info(rows[0])
        rows = self._rows(f"{_RUN_SELECT} WHERE runs.name = ? ORDER BY runs.number", (text,))
        if len(rows) == 1:
            return self._info(rows[0])
        if len(rows) > 1:
            numbers = ", ".join(str(r[0]) for r in rows[:10])
            raise AmbiguousRefError(
                f"{len(rows)} runs are named {text!r} ({numbers}): use a number"
            )
        prefix = text.lower()
        if len(prefix) >= 4 and all(c in "0123456789abcdef-" for c in prefix):
            rows = self._rows(
                f"{_RUN_SELECT} WHERE substr(runs.uuid, 1, ?) = ? LIMIT 11", (len(prefix), prefix)
            )
            if len(rows) == 1:
                return self._info(rows[0])
            if len(rows) > 1:
                raise AmbiguousRefError(
                    f"uuid prefix {text!r} matches {len(rows)} runs: type more of it"
                )
        count = self._rows("SELECT count(*) FROM runs")[0][0]
        hint = "labkeep runs lists them" if count else "the store has no runs yet"
        raise NotFoundError(
            f"no run {text!r} in {self.uri}: give a number, a name, a uuid prefix or 'last' "
            f"({hint})"
        )

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
        conditions: list[str] = []
        params: list[Any] = []
        if deleted_only:
            conditions.append("runs.deleted")
        elif not include_deleted:
            conditions.append("NOT runs.deleted")
        if experiment is not None:
            conditions.append("experiments.name = ?")
            params.append(experiment)
        if parent_uuid is not None:
            conditions.append("runs.parent_uuid = ?")
            params.append(parent_uuid)
        sql = _RUN_SELECT
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        sql += " ORDER BY runs.number DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        elif offset and self.location.kind == "sqlite":
            sql += " LIMIT -1"
        if offset:
            sql += " OFFSET ?"
            params.append(offset)
        return [self._info(row) for row in self._rows(sql, params)]

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
        from labkeep.store.sql import _search

        search = _search.RunSearch(
            where, sort, experiment, limit, offset, include_deleted, parent_uuid, deleted_only
        )
        if not self.exists():
            _search.parse_search(where, sort)  # a bad query is an error even with no runs
            return [], 0
        with self._reading() as conn:
            return _search.search_runs(conn, self._catalog_cache(), search)

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
        from labkeep.store.sql import _search

        if not self.exists():
            _search.parse_search(where, sort)  # a bad query is an error even with no runs
            return []
        search = _search.RunSearch(
            where, sort, experiment, limit, offset, include_deleted, parent_uuid
        )
        with self._reading() as conn:
            return _search.search_page(conn, self._catalog_cache(), search)

    def count_runs(
        self,
        where: str | None = None,
        experiment: str | None = None,
        include_deleted: bool = False,
        parent_uuid: str | None = None,
    ) -> int:
        from labkeep.store.sql import _search

        if not self.exists():
            _search.parse_search(where, None)
            return 0
        search = _search.RunSearch(
            where, None, experiment, include_deleted=include_deleted, parent_uuid=parent_uuid
        )
        with self._reading() as conn:
            return _search.count_runs(conn, self._catalog_cache(), search)

    def count_runs_within(
        self,
        steps: int,
        where: str | None = None,
        experiment: str | None = None,
        include_deleted: bool = False,
        parent_uuid: str | None = None,
    ) -> int | None:
        from labkeep.store.sql import _search

        if not self.exists():
            _search.parse_search(where, None)
            return 0
        search = _search.RunSearch(
            where, None, experiment, include_deleted=include_deleted, parent_uuid=parent_uuid
        )
        with self._reading() as conn:
            return _search.count_runs_within(conn, self._catalog_cache(), search, steps)

    def get_key_catalog(self) -> KeyCatalog:
        from labkeep.query import KeyCatalog

        if not self.exists():
            return KeyCatalog()
        with self._reading() as conn:
            # Read afresh, and kept for the searches that follow (the runs page's own).
            return self._catalog_cache().reload(conn)

    def count_runs_per_experiment(self) -> dict[str, int]:
        if not self.exists():
            return {}
        rows = self._rows(
            "SELECT experiments.name, count(runs.number) FROM experiments "
            "LEFT JOIN runs ON runs.experiment_id = experiments.id AND NOT runs.deleted "
            "GROUP BY experiments.id, experiments.name ORDER BY experiments.id"
        )
        return {name: int(count) for name, count in rows}

    def count_children(self, parent_uuids: Sequence[str]) -> dict[str, dict[str, int]]:
        wanted = sorted(set(parent_uuids))
        if not wanted or not self.exists():
            return {}
        counts: dict[str, dict[str, int]] = {}
        for start in range(0, len(wanted), 500):  # bound the number of bound parameters
            part = wanted[start : start + 500]
            rows = self._rows(
                "SELECT parent_uuid, status, count(*) FROM runs WHERE NOT deleted AND "
                f"parent_uuid IN ({', '.join('?' * len(part))}) GROUP BY parent_uuid, status",
                part,
            )
            for parent, status, count in rows:
                counts.setdefault(str(parent), {})[str(status)] = int(count)
        return counts

    def _catalog_cache(self) -> CatalogCache:
        with self._catalog_lock:
            if self._catalog is None:
                from labkeep.store.sql._search import CatalogCache

                self._catalog = CatalogCache()
            return self._catalog

    def get_run_table(self, numbers: Sequence[int]) -> dict[str, Any]:
        from labkeep.store.sql._table import read_run_table

        with self._reading() as conn:
            try:
                return read_run_table(conn, numbers, self.location)
            except NotFoundError as exc:
                raise NotFoundError(f"{exc} in {self.uri}") from None

    def get_records(self, numbers: Sequence[int]) -> list[RunRecord]:
        infos: dict[int, RunInfo] = {}
        par: dict[int, dict[str, Any]] = {n: {} for n in numbers}
        summ: dict[int, dict[str, Any]] = {n: {} for n in numbers}
        mets: dict[int, dict[str, MetricSummary]] = {n: {} for n in numbers}
        tgs: dict[int, list[str]] = {n: [] for n in numbers}
        arts: dict[int, list[Artifact]] = {n: [] for n in numbers}
        with self._reading() as conn:
            cur = conn.raw.cursor()
            try:

                def rows(sql: str, part: list[int]) -> list[Any]:
                    marks = ", ".join("?" * len(part))
                    cur.execute(conn.sql(sql.format(marks)), part)
                    return list(cur.fetchall())

                for lo in range(0, len(numbers), _IN_CHUNK):
                    part = list(numbers[lo : lo + _IN_CHUNK])
                    for row in rows(f"{_RUN_SELECT} WHERE runs.number IN ({{}})", part):
                        infos[row[0]] = self._info(row)
                    for table, target in (("params", par), ("summaries", summ)):
                        sql = (
                            f"SELECT run_number, key, json FROM {table} WHERE run_number IN ({{}})"
                        )
                        for number, key, exact in rows(sql + " ORDER BY key", part):
                            target[number][key] = json.loads(exact)
                    sql = (
                        "SELECT run_number, key, last, last_step, last_time, min, max, count "
                        "FROM metrics WHERE run_number IN ({}) ORDER BY key"
                    )
                    for number, key, last, step, when, low, high, count in rows(sql, part):
                        mets[number][key] = MetricSummary(
                            key=key,
                            last=float("nan") if last is None else last,
                            last_step=step,
                            last_time=when,
                            min=low,
                            max=high,
                            count=count,
                        )
                    sql = "SELECT run_number, tag FROM tags WHERE run_number IN ({}) ORDER BY tag"
                    for number, tag in rows(sql, part):
                        tgs[number].append(tag)
                    sql = (
                        "SELECT run_number, path, sha256, size, kind, created FROM artifacts "
                        "WHERE run_number IN ({}) ORDER BY path"
                    )
                    for number, path, sha, size, kind, created in rows(sql, part):
                        arts[number].append(Artifact(path, sha, size, kind, created))
            finally:
                cur.close()
        missing = [n for n in numbers if n not in infos]
        if missing:
            raise NotFoundError(f"no run {missing[0]} in {self.uri}")
        return [
            RunRecord(infos[n], par[n], mets[n], summ[n], tuple(tgs[n]), tuple(arts[n]))
            for n in numbers
        ]

    def get_history_bytes(self, number: int, key: str) -> tuple[bytes, bytes, bytes]:
        # The hot read of the UI's charts and of run.series().
        rows = self._rows(
            "SELECT steps, vals, times FROM metric_chunks WHERE run_number = ? AND key = ? "
            "ORDER BY id",
            (number, key),
        )
        if not rows:
            keys = self.metric_keys(number)
            hint = f"its metrics: {', '.join(keys[:10])}" if keys else "it has no metrics"
            raise NotFoundError(f"run {number} has no metric {key!r} ({hint})")
        return (
            b"".join(r[0] for r in rows),
            b"".join(r[1] for r in rows),
            b"".join(r[2] for r in rows),
        )

    def get_snapshot(self, number: int) -> dict[str, Any] | None:
        rows = self._rows("SELECT data FROM snapshots WHERE run_number = ?", (number,))
        if not rows:
            return None
        snapshot: dict[str, Any] = json.loads(rows[0][0])
        return snapshot

    def get_output(self, number: int, after: int = 0, limit: int | None = None) -> list[OutputLine]:
        sql = (
            "SELECT id, stream, time, text FROM output_lines "
            "WHERE run_number = ? AND id > ? ORDER BY id"
        )
        params: list[Any] = [number, after]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [OutputLine(*row) for row in self._rows(sql, params)]

    def metric_keys(self, number: int) -> list[str]:
        sql = "SELECT key FROM metrics WHERE run_number = ? ORDER BY key"
        return [row[0] for row in self._rows(sql, (number,))]

    def media_keys(self, number: int) -> dict[str, str]:
        rows = self._rows(
            "SELECT key, MIN(kind) FROM media WHERE run_number = ? GROUP BY key ORDER BY key",
            (number,),
        )
        return {str(key): str(kind) for key, kind in rows}

    def list_media(self, number: int, key: str, step: int | None = None) -> list[MediaEntry]:
        sql = (
            "SELECT key, step, idx, kind, sha256, size, time, meta FROM media "
            "WHERE run_number = ? AND key = ?"
        )
        params: list[Any] = [number, key]
        if step is not None:
            sql += " AND step = ?"
            params.append(step)
        rows = self._rows(sql + " ORDER BY step, idx", params)
        if not rows and (
            step is None
            or not self._rows(
                "SELECT 1 FROM media WHERE run_number = ? AND key = ? LIMIT 1", (number, key)
            )
        ):
            keys = list(self.media_keys(number))
            hint = f"its media: {', '.join(keys[:10])}" if keys else "it has no media"
            raise NotFoundError(f"run {number} has no media {key!r} ({hint})")
        return [
            MediaEntry(
                str(k), int(s), int(i), str(kind), str(sha), int(size), float(t), json.loads(meta)
            )
            for k, s, i, kind, sha, size, t, meta in rows
        ]

    def list_experiments(self) -> list[str]:
        return [row[0] for row in self._rows("SELECT name FROM experiments ORDER BY id")]

    def running_runs(self) -> list[RunInfo]:
        rows = self._rows(f"{_RUN_SELECT} WHERE runs.status = ?", (RunStatus.RUNNING.value,))
        return [self._info(row) for row in rows]

    # -- model registry ----------------------------------------------------------------
    @contextlib.contextmanager
    def _cursor(self) -> Iterator[tuple[Any, Connection]]:
        with self._reading() as conn:
            cur = conn.raw.cursor()
            try:
                yield cur, conn
            finally:
                cur.close()

    def create_model_version(
        self,
        name: str,
        run_uuid: str,
        model_path: str,
        *,
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        self._refuse_if_read_only()
        with self._writing() as conn:
            return _registry.create_version(conn, name, run_uuid, model_path, description, tags)

    def get_registered_model(self, name: str) -> RegisteredModel:
        with self._cursor() as (cur, conn):
            return _registry.get_model(cur, conn, name)

    def list_registered_models(self) -> list[RegisteredModel]:
        if not self.exists():
            return []
        with self._cursor() as (cur, conn):
            return _registry.list_models(cur, conn)

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        with self._cursor() as (cur, conn):
            return _registry.list_versions(cur, conn, name)

    def find_model_versions(self, run_uuid: str) -> list[ModelVersion]:
        if not self.exists():
            return []
        with self._cursor() as (cur, conn):
            return _registry.versions_of_run(cur, conn, run_uuid)

    def get_model_version(self, name: str, ref: int | str) -> ModelVersion:
        with self._cursor() as (cur, conn):
            return _registry.get_version(cur, conn, name, ref)

    def set_model_alias(self, name: str, alias: str, version: int) -> None:
        self._refuse_if_read_only()
        with self._writing() as conn:
            _registry.set_alias(conn, name, alias, version)

    def delete_model_alias(self, name: str, alias: str) -> None:
        self._refuse_if_read_only()
        with self._writing() as conn:
            _registry.delete_alias(conn, name, alias)

    def update_registered_model(
        self,
        name: str,
        *,
        description: str | None = None,
        set_tags: Mapping[str, str] | None = None,
        delete_tags: Sequence[str] = (),
    ) -> RegisteredModel:
        self._refuse_if_read_only()
        with self._writing() as conn:
            _registry.update_model(conn, name, description, set_tags, delete_tags)
        return self.get_registered_model(name)

    def update_model_version(
        self,
        name: str,
        version: int,
        *,
        description: str | None = None,
        set_tags: Mapping[str, str] | None = None,
        delete_tags: Sequence[str] = (),
    ) -> ModelVersion:
        self._refuse_if_read_only()
        with self._writing() as conn:
            _registry.update_version(conn, name, version, description, set_tags, delete_tags)
        return self.get_model_version(name, version)

    def delete_model_version(self, name: str, version: int) -> None:
        self._refuse_if_read_only()
        with self._writing() as conn:
            _registry.delete_version(conn, name, version)

    def delete_registered_model(self, name: str) -> None:
        self._refuse_if_read_only()
        with self._writing() as conn:
            _registry.delete_model(conn, name)

    # -- versioned artifacts -----------------------------------------------------------
    def log_artifact_version(
        self, name: str, type: str, files: Sequence[ArtifactFile], run_uuid: str
    ) -> ArtifactVersion:
        self._refuse_if_read_only()
        with self._writing() as conn:
            return _lineage.log_version(conn, name, type, files, run_uuid)

    def list_named_artifacts(self) -> list[NamedArtifact]:
        if not self.exists():
            return []
        with self._cursor() as (cur, conn):
            return _lineage.list_named(cur, conn)

    def list_artifact_versions(self, name: str) -> list[ArtifactVersion]:
        with self._cursor() as (cur, conn):
            return _lineage.list_versions(cur, conn, name)

    def get_artifact_version(self, name: str, ref: int | str) -> ArtifactVersion:
        with self._cursor() as (cur, conn):
            return _lineage.get_version(cur, conn, name, ref)

    def set_artifact_alias(self, name: str, alias: str, version: int) -> None:
        self._refuse_if_read_only()
        with self._writing() as conn:
            _lineage.set_alias(conn, name, alias, version)

    def delete_artifact_alias(self, name: str, alias: str) -> None:
        self._refuse_if_read_only()
        with self._writing() as conn:
            _lineage.delete_alias(conn, name, alias)

    def use_artifact_version(self, name: str, version: int, run_uuid: str) -> None:
        self._refuse_if_read_only()
        with self._writing() as conn:
            _lineage.use_version(conn, name, version, run_uuid)

    def list_artifact_links(
        self, *, run_uuid: str | None = None, name: str | None = None
    ) -> list[ArtifactLink]:
        if not self.exists():
            return []
        with self._cursor() as (cur, conn):
            return _lineage.list_links(cur, conn, run_uuid, name)

    # -- editing -----------------------------------------------------------------------
    def set_tags(self, number: int, add: Iterable[str] = (), remove: Iterable[str] = ()) -> None:
        batch = WriteBatch(
            run_uuid=self._uuid_of(number),
            writer=f"edit-{uuid_mod.uuid4()}",
            position=1,
            tags_added=list(add),
            tags_removed=list(remove),
        )
        self._apply_edit(batch)

    def set_notes(self, number: int, notes: str) -> None:
        batch = WriteBatch(
            run_uuid=self._uuid_of(number),
            writer=f"edit-{uuid_mod.uuid4()}",
            position=1,
            notes=notes,
        )
        self._apply_edit(batch)

    def _apply_edit(self, batch: WriteBatch) -> None:
        """Edits reuse the write path; their one-off writer row is dropped afterwards."""
        with self._writing() as conn:
            _apply.apply_batch(conn, batch)
            with conn.transaction() as cur:
                cur.execute(
                    conn.sql("DELETE FROM journal_positions WHERE writer = ?"), (batch.writer,)
                )

    def _uuid_of(self, number: int) -> str:
        rows = self._rows("SELECT uuid FROM runs WHERE number = ?", (number,))
        if not rows:
            raise NotFoundError(f"no run {number} in {self.uri}")
        return str(rows[0][0])

    def read_only_reason(self) -> str | None:
        if self.location.kind != "sqlite" or not self.exists():
            return None
        conn = self._conn
        if conn is not None:
            return conn.read_only
        # Asked before starting a run: a look at the file system, not a connection.
        from labkeep.store.sql._connect import read_only_message, read_only_reason

        reason = read_only_reason(self.location.sqlite_path)
        return None if reason is None else read_only_message(self.location.sqlite_path, reason)

    def _refuse_if_read_only(self) -> None:
        reason = self.read_only_reason()
        if reason is not None:
            raise ReadOnlyStoreError(reason)

    def set_deleted(self, numbers: Sequence[int], deleted: bool) -> None:
        self._refuse_if_read_only()
        with self._writing() as conn, conn.transaction() as cur:
            for part in _chunks(numbers):
                cur.execute(
                    conn.sql(f"UPDATE runs SET deleted = ? WHERE number IN ({_marks(part)})"),
                    (deleted, *part),
                )

    def purge(self, numbers: Sequence[int]) -> int:
        self._refuse_if_read_only()
        with self._writing() as conn, conn.transaction() as cur:

            def column(sql: str, values: Sequence[Any]) -> set[Any]:
                found: set[Any] = set()
                for part in _chunks(values):
                    cur.execute(conn.sql(sql.format(_marks(part))), tuple(part))
                    found.update(row[0] for row in cur.fetchall())
                return found

            def delete(sql: str, values: Sequence[Any]) -> None:
                for part in _chunks(values):
                    cur.execute(conn.sql(sql.format(_marks(part))), tuple(part))

            doomed = sorted(
                column("SELECT number FROM runs WHERE number IN ({}) AND runs.deleted", numbers)
            )
            if not doomed:
                return 0
            uuids = sorted(column("SELECT uuid FROM runs WHERE number IN ({})", doomed))
            registered = _registry.registered_versions_of_runs(cur, conn, uuids)
            if registered:
                name, version, _ = registered[0]
                raise InvalidInputError(
                    f"a run to purge holds the model of {name!r} version {version}: delete "
                    f"that version first (labkeep models delete {name} {version})"
                )
            candidates = column("SELECT sha256 FROM blob_refs WHERE run_number IN ({})", doomed)
            # When each candidate was last named by a purged run: the latest of its runs'
            # start, heartbeat and end (its blobs were put before the records naming them).
            named_until: dict[str, float] = {}
            for part in _chunks(doomed):
                cur.execute(
                    conn.sql(
                        "SELECT blob_refs.sha256, runs.start_time, runs.heartbeat, runs.end_time "
                        "FROM blob_refs JOIN runs ON runs.number = blob_refs.run_number "
                        f"WHERE blob_refs.run_number IN ({_marks(part)})"
                    ),
                    tuple(part),
                )
                for sha, *times in cur.fetchall():
                    latest = max(float(t) for t in times if t is not None)
                    named_until[sha] = max(named_until.get(sha, latest), latest)
            # Every table that holds rows of a run (the foreign keys are not relied on: SQLite
            # enforces them only when asked), as the database has them.
            for table in _run_tables(cur, conn):
                delete(f"DELETE FROM {table} WHERE run_number IN ({{}})", doomed)
            delete("DELETE FROM runs WHERE number IN ({})", doomed)
            # A blob goes when nothing names it any more: no artifact, no snapshot's code,
            # manifest, package list or diff (``blob_refs``), of any run.
            still = column(
                "SELECT DISTINCT sha256 FROM blob_refs WHERE sha256 IN ({})", sorted(candidates)
            ) | column(  # a versioned artifact's files outlive the run that logged them
                "SELECT DISTINCT sha256 FROM artifact_files WHERE sha256 IN ({})",
                sorted(candidates),
            )
            orphans = candidates - still
            delete("DELETE FROM blobs WHERE sha256 IN ({})", sorted(orphans))
        # A blob put again after the purged runs last named it is being named by a record
        # still on its way (a run re-using the same content): left for `labkeep gc`.
        store = self.artifacts
        unused = []
        for sha in sorted(orphans):
            last_put = store.last_put(sha)
            if last_put is not None and last_put + store.time_resolution <= named_until[sha]:
                unused.append(sha)
        store.delete(unused)
        return len(doomed)


class ConnectionLostError(StoreError):
    """The database dropped the connection during a call, which then stored nothing."""


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _chunks(values: Sequence[Any]) -> Iterator[list[Any]]:
    """``values`` in parts small enough for one ``IN (…)`` list."""
    for lo in range(0, len(values), _IN_CHUNK):
        yield list(values[lo : lo + _IN_CHUNK])


def _marks(part: Sequence[Any]) -> str:
    return ", ".join("?" * len(part))


def _run_tables(cur: Any, conn: Connection) -> list[str]:
    """The tables with a ``run_number`` column, as the database defines them."""
    if conn.dialect == "sqlite":
        cur.execute(
            "SELECT m.name FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS c "
            "WHERE m.type = 'table' AND c.name = 'run_number' ORDER BY m.name"
        )
    else:
        cur.execute(
            "SELECT table_name FROM information_schema.columns WHERE column_name = 'run_number' "
            "AND table_schema = current_schema() ORDER BY table_name"
        )
    return [str(row[0]) for row in cur.fetchall()]


def check_reachable(location: StoreLocation) -> None:
    """Raise StoreError with a one-line reason when the database cannot be reached."""
    conn = connect(location, create=False)
    conn.close()


__all__ = ["SqlStore", "StoreError", "check_reachable"]
