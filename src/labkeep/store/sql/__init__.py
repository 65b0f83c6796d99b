"""SQL backends (SQLite, PostgreSQL) of the Store interface."""

from labkeep.store.sql._store import SqlStore

__all__ = ["SqlStore"]
