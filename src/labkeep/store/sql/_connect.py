"""DB-API connections for the write path, and the schema check that guards them.

The write path talks to the database through the driver's own DB-API connection (stdlib
``sqlite3``, or ``psycopg``): importing SQLAlchemy alone costs ~250 ms, more than a short run
may take. A store writes on one connection and reads on a small pool of others
(``_store``), so a read never queues behind a write. SQLAlchemy and Alembic are imported
only to migrate a store (a new SQLite store is made from ``schema_sqlite.sql``, generated
from the models).

A SQLite store that cannot be written (a read-only mount) is opened read-only, so it can
still be read; its connection refuses transactions with :class:`ReadOnlyStoreError`. SQLite's
errors for a damaged file become one :class:`DamagedStoreError` naming it
(:func:`damage_reported`). A new database is built whole beside its final name and linked
into place, so an existing ``labkeep.db`` of 0 bytes is damage, never a store being made.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from labkeep.errors import DamagedStoreError, ReadOnlyStoreError, SchemaVersionError, StoreError
from labkeep.store._uri import StoreLocation

# Kept in sync with ``_schema.SCHEMA_REVISION`` (a test checks), so that checking the schema
# does not import SQLAlchemy.
SCHEMA_REVISION = "0011"
BUSY_TIMEOUT_S = 120.0
#: Reads of large stores touch pages all over the file: mapped, they cost no system call.
SQLITE_MMAP_BYTES = 1 << 30
#: Page cache per connection, in KiB (SQLite's default is 2 MiB).
SQLITE_CACHE_KIB = 64 * 1024


class Connection:
    """A DB-API connection plus the dialect facts the write path needs."""

    def __init__(self, raw: Any, dialect: str, read_only: str | None = None) -> None:
        self.raw = raw
        self.dialect = dialect
        #: Why this connection may not write (a read-only store), or None.
        self.read_only = read_only
        self._sql_cache: dict[str, str] = {}

    def sql(self, text: str) -> str:
        """SQL written with ``?`` placeholders, in this driver's paramstyle."""
        if self.dialect == "sqlite":
            return text
        cached = self._sql_cache.get(text)
        if cached is None:
            cached = self._sql_cache[text] = text.replace("?", "%s")
        return cached

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        """A write transaction; on SQLite the write lock is taken up front (BEGIN IMMEDIATE),
        so concurrent writers queue on the busy timeout instead of failing on lock upgrade."""
        if self.read_only is not None:
            raise ReadOnlyStoreError(self.read_only)
        cur = self.raw.cursor()
        if self.dialect == "sqlite":
            _retry_locked(lambda: cur.execute("BEGIN IMMEDIATE"))
        try:
            yield cur
        except BaseException:
            self.raw.rollback()
            raise
        else:
            self.raw.commit()
        finally:
            cur.close()

    @property
    def broken(self) -> bool:
        """Whether the database dropped this connection (psycopg says so; sqlite3 cannot)."""
        return bool(getattr(self.raw, "broken", False) or getattr(self.raw, "closed", False))

    def dropped_while_idle(self) -> bool:
        """Whether a PostgreSQL connection that sat idle was ended by the server meanwhile (a
        restart, ``pg_terminate_backend``): an idle connection is sent nothing unless the
        server gives up on it, so anything waiting to be read means that. No round trip."""
        if self.broken:
            return True
        if self.dialect != "postgresql":
            return False
        import select

        try:
            readable, _, _ = select.select([self.raw.fileno()], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.raw.close()


def _retry_locked(fn: Any) -> Any:
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = 0.005
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() > deadline:
                raise StoreError(
                    f"the store stayed locked by another process for {BUSY_TIMEOUT_S:.0f} s: "
                    "check for a stuck labkeep process"
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def connect(location: StoreLocation, *, create: bool = True) -> Connection:
    """Open a write connection, creating or checking the schema first."""
    if location.kind == "sqlite":
        conn = _connect_sqlite(location, create=create)
    elif location.kind == "postgresql":
        conn = connect_postgresql(location)
    else:
        raise StoreError(f"no SQL connection for a {location.kind} store")
    try:
        with damage_reported(location):
            ensure_schema(conn, location)
    except BaseException:
        conn.close()
        raise
    return conn


#: SQLite's primary result codes for a damaged file, and for a write to a read-only one.
_SQLITE_CORRUPT, _SQLITE_NOTADB, _SQLITE_READONLY = 11, 26, 8


def damaged_database(location: StoreLocation, exc: BaseException) -> StoreError | None:
    """The one-line error for a SQLite error that means the database file is damaged or
    read-only (also when SQLAlchemy wraps it), or None for any other error."""
    orig = getattr(exc, "orig", None) or exc
    if not isinstance(orig, sqlite3.DatabaseError) or location.kind != "sqlite":
        return None
    code = getattr(orig, "sqlite_errorcode", None)
    text = str(orig)
    if (code is not None and code & 0xFF == _SQLITE_READONLY) or "readonly database" in text:
        return ReadOnlyStoreError(
            f"the store at {location.sqlite_path.parent} is read-only ({text}): reads work; "
            "changes need a writable copy"
        )
    if code is not None:
        if code & 0xFF not in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
            return None
    elif "malformed" not in text and "not a database" not in text:
        return None
    return DamagedStoreError(
        f"the store's database {location.sqlite_path} is damaged ({text}): "
        "`labkeep db check` says what is damaged, `labkeep db recover` rebuilds it from what "
        "can be read"
    )


@contextlib.contextmanager
def damage_reported(location: StoreLocation) -> Iterator[None]:
    """Raise :class:`DamagedStoreError` (or :class:`ReadOnlyStoreError`) in place of
    SQLite's errors for a damaged (or read-only) file."""
    try:
        yield
    except Exception as exc:
        error = damaged_database(location, exc)
        if error is None:
            raise
        raise error from exc


def _connect_sqlite(location: StoreLocation, *, create: bool) -> Connection:
    path = location.sqlite_path
    if not path.exists():
        if not create:
            raise StoreError(f"no store at {path.parent}: log a run first, or pass --store")
        _create_sqlite(path)
    elif path.is_file() and path.stat().st_size == 0:
        # A store's file is never empty (it is created whole, below): this one lost its
        # content, and treating it as a new store would hide that.
        raise DamagedStoreError(
            f"the store's database {path} is empty (0 bytes), not a labkeep store: restore it "
            "from a backup, or delete it to start an empty store"
        )
    read_only = read_only_reason(path)
    with damage_reported(location):
        if read_only is None:
            raw = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        else:
            raw = open_sqlite_readonly(path)
            raw.isolation_level = None
        try:
            configure_sqlite(raw, read_only=read_only is not None)
        except sqlite3.OperationalError:
            raw.close()
            if read_only is not None or not _disk_full(path):
                raise
            # No room for SQLite's WAL index: read the store as it is, write nothing.
            read_only = "its disk is full"
            raw = open_sqlite_readonly(path)
            raw.isolation_level = None
            configure_sqlite(raw, read_only=True)
        except BaseException:
            raw.close()
            raise
    message = None if read_only is None else read_only_message(path, read_only)
    # isolation_level=None leaves transactions to us; give it a DB-API commit/rollback.
    return Connection(_AutocommitSqlite(raw), "sqlite", message)


def read_only_message(path: Path, reason: str) -> str:
    return (
        f"the store at {path.parent} is read-only ({reason}): reads work; changes need a "
        "writable store"
    )


def read_only_reason(path: Path) -> str | None:
    """Why a SQLite store cannot be written (a read-only file system, files or folder that
    cannot be written), or None when it can. Such a store is opened read-only: SQLite would
    otherwise fail to create its WAL index, even to read."""
    try:
        flags = os.statvfs(path.parent).f_flag
    except OSError:
        return None
    if flags & os.ST_RDONLY:
        return "it is on a read-only file system"
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return "its files cannot be written"
    return None


def _disk_full(path: Path) -> bool:
    """Whether the file system holding ``path`` has no space left for an ordinary user."""
    try:
        stats = os.statvfs(path.parent)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < 64 << 10


def _create_sqlite(path: Path) -> None:
    """Create a new store's database whole, then link it into place: a ``labkeep.db`` that
    exists always has its schema, so an empty one is damage, never a store being made."""
    from labkeep.store.sql._ddl import create_fresh

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create a store at {path.parent}: {exc.strerror}") from exc
    reason = read_only_reason(path)
    if reason is not None:
        raise ReadOnlyStoreError(
            f"no store at {path.parent}, and none can be created there ({reason})"
        )
    tmp = path.with_name(f".{path.name}.new-{os.getpid()}-{time.monotonic_ns()}")
    try:
        raw = sqlite3.connect(tmp, isolation_level=None)
        try:
            raw.execute("PRAGMA journal_mode = WAL")
            create_fresh(raw)
        finally:
            raw.close()
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process made it first
        except OSError:  # a file system without hard links: a rename, nearly as safe
            if not path.exists():
                os.replace(tmp, path)
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)


def open_sqlite_readonly(path: Path) -> sqlite3.Connection:
    """A connection that never writes, not even SQLite's own recovery or WAL index: read-only
    mode, or, where that cannot work (a WAL database whose ``-shm`` index cannot be created
    on a read-only file system), immutable mode, which reads the file as it is."""
    from urllib.parse import quote

    name = quote(str(path))
    raw = sqlite3.connect(
        f"file:{name}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False
    )
    try:
        raw.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the WAL index
        return raw
    except sqlite3.OperationalError as exc:
        raw.close()
        if not any(s in str(exc) for s in ("unable to open", "readonly", "disk I/O", "full")):
            raise
    return sqlite3.connect(
        f"file:{name}?immutable=1", uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False
    )


def configure_sqlite(raw: sqlite3.Connection, *, read_only: bool = False) -> None:
    """Pragmas every labkeep connection to SQLite uses (reads included)."""
    raw.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    if not read_only:
        _retry_locked(lambda: raw.execute("PRAGMA journal_mode = WAL"))
    raw.execute("PRAGMA synchronous = NORMAL")
    raw.execute("PRAGMA foreign_keys = ON")
    raw.execute(f"PRAGMA mmap_size = {SQLITE_MMAP_BYTES}")
    raw.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    raw.execute("PRAGMA temp_store = MEMORY")
    # ``x REGEXP pattern`` in queries (``name.matches('^res')``): Python's re.search.
    raw.create_function("regexp", 2, _regexp, deterministic=True)


def _regexp(pattern: str | None, value: str | None) -> bool | None:
    # The query package is imported by the first query that tests a regex, not by writers.
    from labkeep.query._patterns import sqlite_regexp

    return sqlite_regexp(pattern, value)


class _AutocommitSqlite:
    """sqlite3 in autocommit mode with explicit BEGIN/COMMIT, shaped like a DB-API connection."""

    def __init__(self, raw: sqlite3.Connection) -> None:
        self._raw = raw

    @property
    def sqlite(self) -> sqlite3.Connection:
        return self._raw

    def cursor(self) -> sqlite3.Cursor:
        return self._raw.cursor()

    def commit(self) -> None:
        if self._raw.in_transaction:
            _retry_locked(lambda: self._raw.execute("COMMIT"))

    def rollback(self) -> None:
        if self._raw.in_transaction:
            self._raw.execute("ROLLBACK")

    def close(self) -> None:
        self._raw.close()


def connect_postgresql(location: StoreLocation) -> Connection:
    try:
        import psycopg
    except ImportError as exc:
        raise StoreError("PostgreSQL stores need psycopg: pip install 'labkeep[postgres]'") from exc
    dsn = "postgresql://" + location.db_url.split("://", 1)[1]
    try:
        raw = psycopg.connect(dsn, connect_timeout=10)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"cannot reach PostgreSQL at {location.uri}: {first}") from exc
    return Connection(raw, "postgresql")


