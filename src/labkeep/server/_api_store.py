"""The store protocol over HTTP: what :class:`labkeep.store.rest.RestStore` calls.

Every Store operation has one route under ``/api/v1/store``. Writes (``apply``) take the
binary batch body of :mod:`labkeep.store.rest.codec` (or its JSON form) and go straight
to ``client.store.apply`` on a worker thread; ``apply`` is idempotent per writer and
journal position, so a client may resend after a lost answer. Bodies are Python JSON (NaN
and infinities allowed), since params and summaries may hold them.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from labkeep._client import Client
from labkeep._values import MAX_COUNT, MAX_INT64, MIN_INT64, check_key, check_text
from labkeep.errors import InvalidInputError
from labkeep.server._auth import require_read, require_write
from labkeep.server._batches import check_batch
from labkeep.server._bounds import RunNumber, RunNumberField
from labkeep.store import Store, garbage_report_to_json
from labkeep.store.rest import codec

router = APIRouter(prefix="/store", tags=["store protocol"])
READ = [Depends(require_read)]
WRITE = [Depends(require_write)]


def _client(request: Request) -> Client:
    client: Client = request.app.state.client
    return client


def _store(request: Request) -> Store:
    return _client(request).store


def _json(value: Any, status_code: int = 200) -> Response:
    return Response(codec.dumps(value), status_code, media_type="application/json")


_BATCH_BODY = {
    "requestBody": {
        "required": True,
        "description": "A WriteBatch: the binary form (what RestStore sends) or the JSON form "
        "with metric columns as base64 of little-endian int64 steps, float64 values and times.",
        "content": {
            codec.BATCH_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


@router.post("/apply", dependencies=WRITE, openapi_extra=_BATCH_BODY)
async def apply(request: Request) -> Response:
    """Apply one WriteBatch; answers ``{"number": run number}``. Idempotent per
    (writer, position)."""
    body = await request.body()
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    store = _store(request)

    def work() -> int:
        return store.apply(check_batch(codec.decode_batch(body, media_type)))

    return _json({"number": await run_in_threadpool(work)})


@router.get("/journal-position/{writer}", dependencies=READ)
def journal_position(writer: str, request: Request) -> Response:
    """Up to which journal position a writer's records are in the store (0 if none)."""
    return _json({"position": _store(request).journal_position(writer)})


# -- blobs ----------------------------------------------------------------------------


def _sha(sha256: str) -> str:
    """A blob id is exactly 64 lowercase hex digits: nothing else ever names a path."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise InvalidInputError("a blob id is a sha256 of 64 lowercase hex digits")
    return sha256


def blob_response(
    request: Request,
    sha256: str,
    media_type: str,
    *,
    filename: str | None = None,
    disposition: str = "inline",
    headers: dict[str, str] | None = None,
) -> Response:
    """A blob as an HTTP answer, never one whose content does not match its sha256.

    A whole blob is streamed and hashed as it goes: one that fits in the first chunk is
    refused before anything is sent (a one-line 500), a larger one is cut off (the client
    sees an incomplete body, never a complete wrong one). A range is served from a blob
    checked whole first. HEAD reads nothing."""
    store = _store(request)
    extra = dict(headers or {})
    if filename is not None:
        quoted = quote(filename)
        extra["content-disposition"] = (
            f"{disposition}; filename*=utf-8''{quoted}"
            if quoted != filename
            else f'{disposition}; filename="{filename}"'
        )
    if "range" in request.headers:
        return FileResponse(store.blob_path(sha256), media_type=media_type, headers=extra)
    read = store.open_blob(sha256)
    extra["content-length"] = str(read.size)
    extra["accept-ranges"] = "bytes"
    if request.method == "HEAD":
        return Response(media_type=media_type, headers=extra)
    first = next(read.chunks, None)  # a damaged small blob raises here, before any answer
    body = read.chunks if first is None else itertools.chain([first], read.chunks)
    return StreamingResponse(body, media_type=media_type, headers=extra)


@router.get("/blobs/{sha256}", dependencies=READ)
def get_blob(sha256: str, request: Request) -> Response:
    """A blob's bytes (HTTP range requests supported), checked against its sha256."""
    return blob_response(request, _sha(sha256), "application/octet-stream")


@router.head("/blobs/{sha256}", dependencies=READ)
def has_blob(sha256: str, request: Request, put: str | None = None) -> Response:
    """Whether a blob is stored (200 with its size as content-length, or 404). With
    ``?put=1`` (a client about to name it instead of uploading it again) the blob counts as
    put now, so garbage collection leaves it."""
    if put is None:
        return get_blob(sha256, request)
    if put not in ("1", "true") or request.method != "HEAD":
        raise InvalidInputError("put takes 1")
    size = _store(request).keep_blob(_sha(sha256))
    if size is None:
        return Response(status_code=404)
    return Response(headers={"content-length": str(size)}, media_type="application/octet-stream")


