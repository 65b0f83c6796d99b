"""The SQL Store: SQLite and PostgreSQL. Writes go through the DB-API connection
(``_apply``); reads and edits through SQLAlchemy Core."""

from __future__ import annotations

import contextlib
import json
import threading
import uuid as uuid_mod
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkeep.entities import (
    Artifact,
    MetricSummary,
    OutputLine,
    RunInfo,
    RunRecord,
    RunStatus,
)
from labkeep.errors import AmbiguousRefError, NotFoundError, StoreError
from labkeep.store._base import Store, WriteBatch, implied_total
from labkeep.store._blobs import BlobDirectory
from labkeep.store._uri import StoreLocation
from labkeep.store.sql import _apply
from labkeep.store.sql._connect import Connection, connect

if TYPE_CHECKING:
    from labkeep.store.sql._search import CatalogCache

_IN_CHUNK = 500


class SqlStore(Store):
    """A store in a SQL database. No I/O until the first call."""

    def __init__(self, location: StoreLocation) -> None:
        self.location = location
        self.uri = location.uri
        self.blobs = BlobDirectory(location.blob_dir)
        self._conn: Connection | None = None
        self._engine: Any = None
        self._lock = threading.RLock()
        self._catalog: CatalogCache | None = None  # made by the first search

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
        with self._lock:
            conn = self.writer()
            try:
                yield conn
            except BaseException:
                if conn.broken and self._conn is conn:
                    self._conn = None
                    conn.close()
                raise

    def exists(self) -> bool:
        """Whether there is a store to read (a SQLite file that exists, or any server)."""
        return self.location.kind != "sqlite" or self.location.sqlite_path.exists()

    @property
    def engine(self) -> Any:
        with self._lock:
            if self._engine is None:
                from labkeep.store.sql._migrate import make_engine

                self.writer()  # creates or checks the schema
                self._engine = make_engine(self.location)
            return self._engine

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    # -- writing -----------------------------------------------------------------------
    def apply(self, batch: WriteBatch) -> int:
        with self._writing() as conn:
            return _apply.apply_batch(conn, batch)

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

    def mark_killed(self, numbers: list[int], end_times: list[float]) -> None:
        with self._writing() as conn:
            _apply.mark_killed(conn, numbers, end_times)

    # -- reading -----------------------------------------------------------------------
    def _run_select(self) -> Any:
        from sqlalchemy import select

        from labkeep.store.sql._schema import experiments, runs

        return select(runs, experiments.c.name.label("experiment")).join(
            experiments, experiments.c.id == runs.c.experiment_id
        )

    @staticmethod
    def _info(row: Any) -> RunInfo:
        m = row._mapping
        return RunInfo(
            number=m["number"],
            uuid=m["uuid"],
            experiment=m["experiment"],
            name=m["name"],
            status=RunStatus(m["status"]),
            start_time=m["start_time"],
            end_time=m["end_time"],
            heartbeat=m["heartbeat"],
            user=m["username"],
            host=m["host"],
            pid=m["pid"],
            notes=m["notes"],
            error=m["error"],
            exit_code=m["exit_code"],
            parent_uuid=m["parent_uuid"],
            deleted=bool(m["deleted"]),
            reproduces_uuid=m["reproduces_uuid"],
        )

    def resolve_run(self, ref: str | int) -> RunInfo:
        from sqlalchemy import func, select

        from labkeep.store.sql._schema import runs

        text = str(ref).strip()
        base = self._run_select()
        with self.engine.connect() as conn:
            if text == "last":
                rows = conn.execute(
                    base.where(runs.c.deleted.is_(False)).order_by(runs.c.number.desc()).limit(1)
                ).all()
                if not rows:
                    raise NotFoundError(f"no runs in the store at {self.uri} yet")
                return self._info(rows[0])
            if text.isdigit():
                row = conn.execute(base.where(runs.c.number == int(text))).first()
                if row is not None:
                    return self._info(row)
            rows = conn.execute(base.where(runs.c.name == text).order_by(runs.c.number)).all()
            if len(rows) == 1:
                return self._info(rows[0])
            if len(rows) > 1:
                numbers = ", ".join(str(r.number) for r in rows[:10])
                raise AmbiguousRefError(
                    f"{len(rows)} runs are named {text!r} ({numbers}): use a number"
                )
            prefix = text.lower()
            if len(prefix) >= 4 and all(c in "0123456789abcdef-" for c in prefix):
                rows = conn.execute(
                    base.where(func.substr(runs.c.uuid, 1, len(prefix)) == prefix).limit(11)
                ).all()
                if len(rows) == 1:
                    return self._info(rows[0])
                if len(rows) > 1:
                    raise AmbiguousRefError(
                        f"uuid prefix {text!r} matches {len(rows)} runs: type more of it"
                    )
            count = conn.execute(select(func.count()).select_from(runs)).scalar_one()
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
        from labkeep.store.sql._schema import experiments, runs

        query = self._run_select()
        if deleted_only:
            query = query.where(runs.c.deleted.is_(True))
        elif not include_deleted:
            query = query.where(runs.c.deleted.is_(False))
        if experiment is not None:
            query = query.where(experiments.c.name == experiment)
        if parent_uuid is not None:
            query = query.where(runs.c.parent_uuid == parent_uuid)
        query = query.order_by(runs.c.number.desc()).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [self._info(row) for row in conn.execute(query)]

    def search_runs(
        self,
        where: str | None = None,
        sort: str | Sequence[str] | None = None,
        experiment: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        include_deleted: bool = False,
        parent_uuid: str | None = None,
    ) -> tuple[list[int], int]:
        numbers = self.search_numbers(
            where, sort, experiment, limit, offset, include_deleted, parent_uuid
        )
        total = implied_total(numbers, limit, offset)
        if total is None:
            total = self.count_runs(where, experiment, include_deleted, parent_uuid)
        return numbers, total

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
        with self.engine.connect() as conn:
            return _search.search_page(
                conn,
                self._catalog_cache(),
                where,
                sort,
                experiment,
                limit,
                offset,
                include_deleted,
                parent_uuid,
            )

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
        with self.engine.connect() as conn:
            return _search.count_runs(
                conn, self._catalog_cache(), where, experiment, include_deleted, parent_uuid
            )

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
        with self.engine.connect() as conn:
            return _search.count_runs_within(
                conn, self._catalog_cache(), steps, where, experiment, include_deleted, parent_uuid
            )

    def _catalog_cache(self) -> CatalogCache:
        with self._lock:
            if self._catalog is None:
                from labkeep.store.sql._search import CatalogCache

                self._catalog = CatalogCache()
            return self._catalog

    def get_run_table(self, numbers: Sequence[int]) -> dict[str, Any]:
        from labkeep.store.sql._table import read_run_table

        with self.engine.connect() as conn:
            try:
                return read_run_table(conn, numbers)
            except NotFoundError as exc:
                raise NotFoundError(f"{exc} in {self.uri}") from None

    def get_records(self, numbers: Sequence[int]) -> list[RunRecord]:
        from sqlalchemy import select

        from labkeep.store.sql._schema import artifacts, metrics, params, runs, summaries, tags

        infos: dict[int, RunInfo] = {}
        par: dict[int, dict[str, Any]] = {n: {} for n in numbers}
        summ: dict[int, dict[str, Any]] = {n: {} for n in numbers}
        mets: dict[int, dict[str, MetricSummary]] = {n: {} for n in numbers}
        tgs: dict[int, list[str]] = {n: [] for n in numbers}
        arts: dict[int, list[Artifact]] = {n: [] for n in numbers}
        with self.engine.connect() as conn:
            for lo in range(0, len(numbers), _IN_CHUNK):
                part = list(numbers[lo : lo + _IN_CHUNK])
                for row in conn.execute(self._run_select().where(runs.c.number.in_(part))):
                    infos[row.number] = self._info(row)
                for table, target in ((params, par), (summaries, summ)):
                    q = select(table.c.run_number, table.c.key, table.c.json).where(
                        table.c.run_number.in_(part)
                    )
                    for number, key, exact in conn.execute(q.order_by(table.c.key)):
                        target[number][key] = json.loads(exact)
                q = select(metrics).where(metrics.c.run_number.in_(part)).order_by(metrics.c.key)
                for row in conn.execute(q):
                    m = row._mapping
                    mets[m["run_number"]][m["key"]] = MetricSummary(
                        key=m["key"],
                        last=float("nan") if m["last"] is None else m["last"],
                        last_step=m["last_step"],
                        last_time=m["last_time"],
                        min=m["min"],
                        max=m["max"],
                        count=m["count"],
                    )
                q = select(tags).where(tags.c.run_number.in_(part)).order_by(tags.c.tag)
                for number, tag in conn.execute(q):
                    tgs[number].append(tag)
                q = select(artifacts).where(artifacts.c.run_number.in_(part))
                for row in conn.execute(q.order_by(artifacts.c.path)):
                    m = row._mapping
                    arts[m["run_number"]].append(
                        Artifact(m["path"], m["sha256"], m["size"], m["kind"], m["created"])
                    )
        missing = [n for n in numbers if n not in infos]
        if missing:
            raise NotFoundError(f"no run {missing[0]} in {self.uri}")
        return [
            RunRecord(infos[n], par[n], mets[n], summ[n], tuple(tgs[n]), tuple(arts[n]))
            for n in numbers
        ]

    def get_history_bytes(self, number: int, key: str) -> tuple[bytes, bytes, bytes]:
        # The hot read of the UI's charts and of run.series(): straight through the DB-API
        # connection, no SQLAlchemy on the way.
        with self._lock:
            conn = self.writer()
            cur = conn.raw.cursor()
            try:
                cur.execute(
                    conn.sql(
                        "SELECT steps, vals, times FROM metric_chunks "
                        "WHERE run_number = ? AND key = ? ORDER BY id"
                    ),
                    (number, key),
                )
                rows = cur.fetchall()
            finally:
                cur.close()
                conn.raw.commit()
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
        from sqlalchemy import select

        from labkeep.store.sql._schema import snapshots

        with self.engine.connect() as conn:
            q = select(snapshots.c.data).where(snapshots.c.run_number == number)
            data = conn.execute(q).scalar()
        if data is None:
            return None
        snapshot: dict[str, Any] = json.loads(data)
        return snapshot

    def get_output(self, number: int, after: int = 0, limit: int | None = None) -> list[OutputLine]:
        from sqlalchemy import select

        from labkeep.store.sql._schema import output_lines as ol

        q = (
            select(ol.c.id, ol.c.stream, ol.c.time, ol.c.text)
            .where(ol.c.run_number == number, ol.c.id > after)
            .order_by(ol.c.id)
        )
        if limit is not None:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            return [OutputLine(*row) for row in conn.execute(q)]

    def metric_keys(self, number: int) -> list[str]:
        from sqlalchemy import select

        from labkeep.store.sql._schema import metrics

        with self.engine.connect() as conn:
            q = select(metrics.c.key).where(metrics.c.run_number == number).order_by(metrics.c.key)
            return list(conn.execute(q).scalars())

    def list_experiments(self) -> list[str]:
        from sqlalchemy import select

        from labkeep.store.sql._schema import experiments

        with self.engine.connect() as conn:
            q = select(experiments.c.name).order_by(experiments.c.id)
            return list(conn.execute(q).scalars())

    def running_runs(self) -> list[RunInfo]:
        from labkeep.store.sql._schema import runs

        with self.engine.connect() as conn:
            q = self._run_select().where(runs.c.status == RunStatus.RUNNING.value)
            return [self._info(row) for row in conn.execute(q)]

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
        from sqlalchemy import select

        from labkeep.store.sql._schema import runs

        with self.engine.connect() as conn:
            found = conn.execute(select(runs.c.uuid).where(runs.c.number == number)).scalar()
        if found is None:
            raise NotFoundError(f"no run {number} in {self.uri}")
        return str(found)

    def set_deleted(self, numbers: Sequence[int], deleted: bool) -> None:
        from sqlalchemy import update

        from labkeep.store.sql._schema import runs

        with self.engine.begin() as conn:
            conn.execute(
                update(runs).where(runs.c.number.in_(list(numbers))).values(deleted=deleted)
            )

    def purge(self, numbers: Sequence[int]) -> int:
        from sqlalchemy import delete, select

        from labkeep.store.sql import _schema as s

        with self.engine.begin() as conn:
            doomed = list(
                conn.execute(
                    select(s.runs.c.number).where(
                        s.runs.c.number.in_(list(numbers)), s.runs.c.deleted.is_(True)
                    )
                ).scalars()
            )
            if not doomed:
                return 0
            # Every table that holds rows of a run (the foreign keys are not relied on: SQLite
            # enforces them only when asked).
            for table in reversed(s.metadata.sorted_tables):
                if "run_number" not in table.c:
                    continue
                conn.execute(delete(table).where(table.c.run_number.in_(doomed)))
            conn.execute(delete(s.runs).where(s.runs.c.number.in_(doomed)))
            # Blobs no run refers to any more go too.
            orphans = list(
                conn.execute(
                    select(s.blobs.c.sha256).where(
                        ~s.blobs.c.sha256.in_(select(s.artifacts.c.sha256).distinct())
                    )
                ).scalars()
            )
            if orphans:
                conn.execute(delete(s.blobs).where(s.blobs.c.sha256.in_(orphans)))
        for sha in orphans:
            self.blobs.path(sha).unlink(missing_ok=True)
        return len(doomed)


def check_reachable(location: StoreLocation) -> None:
    """Raise StoreError with a one-line reason when the database cannot be reached."""
    conn = connect(location, create=False)
    conn.close()


__all__ = ["SqlStore", "StoreError", "check_reachable"]
