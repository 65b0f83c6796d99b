"""The user-facing REST API: runs, queries, histories, output, snapshots, artifacts.

Every GET depends on ``require_read``, every change on ``require_write``. Errors a user can
cause answer ``{"error": "one-line message"}`` with the status ``_errors.error_status`` gives
every route (404 for what does not exist, 409 for a run reference several runs match, 400
for bad input such as a malformed query, whose message carries the caret line).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from labkeep._values import MAX_COUNT, MAX_INT64
from labkeep.errors import LabkeepError, NotFoundError
from labkeep.server._auth import require_read, require_write
from labkeep.server._errors import error_status

if TYPE_CHECKING:
    from labkeep._client import Client
    from labkeep.entities import RunInfo, RunRecord
    from labkeep.store._base import Store

#: How often (seconds) listing runs looks for runs whose process died.
RECOVER_EVERY_S = 5.0

#: Served artifacts may not script our origin: HTML runs sandboxed, in an opaque origin.
ARTIFACT_HEADERS = {
    "Content-Security-Policy": "sandbox allow-scripts",
    "X-Content-Type-Options": "nosniff",
}
NOTEBOOK_CSP = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:"
)


class _LabkeepErrorRoute(APIRoute):
    """Routes that answer LabkeepErrors as ``{"error": message}`` with a 4xx status."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except LabkeepError as exc:
                return JSONResponse({"error": str(exc)}, status_code=error_status(exc))

        return handle


router = APIRouter(route_class=_LabkeepErrorRoute)
read = [Depends(require_read)]
write = [Depends(require_write)]


def _client(request: Request) -> Client:
    client: Client = request.app.state.client
    return client


def _store(request: Request) -> Store:
    return _client(request).store


def _recover(request: Request) -> None:
    """Notice runs whose process died (and ingest their journals), at most every few seconds."""
    state = request.app.state
    now = time.monotonic()
    last = getattr(state, "read_api_recovered_at", None)
    if last is None or now - last >= RECOVER_EVERY_S:
        state.read_api_recovered_at = now
        _client(request).recover(force=last is not None)


def _info(request: Request, ref: str) -> RunInfo:
    store = _store(request)
    if not store.exists():
        raise NotFoundError(f"no run {ref!r}: the store at {store.uri} has no runs yet")
    return store.resolve_run(ref)


def _record(request: Request, ref: str) -> RunRecord:
    info = _info(request, ref)
    return _store(request).get_records([info.number])[0]


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    data = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
    return Response(data, status, headers, media_type="application/json")


# -- runs ---------------------------------------------------------------------------------------


@router.get("/experiments", dependencies=read)
def list_experiments(request: Request) -> Response:
    from labkeep.server._runs import experiment_counts

    _recover(request)
    return _json(experiment_counts(_store(request)))


@router.get("/runs", dependencies=read)
def search_runs(
    request: Request,
    experiment: str | None = None,
    where: str = "",
    sort: str = "",
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_COUNT),
    deleted: bool = False,
    top: bool = False,
    parent: str = "",
) -> Response:
    """A page of runs matching ``where``, ordered by ``sort``, with the total and the keys
    of the store (for column pickers). ``top``: only runs without a parent; ``parent`` (a
    run's number or uuid): only its children. Each run carries ``children``, its child
    runs counted by status (the runs table's tree)."""
    from labkeep._json import record_as_dict
    from labkeep.server._runs import search_runs as search

    started = time.perf_counter()
    _recover(request)
    page = search(
        _store(request),
        experiment=experiment or None,
        where=where,
        sort=sort,
        limit=limit,
        offset=offset,
        deleted=deleted,
        top=top,
        parent_uuid=_info(request, parent).uuid if parent else None,
    )
    body = {
        "total": page.total,
        "offset": offset,
        "limit": limit,
        "runs": [
            {**record_as_dict(rec), "children": page.children.get(rec.info.uuid, {})}
            for rec in page.records
        ],
        "keys": {
            "params": sorted(page.catalog.params),
            "metrics": sorted(page.catalog.metrics),
            "summary": sorted(page.catalog.summaries),
        },
    }
    elapsed = (time.perf_counter() - started) * 1000
    return _json(body, headers={"Server-Timing": f"app;dur={elapsed:.1f}"})