@router.put("/blobs/{sha256}", dependencies=WRITE)
async def put_blob(sha256: str, request: Request) -> Response:
    """Store the raw request body as a blob; refused unless its sha256 is the one named.

    The body is written to a temporary file as it arrives (a server stopped mid-upload
    leaves no blob, only a temporary file that ``labkeep gc`` removes) and then stored in
    the artifact store (multipart, for object storage)."""
    sha256 = _sha(sha256)
    store = _store(request)
    with store.blob_writer() as out:
        async for block in request.stream():
            out.write(block)
        if out.sha256 != sha256:
            raise InvalidInputError(
                f"the uploaded bytes have sha256 {out.sha256[:12]}…, not {sha256[:12]}…: "
                "upload the file again"
            )
        _, size = await run_in_threadpool(out.finish)
    return _json({"sha256": sha256, "size": size}, 201)


@router.get("/artifact-store", dependencies=READ)
def artifacts(request: Request) -> Response:
    """Where the store's blobs live and whether clients send them through this server
    (``proxy``) or straight to the object store (with their own credentials)."""
    uri = _store(request).artifact_location()
    proxy = bool(request.app.state.artifacts_proxy) or not uri.startswith("s3://")
    return _json({"uri": uri, "proxy": proxy})


class Collect(BaseModel):
    grace_s: float
    dry_run: bool = False


@router.post("/gc", dependencies=WRITE)
def gc(body: Collect, request: Request) -> Response:
    """Remove blobs nothing names any more (``labkeep gc``); with ``dry_run`` only list them."""
    if not body.grace_s >= 0:
        raise InvalidInputError("grace_s must be 0 or more seconds")
    report = _store(request).collect_garbage(body.grace_s, dry_run=body.dry_run)
    return _json(garbage_report_to_json(report))


# -- reads ----------------------------------------------------------------------------


@router.get("/resolve", dependencies=READ)
def resolve(request: Request, ref: str = Query(...)) -> Response:
    """A run by number, uuid (or unique prefix), name, or ``last``."""
    return _json(codec.info_to_json(_store(request).resolve_run(ref)))


@router.get("/runs", dependencies=READ)
def list_runs(
    request: Request,
    experiment: str | None = None,
    include_deleted: bool = False,
    deleted_only: bool = False,
    parent_uuid: str | None = None,
    limit: int | None = Query(None, ge=0, le=MAX_COUNT),
    offset: int = Query(0, ge=0, le=MAX_COUNT),
) -> Response:
    """Runs, newest first."""
    infos = _store(request).list_runs(
        experiment,
        include_deleted=include_deleted,
        parent_uuid=parent_uuid,
        limit=limit,
        offset=offset,
        deleted_only=deleted_only,
    )
    return _json([codec.info_to_json(info) for info in infos])


@router.get("/search", dependencies=READ)
def search_runs(
    request: Request,
    where: str | None = None,
    sort: Annotated[list[str] | None, Query()] = None,
    experiment: str | None = None,
    limit: int | None = Query(None, ge=0, le=MAX_COUNT),
    offset: int = Query(0, ge=0, le=MAX_COUNT),
    include_deleted: bool = False,
    parent_uuid: str | None = None,
    deleted_only: bool = False,
    total: bool = True,
) -> Response:
    """Run numbers matching a query in the shared language, one page, and the total (null
    with ``total=false``: counting every match can cost more than the page)."""
    store = _store(request)
    if not total and not deleted_only:
        page = store.search_numbers(
            where, sort or None, experiment, limit, offset, include_deleted, parent_uuid
        )
        return _json({"numbers": page, "total": None})
    numbers, count = store.search_runs(
        where,
        sort or None,
        experiment,
        limit,
        offset,
        include_deleted=include_deleted,
        parent_uuid=parent_uuid,
        deleted_only=deleted_only,
    )
    return _json({"numbers": numbers, "total": count})


class Numbers(BaseModel):
    numbers: list[RunNumberField]


@router.post("/records", dependencies=READ)
def records(body: Numbers, request: Request) -> Response:
    """Full records of these runs, in the order asked (a POST only for the long list)."""
    return _json([codec.record_to_json(r) for r in _store(request).get_records(body.numbers)])


@router.get("/history/{number}", dependencies=READ)
def history(number: RunNumber, request: Request, key: str = Query(...)) -> Response:
    """One metric's points: little-endian int64 steps, then float64 values, then float64
    times, as three equal thirds of the body."""
    steps, values, times = _store(request).get_history_bytes(number, key)
    return Response(steps + values + times, media_type=codec.HISTORY_MEDIA_TYPE)


