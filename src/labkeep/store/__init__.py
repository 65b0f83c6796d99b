"""Where runs live: the Store interface and its backends, picked by URI."""

from __future__ import annotations

from labkeep.store._base import Store, WriteBatch
from labkeep.store._uri import StoreLocation, locate_store, open_store

__all__ = ["Store", "StoreLocation", "WriteBatch", "locate_store", "open_store"]
