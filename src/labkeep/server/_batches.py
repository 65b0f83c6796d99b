"""Checks of a write batch that came over the network, before the store applies it.

``RestStore`` sends batches its own journal built from checked calls; anything else that
posts to ``/store/apply`` may send any JSON. The store trusts what it is given (a string
where a time goes, a 70-bit exit code, no run uuid), so the route refuses such a batch with
one line (a 400) instead of letting it fail in the database (a 500) or, worse, be stored.
"""

from __future__ import annotations

import math
from typing import Any

from labkeep._media import KINDS
from labkeep._values import (
    MAX_INT32,
    MAX_INT64,
    MIN_INT32,
    MIN_INT64,
    check_encodable,
    check_key,
    check_text,
    check_value,
)
from labkeep.entities import RunStatus
from labkeep.errors import InvalidInputError
from labkeep.store._base import WriteBatch

_ENDS = frozenset(s.value for s in RunStatus if s.finished)


def check_batch(batch: WriteBatch) -> WriteBatch:
    """``batch`` when every field has the type and range the store needs; else
    InvalidInputError naming the first field that does not."""
    _text(batch.run_uuid, "run_uuid")
    _text(batch.writer, "writer")
    _int(batch.position, "position")
    if batch.start is not None:
        start = batch.start
        _text(start.uuid, "start.uuid")
        check_key(start.experiment, "start.experiment")
        _text(start.name, "start.name", empty=True)
        _number(start.start_time, "start.start_time")
        _text(start.user, "start.user", empty=True)
        _text(start.host, "start.host", empty=True)
        _optional_int(start.pid, "start.pid", bits=32)
        _optional_text(start.parent_uuid, "start.parent_uuid")
        check_text(start.notes, "start.notes")
        _optional_text(start.reproduces_uuid, "start.reproduces_uuid")
        if start.group is not None:
            check_key(start.group, "start.group")
        if start.job_type is not None:
            check_key(start.job_type, "start.job_type")
    if batch.resume is not None:
        _optional_int(batch.resume.pid, "resume.pid", bits=32)
        _text(batch.resume.host, "resume.host", empty=True)
        _number(batch.resume.time, "resume.time")
    for name, values in (("params", batch.params), ("summary", batch.summary)):
        for key, value in values.items():
            check_value(check_key(key, f"{name} key"), value)
    for tag in [*batch.tags_added, *batch.tags_removed]:
        check_key(tag, "tag")
    if batch.notes is not None:
        check_text(batch.notes, "notes")
    for key in batch.metrics:
        check_key(key, "metric key")
    for art in batch.artifacts:
        _text(art.path, "artifact path")
        _sha256(art.sha256, "artifact sha256")
        _int(art.size, "artifact size")
        _text(art.kind, "artifact kind")
        _number(art.created, "artifact created")
    for entry in batch.media:
        check_key(entry.key, "media key")
        _int(entry.step, "media step")
        _int(entry.index, "media index", bits=32)
        if not isinstance(entry.index, int) or entry.index < 0:
            raise InvalidInputError("media index must be 0 or more")
        if entry.kind not in KINDS:
            raise InvalidInputError(f"media kind must be one of {', '.join(KINDS)}")
        _sha256(entry.sha256, "media sha256")
        _int(entry.size, "media size")
        _number(entry.time, "media time")
        if not isinstance(entry.meta, dict):
            raise InvalidInputError("media meta must be an object")
    if batch.finish is not None:
        finish = batch.finish
        if not isinstance(finish.status, str) or finish.status not in _ENDS:
            raise InvalidInputError(f"finish.status must be one of {', '.join(sorted(_ENDS))}")
        _number(finish.end_time, "finish.end_time")
        if finish.error is not None:
            _text(finish.error, "finish.error", empty=True)
        _optional_int(finish.exit_code, "finish.exit_code", bits=32)
    if batch.heartbeat is not None:
        _number(batch.heartbeat, "heartbeat")
    if batch.snapshot is not None and not isinstance(batch.snapshot, dict):
        raise InvalidInputError("snapshot must be an object or null")
    if not isinstance(batch.snapshot_add, dict) or not all(
        isinstance(items, list) for items in batch.snapshot_add.values()
    ):
        raise InvalidInputError("snapshot_add must map names to lists")
    for stream, _time, text in batch.output:
        if stream not in ("stdout", "stderr"):
            raise InvalidInputError("an output line's stream is stdout or stderr")
        _number(_time, "output time")
        _text(text, "output text", empty=True)
    return batch


def _sha256(value: Any, what: str) -> None:
    sha = _text(value, what)
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise InvalidInputError(f"{what} is not 64 lowercase hex digits")


def _text(value: Any, what: str, *, empty: bool = False) -> str:
    """A string (NUL allowed: a script's output may hold one, and SQLite keeps it)."""
    if not isinstance(value, str) or not (value or empty):
        raise InvalidInputError(f"{what} must be a {'' if empty else 'non-empty '}string")
    check_encodable(value, what)
    return value


def _optional_text(value: Any, what: str) -> None:
    if value is not None:
        _text(value, what)


def _int(value: Any, what: str, *, bits: int = 64) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{what} must be an integer")
    low, high = (MIN_INT32, MAX_INT32) if bits == 32 else (MIN_INT64, MAX_INT64)
    if not low <= value <= high:
        raise InvalidInputError(f"{what} is beyond {bits}-bit integers")


def _optional_int(value: Any, what: str, *, bits: int = 64) -> None:
    if value is not None:
        _int(value, what, bits=bits)


def _number(value: Any, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"{what} must be a number")
    if isinstance(value, int) and not MIN_INT64 <= value <= MAX_INT64:
        raise InvalidInputError(f"{what} is beyond 64-bit integers")
    if isinstance(value, float) and math.isnan(value):
        raise InvalidInputError(f"{what} must be a number, not NaN")
