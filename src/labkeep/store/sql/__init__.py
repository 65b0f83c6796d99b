"""SQL backends (SQLite, PostgreSQL) of the Store interface, and the administration of their
databases that ``labkeep db`` offers (migrate, check, recover)."""

from labkeep.store.sql._migrate import upgrade_store
from labkeep.store.sql._repair import check_store, recover_sqlite
from labkeep.store.sql._store import SqlStore

__all__ = [
    "SqlStore",
    "check_store",
    "recover_sqlite",
    "upgrade_store",
]
