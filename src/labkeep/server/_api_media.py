"""The media a run logged, for the UI's image, figure, histogram and table panels.

- ``GET /runs/{ref}/media``: ``{"keys": {key: kind}}``;
- ``GET /runs/{ref}/media/entries?key=K[&step=S]``: the entries (step, index, meta) of a key;
- ``GET /runs/{ref}/media/content?key=K&step=S[&index=I]``: one item's content: a PNG for an
  image, JSON for a figure, histogram or table (NaN as null, infinities as strings, which a
  browser's ``JSON.parse`` reads). What an image panel's slider asks for at each step: one
  indexed query and one blob read; its ETag is the content's sha256;
- ``GET /runs/{ref}/media/histograms?key=K``: a histogram key over steps, rebinned onto
  shared edges (at most ``steps`` of them, spread evenly), for a heatmap.

An item is looked up among the run's own media, never by a blob id the caller names.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from labkeep._media import CONTENT_TYPES, HISTOGRAM, TABLE, finite_json
from labkeep._values import MAX_INT64, MIN_INT64
from labkeep.entities import MediaEntry
from labkeep.errors import InvalidInputError, NotFoundError
from labkeep.server._api_read import _info, _json, _LabkeepErrorRoute, _store
from labkeep.server._auth import require_read

router = APIRouter(route_class=_LabkeepErrorRoute)
read = [Depends(require_read)]
#: The most steps of a histogram key one heatmap shows, and the bins they are rebinned to.
MAX_HISTOGRAM_STEPS = 200
HEATMAP_BINS = 64


def _entry_json(entry: MediaEntry) -> dict[str, Any]:
    """What a panel needs of an entry (a thousand steps of them load at once): no blob id,
    which the content route looks up itself."""
    return {
        "step": entry.step,
        "index": entry.index,
        "size": entry.size,
        "meta": finite_json(entry.meta),
    }


@router.get("/runs/{ref}/media", dependencies=read)
def media_keys(request: Request, ref: str) -> Response:
    """The run's media keys and their kinds."""
    info = _info(request, ref)
    return _json({"number": info.number, "keys": _store(request).media_keys(info.number)})


@router.get("/runs/{ref}/media/entries", dependencies=read)
def media_entries(
    request: Request,
    ref: str,
    key: str = Query(...),
    step: int | None = Query(None, ge=MIN_INT64, le=MAX_INT64),
) -> Response:
    """What the run logged under ``key``: steps, list places, kinds and meta (no content)."""
    info = _info(request, ref)
    entries = _store(request).list_media(info.number, key, step)
    steps = sorted({e.step for e in entries})
    return _json(
        {
            "key": key,
            "kind": entries[0].kind if entries else None,
            "steps": steps,
            "entries": [_entry_json(e) for e in entries],
        }
    )


@router.get("/runs/{ref}/media/content", dependencies=read)
def media_content(
    request: Request,
    ref: str,
    key: str = Query(...),
    step: int = Query(..., ge=MIN_INT64, le=MAX_INT64),
    index: int = Query(0, ge=0, le=2**31 - 1),
) -> Response:
    """One item's content: ``image/png`` for an image, JSON for the other kinds."""
    store = _store(request)
    info = _info(request, ref)
    entry = next((e for e in store.list_media(info.number, key, step) if e.index == index), None)
    if entry is None:
        raise NotFoundError(f"run {info.number} has no {key!r} at step {step} (index {index})")
    etag = f'"{entry.sha256}"'
    headers = {
        "ETag": etag,
        "Cache-Control": "private, no-cache",
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    data = store.blob_path(entry.sha256).read_bytes()
    if entry.kind == TABLE:
        data = json.dumps(finite_json(json.loads(data)), separators=(",", ":")).encode()
    return Response(
        data, media_type=CONTENT_TYPES.get(entry.kind, "application/octet-stream"), headers=headers
    )


@router.get("/runs/{ref}/media/histograms", dependencies=read)
def media_histograms(
    request: Request,
    ref: str,
    key: str = Query(...),
    steps: int = Query(MAX_HISTOGRAM_STEPS, ge=1, le=MAX_HISTOGRAM_STEPS),
) -> Response:
    """A histogram key over steps: each step's own counts and edges, and all of them
    rebinned onto ``HEATMAP_BINS`` shared bins (``grid``: edges, ``z``: one row per step)."""
    import numpy as np

    store = _store(request)
    info = _info(request, ref)
    entries = [e for e in store.list_media(info.number, key) if e.index == 0]
    if entries and entries[0].kind != HISTOGRAM:
        raise InvalidInputError(f"{key!r} holds {entries[0].kind} media, not histograms")
    if len(entries) > steps:
        picks = np.unique(np.linspace(0, len(entries) - 1, steps).round().astype(int))
        entries = [entries[i] for i in picks]
    hists = [json.loads(store.blob_path(e.sha256).read_bytes()) for e in entries]
    low = min(h["edges"][0] for h in hists)
    high = max(h["edges"][-1] for h in hists)
    if high <= low:
        high = low + 1.0
    grid = np.linspace(low, high, HEATMAP_BINS + 1)
    z = []
    for hist in hists:
        edges = np.asarray(hist["edges"], dtype=np.float64)
        centres = (edges[:-1] + edges[1:]) / 2
        counts, _ = np.histogram(centres, bins=grid, weights=np.asarray(hist["counts"], float))
        z.append(counts.tolist())
    return _json(
        {
            "key": key,
            "steps": [e.step for e in entries],
            "histograms": hists,
            "grid": grid.tolist(),
            "z": z,
        }
    )


__all__ = ["router"]
