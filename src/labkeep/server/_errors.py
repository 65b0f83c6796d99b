"""The HTTP status of each LabkeepError, the same on every route (the REST API, the store
protocol, the UI's API): NotFoundError 404, AmbiguousRefError and RunStateError 409,
ReadOnlyStoreError 403, DamagedStoreError 500, StoreError 503 (the server's database is
unavailable: clients retry), every other LabkeepError (bad input, a bad query) 400."""

from __future__ import annotations

from labkeep.errors import (
    AmbiguousRefError,
    DamagedStoreError,
    LabkeepError,
    NotFoundError,
    ReadOnlyStoreError,
    RunStateError,
    StoreError,
)


def error_status(exc: LabkeepError) -> int:
    """The HTTP status a LabkeepError maps to."""
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, AmbiguousRefError | RunStateError):
        return 409
    if isinstance(exc, ReadOnlyStoreError):
        return 403  # the store is on a read-only mount: a change is refused, reads work
    if isinstance(exc, DamagedStoreError):
        return 500  # retrying will not help: the store's content is damaged
    if isinstance(exc, StoreError):
        return 503
    return 400