#: How many of a run's children the run's page lists (the runs table lists them all).
RUN_PAGE_CHILDREN = 50


@router.get("/runs/{ref}", dependencies=read)
def get_run(request: Request, ref: str) -> Response:
    """The run, with its parent (number, name, status) and its first children, oldest
    first, and how many it has in all."""
    from labkeep._json import record_as_dict

    _recover(request)
    record = _record(request, ref)
    store = _store(request)
    parent = None
    if record.info.parent_uuid:
        try:
            found = store.resolve_run(record.info.parent_uuid)
            parent = {"number": found.number, "name": found.name, "status": found.status.value}
        except LabkeepError:
            parent = None  # purged: its uuid is all there is
    numbers = store.search_numbers(sort="number", parent_uuid=record.info.uuid)
    children = [
        {"number": c.number, "name": c.name, "status": c.status.value}
        for c in (r.info for r in store.get_records(numbers[:RUN_PAGE_CHILDREN]))
    ]
    body = {
        **record_as_dict(record),
        "parent": parent,
        "children": children,
        "children_total": len(numbers),
    }
    return _json(body)


@router.get("/compare", dependencies=read)
def compare(request: Request, runs: str, keys: str = "") -> Response:
    """The runs side by side: their rows, the param keys (and which differ), the metric keys."""
    from labkeep.errors import InvalidInputError
    from labkeep.server._runs import compare_records

    refs = [r.strip() for r in runs.split(",") if r.strip()]
    if not refs:
        raise InvalidInputError("give the runs to compare: ?runs=3,4,7")
    if len(refs) > 100:
        raise InvalidInputError(f"{len(refs)} runs are too many to compare: pick at most 100")
    numbers = list(dict.fromkeys(_info(request, ref).number for ref in refs))
    records = _store(request).get_records(numbers)
    wanted = [k.strip() for k in keys.split(",") if k.strip()] or None
    return _json(compare_records(records, wanted))


# -- metrics and output -------------------------------------------------------------------------


@router.get("/runs/{ref}/metrics/{key:path}/history", dependencies=read)
def metric_history(
    request: Request,
    ref: str,
    key: str,
    points: int = Query(1000, ge=4, le=20_000),
    x: Literal["step", "time"] = "step",
    x_min: float | None = None,
    x_max: float | None = None,
    since: int = Query(0, ge=0, le=MAX_COUNT),
) -> Response:
    """One metric's points ordered by ``x``, downsampled on the server to at most ``points``
    (first, min, max and last of each bucket survive); ``since`` skips the first points
    logged (what a live chart has already), ``x_min``/``x_max`` zoom in."""
    from labkeep.server._history import Series, history_json, prepare

    info = _info(request, ref)
    series = Series.from_bytes(_store(request).get_history_bytes(info.number, key))
    chosen, downsampled = prepare(
        series, x=x, points=points, x_min=x_min, x_max=x_max, since=min(since, len(series))
    )
    body = history_json(key, len(series), chosen, downsampled, since)
    return Response(body, media_type="application/json")


@router.get("/runs/{ref}/output", dependencies=read)
def run_output(
    request: Request,
    ref: str,
    after: int = Query(0, ge=0, le=MAX_INT64),
    limit: int = Query(1000, ge=1, le=10_000),
    tail: int | None = Query(None, ge=1, le=10_000),
) -> Response:
    """Console lines with id greater than ``after``, oldest first (``tail``: only the last
    ``tail`` of them, for a first look at a long log)."""
    info = _info(request, ref)
    store = _store(request)
    lines = store.get_output(info.number, after=after, limit=None if tail else limit)
    if tail:
        lines = lines[-tail:]
    last_id = lines[-1].id if lines else after
    return _json(
        {
            "lines": [
                {"id": ln.id, "stream": ln.stream, "time": ln.time, "text": ln.text} for ln in lines
            ],
            "last_id": last_id,
        }
    )


