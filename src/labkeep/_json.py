"""Runs as JSON-ready dicts: one shape for ``labkeep show --json``, ``compare --json`` and
the REST API."""

from __future__ import annotations

import math
from typing import Any

from labkeep.entities import RunRecord


def plain(value: Any) -> Any:
    """JSON-safe: non-finite floats become the strings 'nan', 'inf', '-inf'."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def record_as_dict(rec: RunRecord) -> dict[str, Any]:
    """A run as JSON: attributes, tags, params, metric summaries, summary and artifacts
    (non-finite numbers as the strings 'nan', 'inf', '-inf')."""
    info = rec.info
    row: dict[str, Any] = plain(
        {
            "number": info.number,
            "uuid": info.uuid,
            "name": info.name,
            "experiment": info.experiment,
            "status": info.status.value,
            "start_time": info.start_time,
            "end_time": info.end_time,
            "heartbeat": info.heartbeat,
            "duration": info.duration,
            "user": info.user,
            "host": info.host,
            "pid": info.pid,
            "exit_code": info.exit_code,
            "parent_uuid": info.parent_uuid,
            "reproduces_uuid": info.reproduces_uuid,
            "group": info.group,
            "job_type": info.job_type,
            "deleted": info.deleted,
            "notes": info.notes,
            "error": info.error,
            "tags": list(rec.tags),
            "params": rec.params,
            "metrics": {
                k: {
                    "last": m.last,
                    "last_step": m.last_step,
                    "last_time": m.last_time,
                    "min": m.min,
                    "max": m.max,
                    "count": m.count,
                }
                for k, m in rec.metrics.items()
            },
            "summary": rec.summary,
            "artifacts": [
                {"path": a.path, "sha256": a.sha256, "size": a.size, "kind": a.kind}
                for a in rec.artifacts
            ],
        }
    )
    return row
