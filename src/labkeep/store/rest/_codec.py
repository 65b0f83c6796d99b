"""The wire formats of the store protocol, shared by the server and :class:`RestStore`.

A WriteBatch travels in one of two bodies:

- ``application/x-labkeep-batch`` (what RestStore sends): ``<u32 header length>``, a JSON
  header with every field but the metric columns (``"metrics": [[key, n], ...]``), then per
  key in that order the raw little-endian int64 steps, float64 values and float64 times.
  Decoding is three ``frombytes`` per key: no parsing per point.
- ``application/json`` (for other clients): the same header, with ``"metrics"`` a dict of
  ``{"steps": b64, "values": b64, "times": b64}`` per key.

JSON here is Python's: NaN and infinities in params and summaries travel as ``NaN``,
``Infinity`` and ``-Infinity``, which Python reads back as the same floats.
"""

from __future__ import annotations

import base64
import json
import struct
import sys
from array import array
from dataclasses import asdict
from typing import Any

from labkeep.entities import (
    Artifact,
    ArtifactFile,
    ArtifactLink,
    ArtifactVersion,
    MediaEntry,
    MetricSummary,
    ModelVersion,
    NamedArtifact,
    OutputLine,
    RegisteredModel,
    RunInfo,
    RunRecord,
    RunStatus,
)
from labkeep.errors import InvalidInputError
from labkeep.store._base import MetricColumns, RunFinish, RunResume, RunStart, WriteBatch

BATCH_MEDIA_TYPE = "application/x-labkeep-batch"
HISTORY_MEDIA_TYPE = "application/x-labkeep-history"
_HEADER_LENGTH = struct.Struct("<I")
_SWAP = sys.byteorder == "big"