# -- snapshot and code --------------------------------------------------------------------------


def _snapshot(request: Request, ref: str) -> tuple[RunInfo, dict[str, Any]]:
    info = _info(request, ref)
    snapshot = _store(request).get_snapshot(info.number)
    if snapshot is None:
        raise NotFoundError(f"run {info.number} has no snapshot (it ran with capture off)")
    return info, snapshot


def _blob_text(request: Request, sha256: str) -> str:
    return _store(request).blob_path(sha256).read_bytes().decode("utf-8", errors="replace")


@router.get("/runs/{ref}/snapshot", dependencies=read)
def run_snapshot(request: Request, ref: str, optional: bool = False) -> Response:
    """The run's snapshot; 404 when it has none (``optional=true``: ``null`` instead)."""
    from labkeep._json import plain

    if optional:
        info = _info(request, ref)
        return _json(plain(_store(request).get_snapshot(info.number)))
    return _json(plain(_snapshot(request, ref)[1]))


def _manifest(request: Request, ref: str) -> tuple[RunInfo, list[dict[str, Any]]]:
    from labkeep._snapshot import load_json_blob

    info, snapshot = _snapshot(request, ref)
    code = snapshot.get("code") or {}
    sha = code.get("manifest") if isinstance(code, dict) else None
    if not sha:
        return info, []
    files: list[dict[str, Any]] = load_json_blob(_store(request), sha)
    return info, files


@router.get("/runs/{ref}/code", dependencies=read)
def code_manifest(request: Request, ref: str) -> Response:
    """The code files of the run's snapshot: path, size, sha256, mode."""
    return _json(_manifest(request, ref)[1])


@router.get("/runs/{ref}/code/{path:path}", dependencies=read)
def code_file(
    request: Request, ref: str, path: str, format: Literal["text", "tokens"] = "text"
) -> Response:
    """One code file of the snapshot: its text, or (``format=tokens``) highlighting tokens."""
    from labkeep.server._preview import decode_text, highlight

    info, files = _manifest(request, ref)
    entry = next((f for f in files if f.get("path") == path), None)
    if entry is None:
        raise NotFoundError(f"run {info.number}'s code snapshot has no file {path!r}")
    data = _store(request).blob_path(entry["sha256"]).read_bytes()
    text = decode_text(data)
    if format == "text":
        if text is None:
            return Response(data, media_type="application/octet-stream")
        return Response(text, media_type="text/plain; charset=utf-8")
    if text is None:
        return _json({"path": path, "binary": True, "size": len(data), "tokens": []})
    return _json({"path": path, "binary": False, "size": len(data), **highlight(text, path)})


@router.get("/runs/{ref}/diff", dependencies=read)
def git_diff(request: Request, ref: str, format: Literal["text", "tokens"] = "tokens") -> Response:
    """The uncommitted changes the run ran with (empty when the tree was clean)."""
    from labkeep.server._preview import highlight

    snapshot = _snapshot(request, ref)[1]
    git = snapshot.get("git") or {}
    sha = git.get("diff_blob") if isinstance(git, dict) else None
    text = _blob_text(request, sha) if sha else ""
    if format == "text":
        return Response(text, media_type="text/plain; charset=utf-8")
    return _json({"path": "diff", "binary": False, **highlight(text, "x.diff", "diff")})


@router.get("/runs/{ref}/packages", dependencies=read)
def packages(request: Request, ref: str) -> Response:
    """The installed distributions the run saw."""
    from labkeep._snapshot import load_json_blob

    snapshot = _snapshot(request, ref)[1]
    environment = snapshot.get("environment") or {}
    sha = environment.get("packages_blob") if isinstance(environment, dict) else None
    return _json(load_json_blob(_store(request), sha) if sha else [])


# -- artifacts ----------------------------------------------------------------------------------


