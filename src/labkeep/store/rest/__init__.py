"""The REST backend: a labkeep server's store, used through the same Store interface."""

from labkeep.store.rest._store import RestStore

__all__ = ["RestStore"]