@router.get("/media-keys/{number}", dependencies=READ)
def media_keys(number: RunNumber, request: Request) -> Response:
    """``{key: kind}`` of the media a run logged."""
    return _json(_store(request).media_keys(number))


@router.get("/media/{number}", dependencies=READ)
def media(
    number: RunNumber,
    request: Request,
    key: str = Query(...),
    step: int | None = Query(None, ge=MIN_INT64, le=MAX_INT64),
) -> Response:
    """The media entries a run logged under ``key`` (at ``step`` when given)."""
    return _json([codec.media_to_json(m) for m in _store(request).list_media(number, key, step)])


@router.get("/snapshot/{number}", dependencies=READ)
def snapshot(number: RunNumber, request: Request) -> Response:
    """``{"snapshot": the run's snapshot or null}``."""
    return _json({"snapshot": _store(request).get_snapshot(number)})


@router.get("/output/{number}", dependencies=READ)
def output(
    number: RunNumber,
    request: Request,
    after: int = Query(0, ge=MIN_INT64, le=MAX_INT64),
    limit: int | None = Query(None, ge=0, le=MAX_COUNT),
) -> Response:
    """Console lines ``[id, stream, time, text]`` with id above ``after``, oldest first."""
    return _json(codec.output_to_json(_store(request).get_output(number, after, limit)))


@router.get("/metric-keys/{number}", dependencies=READ)
def metric_keys(number: RunNumber, request: Request) -> Response:
    return _json(_store(request).metric_keys(number))


@router.get("/experiments", dependencies=READ)
def experiments(request: Request) -> Response:
    store = _store(request)
    return _json(store.list_experiments() if store.exists() else [])


@router.get("/experiment-counts", dependencies=READ)
def experiment_counts(request: Request) -> Response:
    """``[[experiment, runs not in the trash], …]``, oldest experiment first."""
    return _json([[name, n] for name, n in _store(request).count_runs_per_experiment().items()])


class Uuids(BaseModel):
    uuids: list[str] = Field(max_length=10_000)


@router.post("/child-counts", dependencies=READ)
def child_counts(body: Uuids, request: Request) -> Response:
    """``{parent uuid: {status: child runs}}`` for these runs (a POST for the long list)."""
    return _json(_store(request).count_children(body.uuids))


@router.get("/keys", dependencies=READ)
def keys(request: Request) -> Response:
    """Every param, metric and summary key of the store's runs, sorted."""
    catalog = _store(request).get_key_catalog()
    return _json(
        {
            "params": sorted(catalog.params),
            "metrics": sorted(catalog.metrics),
            "summaries": sorted(catalog.summaries),
        }
    )


@router.get("/running", dependencies=READ)
def running(request: Request) -> Response:
    store = _store(request)
    infos = store.running_runs() if store.exists() else []
    return _json([codec.info_to_json(info) for info in infos])


# -- edits ----------------------------------------------------------------------------


class Killed(BaseModel):
    numbers: list[RunNumberField]
    end_times: list[float]


@router.post("/mark-killed", dependencies=WRITE)
def mark_killed(body: Killed, request: Request) -> Response:
    if len(body.numbers) != len(body.end_times):
        raise InvalidInputError("give one end time per run number")
    _store(request).mark_killed(body.numbers, body.end_times)
    return _json({})


class Tags(BaseModel):
    number: RunNumberField
    add: list[str] = []
    remove: list[str] = []


@router.post("/tags", dependencies=WRITE)
def tags(body: Tags, request: Request) -> Response:
    add = [check_key(tag, "tag") for tag in body.add]
    remove = [check_key(tag, "tag") for tag in body.remove]
    _store(request).set_tags(body.number, add, remove)
    return _json({})


class Notes(BaseModel):
    number: RunNumberField
    notes: str


@router.post("/notes", dependencies=WRITE)
def notes(body: Notes, request: Request) -> Response:
    _store(request).set_notes(body.number, check_text(body.notes, "notes"))
    return _json({})


class Deleted(BaseModel):
    numbers: list[RunNumberField]
    deleted: bool


@router.post("/deleted", dependencies=WRITE)
def deleted(body: Deleted, request: Request) -> Response:
    _store(request).set_deleted(body.numbers, body.deleted)
    return _json({})


@router.post("/purge", dependencies=WRITE)
def purge(body: Numbers, request: Request) -> Response:
    """Remove trashed runs for good; ``{"purged": how many}``."""
    return _json({"purged": _store(request).purge(body.numbers)})