@router.get("/runs/{ref}/artifacts", dependencies=read)
def list_artifacts(request: Request, ref: str) -> Response:
    from labkeep.server._preview import media_type, preview_kind

    rec = _record(request, ref)
    return _json(
        [
            {
                "path": a.path,
                "size": a.size,
                "sha256": a.sha256,
                "kind": a.kind,
                "created": a.created,
                "media_type": media_type(a.path),
                "preview": preview_kind(a.path),
            }
            for a in rec.artifacts
        ]
    )


@router.get("/runs/{ref}/artifacts/{path:path}", dependencies=read)
def get_artifact(
    request: Request,
    ref: str,
    path: str,
    render: Literal["html"] | None = None,
    download: bool = False,
) -> Response:
    """An artifact's content (with HTTP Range support). The path is looked up among the
    run's own artifacts, never joined to a directory, so no path leaves the run.
    ``render=html`` turns a notebook into a page."""
    from labkeep.server._api_store import blob_response
    from labkeep.server._preview import media_type, render_notebook

    rec = _record(request, ref)
    artifact = next((a for a in rec.artifacts if a.path == path), None)
    if artifact is None:
        raise NotFoundError(f"run {rec.info.number} has no artifact {path!r}")
    if render == "html":
        if not path.lower().endswith(".ipynb"):
            raise NotFoundError(f"artifact {path!r} is not a notebook: only .ipynb renders")
        html = render_notebook(_store(request).blob_path(artifact.sha256), artifact.sha256)
        return Response(
            html,
            media_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": NOTEBOOK_CSP, "X-Content-Type-Options": "nosniff"},
        )
    return blob_response(
        request,
        artifact.sha256,
        media_type(path),
        filename=path.rsplit("/", 1)[-1],
        disposition="attachment" if download else "inline",
        headers=ARTIFACT_HEADERS,
    )


# -- edits ----------------------------------------------------------------------------------------


class TagEdit(BaseModel):
    add: list[str] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)


class NotesEdit(BaseModel):
    notes: str


@router.post("/runs/{ref}/tags", dependencies=write)
def edit_tags(request: Request, ref: str, edit: TagEdit) -> Response:
    from labkeep._run import iter_tags

    info = _info(request, ref)
    add, remove = iter_tags([t.strip() for t in edit.add]), iter_tags(edit.remove)
    _store(request).set_tags(info.number, add=add, remove=remove)
    return _json({"number": info.number, "tags": list(_record(request, ref).tags)})


@router.put("/runs/{ref}/notes", dependencies=write)
def edit_notes(request: Request, ref: str, edit: NotesEdit) -> Response:
    from labkeep._values import check_text

    info = _info(request, ref)
    _store(request).set_notes(info.number, check_text(edit.notes, "notes"))
    return _json({"number": info.number, "notes": edit.notes})


@router.delete("/runs/{ref}", dependencies=write)
def delete_run(request: Request, ref: str) -> Response:
    """Move a run to the trash (``restore`` brings it back)."""
    info = _info(request, ref)
    _store(request).set_deleted([info.number], True)
    return _json({"number": info.number, "deleted": True})


@router.post("/runs/{ref}/restore", dependencies=write)
def restore_run(request: Request, ref: str) -> Response:
    info = _info(request, ref)
    _store(request).set_deleted([info.number], False)
    return _json({"number": info.number, "deleted": False})


@router.post("/runs/{ref}/stop", dependencies=write)
def stop_run(request: Request, ref: str, grace: float = Query(10.0, ge=0, le=60)) -> Response:
    """Stop a running run that ``labkeep run`` runs on this server's host, as ``labkeep stop``
    does: it ends as interrupted (killed after ``grace`` seconds). 409 when it is not running
    or runs on another host."""
    from labkeep.runner import stop_run as stop

    info = _info(request, ref)
    result = stop(_client(request), info.number, grace=grace)
    return _json({"number": result.number, "status": result.status.value, "killed": result.killed})
