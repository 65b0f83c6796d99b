"""Alembic, driven from code: create a fresh store, upgrade an old one, list revisions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labkeep.errors import StoreError
from labkeep.store._uri import StoreLocation

MIGRATIONS = Path(__file__).with_name("migrations")


def _config(connection: Any, blob_dir: Path | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    # Migrations that read blobs (0004 lists the files of code manifests) find them here.
    cfg.attributes["blob_dir"] = blob_dir
    return cfg


def make_engine(location: StoreLocation) -> Any:
    """A SQLAlchemy engine with labkeep's connection settings."""
    from sqlalchemy import create_engine, event

    if location.kind == "sqlite":
        from labkeep.store.sql._connect import (
            configure_sqlite,
            open_sqlite_readonly,
            read_only_reason,
        )

        path = location.sqlite_path
        read_only = path.exists() and read_only_reason(path) is not None
        if read_only:
            engine = create_engine("sqlite://", creator=lambda: open_sqlite_readonly(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(location.db_url, connect_args={"timeout": 120})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            configure_sqlite(dbapi_conn, read_only=read_only)

        return engine
    return create_engine(location.db_url, pool_pre_ping=True, connect_args={"connect_timeout": 10})


def upgrade(location: StoreLocation, revision: str = "head") -> tuple[str | None, str]:
    """Migrate the store to ``revision``; return (revision before, revision after)."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.exc import OperationalError

    engine = make_engine(location)
    try:
        with engine.begin() as conn:
            before = MigrationContext.configure(conn).get_current_revision()
            command.upgrade(_config(conn, location.blob_dir), revision)
            after = MigrationContext.configure(conn).get_current_revision()
    except OperationalError as exc:
        raise StoreError(f"cannot migrate the store at {location.uri}: {exc.orig}") from exc
    finally:
        engine.dispose()
    return before, after or ""


def revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    cfg = _config(None)
    return {rev.revision for rev in ScriptDirectory.from_config(cfg).walk_revisions()}


def upgrade_store(location: StoreLocation) -> tuple[str | None, str]:
    """:func:`upgrade` to the newest schema, one migrator at a time (``labkeep db upgrade``):
    safe to repeat, and to run while other processes migrate the same store."""
    from labkeep.store.sql._connect import connect_postgresql, migration_lock

    if location.kind == "sqlite":
        with migration_lock(location):
            return upgrade(location)
    conn = connect_postgresql(location)
    try:
        with migration_lock(location, conn):
            return upgrade(location)
    finally:
        conn.close()
