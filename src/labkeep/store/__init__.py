"""Where runs live: the Store interface and its backends, picked by URI."""

from __future__ import annotations

from labkeep.store._base import (
    MetricColumns,
    RunFinish,
    RunStart,
    Store,
    WriteBatch,
    implied_total,
)
from labkeep.store._blobs import BlobDirectory, file_sha256
from labkeep.store._gc import garbage_report_to_json
from labkeep.store._uri import StoreLocation, locate_store, open_store

# What the layers above use; a test pins it (tests/unit/test_public_names.py).
__all__ = [
    "BlobDirectory",
    "MetricColumns",
    "RunFinish",
    "RunStart",
    "Store",
    "StoreLocation",
    "WriteBatch",
    "file_sha256",
    "garbage_report_to_json",
    "implied_total",
    "locate_store",
    "open_store",
]