def dumps(value: Any) -> bytes:
    """JSON as the store protocol writes it (NaN and infinities allowed)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _le(column: array[Any]) -> bytes:
    if _SWAP:  # pragma: no cover - big-endian hosts only
        column = array(column.typecode, column)
        column.byteswap()
    return column.tobytes()


def _column(typecode: str, data: bytes | memoryview) -> array[Any]:
    column: array[Any] = array(typecode)
    column.frombytes(data)
    if _SWAP:  # pragma: no cover - big-endian hosts only
        column.byteswap()
    return column


def _header(batch: WriteBatch) -> dict[str, Any]:
    return {
        "run_uuid": batch.run_uuid,
        "writer": batch.writer,
        "position": batch.position,
        "start": None if batch.start is None else asdict(batch.start),
        "params": batch.params,
        "summary": batch.summary,
        "tags_added": batch.tags_added,
        "tags_removed": batch.tags_removed,
        "notes": batch.notes,
        "artifacts": [asdict(a) for a in batch.artifacts],
        "finish": None if batch.finish is None else asdict(batch.finish),
        "resume": None if batch.resume is None else asdict(batch.resume),
        "heartbeat": batch.heartbeat,
        "snapshot": batch.snapshot,
        "snapshot_add": batch.snapshot_add,
        "output": [list(line) for line in batch.output],
        "media": [media_to_json(m) for m in batch.media],
    }


def encode_batch(batch: WriteBatch) -> bytes:
    """The binary body of ``batch`` (see the module docstring)."""
    header = _header(batch)
    parts: list[bytes] = []
    keys = []
    for key, cols in batch.metrics.items():
        n = len(cols.steps)
        if not (len(cols.values) == len(cols.times) == n):
            raise InvalidInputError(f"metric {key!r} has columns of different lengths")
        keys.append([key, n])
        parts += (_le(cols.steps), _le(cols.values), _le(cols.times))
    header["metrics"] = keys
    head = dumps(header)
    return b"".join([_HEADER_LENGTH.pack(len(head)), head, *parts])


def encode_batch_json(batch: WriteBatch) -> bytes:
    """The JSON body of ``batch``, metric columns as base64."""
    header = _header(batch)
    header["metrics"] = {
        key: {
            "steps": base64.b64encode(_le(cols.steps)).decode(),
            "values": base64.b64encode(_le(cols.values)).decode(),
            "times": base64.b64encode(_le(cols.times)).decode(),
        }
        for key, cols in batch.metrics.items()
    }
    return dumps(header)


def _batch_from_header(header: dict[str, Any]) -> WriteBatch:
    start = header.get("start")
    finish = header.get("finish")
    resume = header.get("resume")
    return WriteBatch(
        run_uuid=str(header["run_uuid"]),
        writer=str(header["writer"]),
        position=int(header["position"]),
        start=None if start is None else RunStart(**start),
        params=dict(header.get("params") or {}),
        summary=dict(header.get("summary") or {}),
        tags_added=list(header.get("tags_added") or ()),
        tags_removed=list(header.get("tags_removed") or ()),
        notes=header.get("notes"),
        artifacts=[Artifact(**a) for a in header.get("artifacts") or ()],
        finish=None if finish is None else RunFinish(**finish),
        resume=None if resume is None else RunResume(**resume),
        heartbeat=header.get("heartbeat"),
        snapshot=header.get("snapshot"),
        snapshot_add=header.get("snapshot_add") or {},
        output=[(str(s), float(t), str(text)) for s, t, text in header.get("output") or ()],
        media=[media_from_json(m) for m in header.get("media") or ()],
    )


def decode_batch(body: bytes, media_type: str = BATCH_MEDIA_TYPE) -> WriteBatch:
    """A WriteBatch from either body; InvalidInputError with one line when it is malformed."""
    try:
        if media_type == BATCH_MEDIA_TYPE:
            return _decode_binary(memoryview(body))
        if media_type == "application/json":
            return _decode_json(body)
    except InvalidInputError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, IndexError, struct.error) as exc:
        # AttributeError: a JSON body that is not an object; IndexError: a cut binary one.
        raise InvalidInputError(
            f"malformed write batch ({exc}): send what RestStore sends"
        ) from None
    raise InvalidInputError(
        f"a write batch is {BATCH_MEDIA_TYPE} or application/json, not {media_type or 'untyped'}"
    )


def _decode_binary(body: memoryview) -> WriteBatch:
    (length,) = _HEADER_LENGTH.unpack_from(body, 0)
    start = _HEADER_LENGTH.size
    header = json.loads(bytes(body[start : start + length]))
    batch = _batch_from_header(header)
    pos = start + length
    for key, n in header.get("metrics") or ():
        size = 8 * int(n)
        if n < 0 or pos + 3 * size > len(body):
            raise InvalidInputError(f"write batch is truncated in metric {key!r}")
        batch.metrics[str(key)] = MetricColumns(
            _column("q", body[pos : pos + size]),
            _column("d", body[pos + size : pos + 2 * size]),
            _column("d", body[pos + 2 * size : pos + 3 * size]),
        )
        pos += 3 * size
    if pos != len(body):
        raise InvalidInputError("write batch has trailing bytes after its metric columns")
    return batch


def _decode_json(body: bytes) -> WriteBatch:
    header = json.loads(body)
    batch = _batch_from_header(header)
    for key, cols in (header.get("metrics") or {}).items():
        steps = _column("q", base64.b64decode(cols["steps"]))
        values = _column("d", base64.b64decode(cols["values"]))
        times = _column("d", base64.b64decode(cols["times"]))
        if not (len(steps) == len(values) == len(times)):
            raise InvalidInputError(f"metric {key!r} has columns of different lengths")
        batch.metrics[str(key)] = MetricColumns(steps, values, times)
    return batch


# -- reads ----------------------------------------------------------------------------


def info_to_json(info: RunInfo) -> dict[str, Any]:
    data = asdict(info)
    data["status"] = info.status.value
    return data


def info_from_json(data: dict[str, Any]) -> RunInfo:
    return RunInfo(**{**data, "status": RunStatus(data["status"])})


def record_to_json(record: RunRecord) -> dict[str, Any]:
    return {
        "info": info_to_json(record.info),
        "params": record.params,
        "metrics": {key: asdict(m) for key, m in record.metrics.items()},
        "summary": record.summary,
        "tags": list(record.tags),
        "artifacts": [asdict(a) for a in record.artifacts],
    }


def record_from_json(data: dict[str, Any]) -> RunRecord:
    return RunRecord(
        info=info_from_json(data["info"]),
        params=data["params"],
        metrics={key: MetricSummary(**m) for key, m in data["metrics"].items()},
        summary=data["summary"],
        tags=tuple(data["tags"]),
        artifacts=tuple(Artifact(**a) for a in data["artifacts"]),
    )


def media_to_json(entry: MediaEntry) -> dict[str, Any]:
    return asdict(entry)


def media_from_json(data: dict[str, Any]) -> MediaEntry:
    return MediaEntry(**data)


def output_to_json(lines: list[OutputLine]) -> list[list[Any]]:
    return [[line.id, line.stream, line.time, line.text] for line in lines]


def output_from_json(rows: list[list[Any]]) -> list[OutputLine]:
    return [OutputLine(int(i), str(s), float(t), str(text)) for i, s, t, text in rows]


def split_history(body: bytes) -> tuple[bytes, bytes, bytes]:
    """(steps, values, times) of a history body: three equal thirds."""
    third, rest = divmod(len(body), 3)
    if rest or third % 8:
        raise InvalidInputError(f"metric history of {len(body)} bytes is not three columns")
    return body[:third], body[third : 2 * third], body[2 * third :]


# -- registry and versioned artifacts -------------------------------------------------


def registry_to_json(value: Any) -> Any:
    """A registry or lineage entity (or a list of them) as JSON: its fields."""
    if isinstance(value, list):
        return [registry_to_json(v) for v in value]
    return asdict(value)


def model_from_json(data: dict[str, Any]) -> RegisteredModel:
    return RegisteredModel(
        **{**data, "aliases": {str(k): int(v) for k, v in data["aliases"].items()}}
    )


def model_version_from_json(data: dict[str, Any]) -> ModelVersion:
    return ModelVersion(**{**data, "aliases": tuple(data["aliases"])})


def artifact_version_from_json(data: dict[str, Any]) -> ArtifactVersion:
    return ArtifactVersion(
        **{
            **data,
            "aliases": tuple(data["aliases"]),
            "files": tuple(ArtifactFile(**f) for f in data["files"]),
        }
    )


def named_artifact_from_json(data: dict[str, Any]) -> NamedArtifact:
    return NamedArtifact(**data)


def artifact_link_from_json(data: dict[str, Any]) -> ArtifactLink:
    return ArtifactLink(**data)
