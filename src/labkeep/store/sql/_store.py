"""The SQL Store: SQLite and PostgreSQL. Every read and write goes through the driver's
DB-API connection (:mod:`._connect`), as SQL text with bound parameters written once for both
dialects (``?`` placeholders; :meth:`Connection.sql` adapts them): a command that lists or
shows runs never imports SQLAlchemy. The SQLAlchemy models (:mod:`._schema`) and the Alembic
migrations only define and migrate the schema."""

from __future__ import annotations

import contextlib
import json
import threading
import uuid as uuid_mod
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkeep._values import run_number, run_ref
from labkeep.entities import (
    Artifact,
    MetricSummary,
    OutputLine,
    RunInfo,
    RunRecord,
    RunStatus,
)
from labkeep.errors import AmbiguousRefError, NotFoundError, ReadOnlyStoreError, StoreError
from labkeep.store._base import Store, WriteBatch
from labkeep.store._blobs import BlobDirectory, BlobRead
from labkeep.store._refs import snapshot_refs
from labkeep.store._uri import StoreLocation
from labkeep.store.sql import _apply
from labkeep.store.sql._connect import Connection, connect, damage_reported

if TYPE_CHECKING:
    from labkeep.query import KeyCatalog
    from labkeep.store.sql._search import CatalogCache

_IN_CHUNK = 500
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

    def __init__(self, location: StoreLocation) -> None:
        self.location = location
        self.uri = location.uri
        self.blobs = BlobDirectory(location.blob_dir)
        self._conn: Connection | None = None
        self._lock = threading.RLock()
        self._catalog: CatalogCache | None = None  # made by the first search
        self._json_blobs: dict[str, Any] = {}

    # -- connections -------------------------------------------------------------------
    def writer(self) -> Connection:
        with self._lock:
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
            except BaseException:
                if conn.broken and self._conn is conn:
                    self._conn = None
                    conn.close()
                raise

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Connection]:
        """The DB-API connection for reads, under the lock; the read's transaction (which
        PostgreSQL opens) is ended afterwards."""
        with self._writing() as conn:
            try:
                yield conn
            except BaseException:
                with contextlib.suppress(Exception):
                    conn.raw.rollback()
                raise
            conn.raw.commit()

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

    # -- writing -----------------------------------------------------------------------
    def apply(self, batch: WriteBatch) -> int:
        refs = None
        if batch.snapshot is not None:
            # Read before the write transaction: the manifest is a blob on disk.
            refs = snapshot_refs(dict(batch.snapshot), self._read_json_blob)
        with self._writing() as conn:
            return _apply.apply_batch(conn, batch, refs)

    def apply_many(self, batches: Sequence[WriteBatch]) -> list[int]:
        refs = [
            None
            if batch.snapshot is None
            else snapshot_refs(dict(batch.snapshot), self._read_json_blob)
            for batch in batches
        ]
        with self._writing() as conn:
            return _apply.apply_batches(conn, list(zip(batches, refs, strict=True)))

    def _read_json_blob(self, sha256: str) -> Any:
        """A JSON blob (a code manifest), remembered: blobs never change."""
        found = self._json_blobs.get(sha256)
        if found is None:
            found = json.loads(self.blobs.get(sha256).read_bytes())
            if len(self._json_blobs) >= 64:
                self._json_blobs.clear()
            self._json_blobs[sha256] = found
        return found

    def journal_position(self, writer: str) -> int:
        with self._writing() as conn:
            cur = conn.raw.cursor()
            try:
                cur.execute(
                    conn.sql("SELECT position FROM journal_positions WHERE writer = ?"), (writer,)
                )
                row = cur.fetchone()
            finally:
                cur.close()
                conn.raw.commit()
            return 0 if row is None else int(row[0])

    def put_blob(self, path: Path, sha256: str | None = None) -> tuple[str, int]:
        return self.blobs.put(path, sha256)

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        return self.blobs.put_bytes(data)

    def blob_path(self, sha256: str) -> Path:
        return self.blobs.get(sha256)

    def open_blob(self, sha256: str) -> BlobRead:
        return self.blobs.open(sha256)

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

    def _catalog_cache(self) -> CatalogCache:
        with self._lock:
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

    def list_experiments(self) -> list[str]:
        return [row[0] for row in self._rows("SELECT name FROM experiments ORDER BY id")]

    def running_runs(self) -> list[RunInfo]:
        rows = self._rows(f"{_RUN_SELECT} WHERE runs.status = ?", (RunStatus.RUNNING.value,))
        return [self._info(row) for row in rows]

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
        with self._lock:
            if self._conn is not None:
                return self._conn.read_only
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
            candidates = column("SELECT sha256 FROM blob_refs WHERE run_number IN ({})", doomed)
            # Every table that holds rows of a run (the foreign keys are not relied on: SQLite
            # enforces them only when asked), as the database has them.
            for table in _run_tables(cur, conn):
                delete(f"DELETE FROM {table} WHERE run_number IN ({{}})", doomed)
            delete("DELETE FROM runs WHERE number IN ({})", doomed)
            # A blob goes when nothing names it any more: no artifact, no snapshot's code,
            # manifest, package list or diff (``blob_refs``), of any run.
            still = column(
                "SELECT DISTINCT sha256 FROM blob_refs WHERE sha256 IN ({})", sorted(candidates)
            )
            cur.execute(
                "SELECT sha256 FROM blobs WHERE sha256 NOT IN (SELECT sha256 FROM blob_refs)"
            )
            unnamed_rows = {row[0] for row in cur.fetchall()}
            orphans = (candidates - still) | unnamed_rows
            delete("DELETE FROM blobs WHERE sha256 IN ({})", sorted(orphans))
        for sha in sorted(orphans):
            self.blobs.path(sha).unlink(missing_ok=True)
        return len(doomed)


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
