"""The REST backend: a labkeep server's store, used through the same Store interface.

``codec`` is the wire format of the store protocol, shared by :class:`RestStore` and the
server routes it calls (``labkeep.server``)."""

from labkeep.store.rest import _codec as codec
from labkeep.store.rest._store import RestStore

__all__ = ["RestStore", "codec"]