def current_revision(conn: Connection) -> str | None:
    cur = conn.raw.cursor()
    try:
        cur.execute("SELECT version_num FROM alembic_version")
        row = cur.fetchone()
        return None if row is None else str(row[0])
    except Exception:
        conn.raw.rollback()
        return None
    finally:
        cur.close()
        if conn.dialect == "postgresql":
            conn.raw.rollback()


def ensure_schema(conn: Connection, location: StoreLocation) -> None:
    """Create a fresh store's schema; refuse an old one (``labkeep db upgrade`` migrates it)."""
    revision = current_revision(conn)
    if revision == SCHEMA_REVISION:
        return
    if conn.read_only is not None and revision is None:
        raise StoreError(f"{conn.read_only}, and it holds no labkeep store to read")
    if revision is None:
        with migration_lock(location, conn):
            if current_revision(conn) is None:
                if conn.dialect == "sqlite" and _is_empty_sqlite(conn):
                    from labkeep.store.sql._ddl import create_fresh

                    create_fresh(conn.raw.sqlite)
                else:
                    from labkeep.store.sql._migrate import upgrade

                    upgrade(location)
        return
    known = _known_revisions()
    if revision in known:
        raise SchemaVersionError(
            f"the store at {location.uri} has schema {revision}, older than this labkeep's "
            f"{SCHEMA_REVISION}: run `labkeep db upgrade`"
        )
    raise SchemaVersionError(
        f"the store at {location.uri} was written by a newer labkeep (schema {revision}): "
        "upgrade labkeep"
    )


def _is_empty_sqlite(conn: Connection) -> bool:
    cur = conn.raw.cursor()
    try:
        cur.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'")
        return bool(cur.fetchone()[0] == 0)
    finally:
        cur.close()


def _known_revisions() -> set[str]:
    from labkeep.store.sql._migrate import revisions

    return revisions()


@contextlib.contextmanager
def migration_lock(location: StoreLocation, conn: Connection | None = None) -> Iterator[None]:
    """One migrator at a time: a lock file beside a SQLite store, an advisory lock on PostgreSQL."""
    if location.kind == "sqlite":
        location.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(location.sqlite_path.parent / ".migrate.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
        return
    assert conn is not None
    cur = conn.raw.cursor()
    conn.raw.commit()
    conn.raw.autocommit = True
    try:
        cur.execute("SELECT pg_advisory_lock(4242001)")
        yield
    finally:
        cur.execute("SELECT pg_advisory_unlock(4242001)")
        cur.close()
        conn.raw.autocommit = False
