"""The REST Store: the Store interface over a labkeep server's store protocol.

Logging never waits on it: a run's journal is applied here by the background ingester. When
the server cannot be reached, calls retry for a short while and then raise StoreError; a
writer whose batch failed is caught up from its journal (from the position the server
holds) before its next batch, so a server restart in the middle of a run loses nothing and
duplicates nothing (``apply`` is idempotent per writer and position).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from labkeep import errors
from labkeep.entities import OutputLine, RunInfo, RunRecord
from labkeep.errors import InvalidInputError, LabkeepError, NotFoundError, StoreError
from labkeep.store._base import Store, WriteBatch
from labkeep.store._blobs import BlobDirectory, file_sha256
from labkeep.store._uri import StoreLocation
from labkeep.store.rest import _codec

if TYPE_CHECKING:
    import httpx

TOKEN_ENV = "LABKEEP_TOKEN"
#: How long one call keeps retrying an unreachable or overloaded (503) server.
RETRY_FOR_S = 2.0
_SMALL_BLOB = 1 << 20
_ERRORS: dict[str, type[LabkeepError]] = {
    name: cls
    for name, cls in vars(errors).items()
    if isinstance(cls, type) and issubclass(cls, LabkeepError)
}


class RestStore(Store):
    """A store on a labkeep server (``http(s)://HOST:PORT``). No I/O until the first call.

    ``LABKEEP_TOKEN`` is sent as a bearer token. Blobs read from the server are cached
    under the location's blob directory.

    >>> store = RestStore(locate_store("http://127.0.0.1:5000"))  # doctest: +SKIP
    """

    def __init__(self, location: StoreLocation, *, retry_for: float = RETRY_FOR_S) -> None:
        self.location = location
        self.uri = location.uri
        self.base = location.uri.rstrip("/") + "/api/v1/store"
        self.retry_for = retry_for
        self.cache = BlobDirectory(location.blob_dir)
        self._client: httpx.Client | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._behind: set[str] = set()
        self._known_blobs: dict[str, int] = {}

    # -- transport -----------------------------------------------------------------------
    def _http(self) -> httpx.Client:
        client = self._client
        if client is not None and self._pid == os.getpid():
            return client
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                import httpx

                headers = {"user-agent": "labkeep-rest-store"}
                token = os.environ.get(TOKEN_ENV, "").strip()
                if token:
                    headers["authorization"] = f"Bearer {token}"
                self._client = httpx.Client(
                    headers=headers,
                    timeout=httpx.Timeout(300.0, connect=5.0, pool=60.0),
                    limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
                )
                self._pid = os.getpid()
            return self._client

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        content: bytes | Path | None = None,
        headers: dict[str, str] | None = None,
        missing_ok: bool = False,
    ) -> httpx.Response:
        """One call, retried while the server is unreachable or answers 503 (every call of
        the protocol is idempotent); a LabkeepError of the server's kind otherwise."""
        import httpx

        if json_body is not None:
            content = _codec.dumps(json_body)
            headers = {**(headers or {}), "content-type": "application/json"}
        deadline = time.monotonic() + self.retry_for
        delay = 0.05
        while True:
            try:
                if isinstance(content, Path):  # a file streams from disk, reopened per try
                    with open(content, "rb") as body:
                        response = self._http().request(
                            method, self.base + path, params=params, content=body, headers=headers
                        )
                else:
                    response = self._http().request(
                        method, self.base + path, params=params, content=content, headers=headers
                    )
            except httpx.RequestError as exc:
                if time.monotonic() + delay > deadline:
                    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    raise StoreError(
                        f"cannot reach the labkeep server at {self.uri} ({reason}): start it "
                        "or check the URI; logged data waits in the local journal"
                    ) from None
            else:
                if response.status_code != 503 or time.monotonic() + delay > deadline:
                    if response.status_code >= 400 and not (
                        missing_ok and response.status_code == 404
                    ):
                        raise self._error(response)
                    return response
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def _error(self, response: httpx.Response) -> LabkeepError:
        try:
            data = response.json()
        except ValueError:
            data = None
        if isinstance(data, dict):
            message = str(data.get("error") or data.get("detail") or "")
            kind = _ERRORS.get(str(data.get("type")))
        else:
            message, kind = response.text.strip()[:200], None
        status = response.status_code
        if status == 401:
            return StoreError(
                f"the labkeep server at {self.uri} needs a token: set {TOKEN_ENV} ({message})"
            )
        if status == 403:
            return StoreError(f"the labkeep server at {self.uri} refused: {message}")
        if kind is not None:
            return kind(message)
        if status == 404:
            return NotFoundError(message or f"not found on {self.uri}")
        if status < 500:
            return InvalidInputError(message or f"the server at {self.uri} answered {status}")
        return StoreError(f"the labkeep server at {self.uri} failed ({status}): {message}")

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise StoreError(
                f"{self.uri} answered {response.request.url.path} with something other than "
                "JSON: is it a labkeep server?"
            ) from None

    def _get_json(self, path: str, **params: Any) -> Any:
        params = {k: v for k, v in params.items() if v is not None}
        return self._json(self._request("GET", path, params=params))

    def close(self) -> None:
        with self._lock:
            if self._client is not None and self._pid == os.getpid():
                self._client.close()
            self._client = None

    # -- writing -----------------------------------------------------------------------
    def apply(self, batch: WriteBatch) -> int:
        if batch.writer in self._behind:
            number = self._catch_up(batch)
            self._behind.discard(batch.writer)
            return number
        try:
            return self._send(batch)
        except StoreError:
            # The batch may or may not have arrived; the caller has moved on either way, so
            # the writer's next batch first resends its journal from the server's position.
            self._behind.add(batch.writer)
            raise

    def _send(self, batch: WriteBatch) -> int:
        response = self._request(
            "POST",
            "/apply",
            content=_codec.encode_batch(batch),
            headers={"content-type": _codec.BATCH_MEDIA_TYPE},
        )
        return int(self._json(response)["number"])

    def _catch_up(self, batch: WriteBatch) -> int:
        """Apply ``batch`` after whatever of its writer's journal the server is missing."""
        from labkeep._ingest import JournalDecoder

        directory = self.location.journal_dir / batch.writer
        position = self.journal_position(batch.writer)
        if position < batch.position and directory.is_dir():
            decoder = JournalDecoder(directory)
            decoder.seek(position)
            number: int | None = None
            while decoder.position < batch.position:
                missed = decoder.read(batch.position)
                if missed is None:
                    break
                if decoder.position >= batch.position:
                    missed.heartbeat = batch.heartbeat
                number = self._send(missed)
            if decoder.position >= batch.position and number is not None:
                return number
            if decoder.position != position:
                raise StoreError(
                    f"the journal of {batch.writer} ends before position {batch.position}: "
                    "it is kept for `labkeep sync`"
                )
        return self._send(batch)

    def journal_position(self, writer: str) -> int:
        return int(self._get_json(f"/journal-position/{quote(writer, safe='')}")["position"])

    def put_blob(self, path: Path, sha256: str | None = None) -> tuple[str, int]:
        if sha256 is not None:
            known = self._blob_size(sha256)
            if known is not None:
                return sha256, known
        if not path.is_file():
            raise InvalidInputError(f"{path} is not a file: give the path of a file to store")
        for _ in range(2):
            sha, size = file_sha256(path)
            known = self._blob_size(sha)
            if known is not None:
                return sha, known
            stored = self._upload(sha, path, size)
            if stored is not None:
                return stored
        raise StoreError(f"{path} kept changing while it was uploaded: store it when it is done")

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        sha = hashlib.sha256(data).hexdigest()
        if sha in self._known_blobs:
            return sha, len(data)
        if len(data) > _SMALL_BLOB and self._blob_size(sha) is not None:
            return sha, len(data)
        stored = self._upload(sha, data, len(data))
        if stored is None:
            raise StoreError(f"the labkeep server at {self.uri} stored different bytes")
        return stored

    def _upload(self, sha: str, data: bytes | Path, size: int) -> tuple[str, int] | None:
        """PUT a blob; None when the server found a different hash (the file changed)."""
        try:
            response = self._request(
                "PUT",
                f"/blobs/{sha}",
                content=data,
                headers={"content-type": "application/octet-stream", "content-length": str(size)},
            )
        except InvalidInputError as exc:
            if "sha256" in str(exc):
                return None
            raise
        result = self._json(response)
        self._known_blobs[sha] = int(result["size"])
        return sha, int(result["size"])

    def _blob_size(self, sha: str) -> int | None:
        if sha in self._known_blobs:
            return self._known_blobs[sha]
        response = self._request("HEAD", f"/blobs/{_checked_sha(sha)}", missing_ok=True)
        if response.status_code == 404:
            return None
        size = int(response.headers["content-length"])
        self._known_blobs[sha] = size
        return size

    def blob_path(self, sha256: str) -> Path:
        """The blob, downloaded once into the local cache (the server is asked each time
        whether it still holds it, so a purged blob is not served from the cache)."""
        sha256 = _checked_sha(sha256)
        local = self.cache.path(sha256)
        self._known_blobs.pop(sha256, None)
        if local.exists():
            if self._blob_size(sha256) is None:
                raise self._missing_blob(sha256)
            return local
        local.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=local.parent, prefix=".tmp-")
        tmp = Path(tmp_name)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                response = self._request("GET", f"/blobs/{sha256}", missing_ok=True)
                if response.status_code == 404:
                    raise self._missing_blob(sha256)
                digest.update(response.content)
                out.write(response.content)
            if digest.hexdigest() != sha256:
                raise StoreError(f"blob {sha256[:12]} arrived damaged from {self.uri}: try again")
            os.chmod(tmp, 0o444)
            os.replace(tmp, local)
        finally:
            tmp.unlink(missing_ok=True)
        return local

    def _missing_blob(self, sha256: str) -> NotFoundError:
        return NotFoundError(f"blob {sha256[:12]} is not on the labkeep server at {self.uri}")

    # -- reading -----------------------------------------------------------------------
    def resolve_run(self, ref: str | int) -> RunInfo:
        return _codec.info_from_json(self._get_json("/resolve", ref=str(ref)))

    def list_runs(
        self,
        experiment: str | None = None,
        *,
        include_deleted: bool = False,
        parent_uuid: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        deleted_only: bool = False,
    ) -> list[RunInfo]:
        rows = self._get_json(
            "/runs",
            experiment=experiment,
            include_deleted=_flag(include_deleted),
            deleted_only=_flag(deleted_only),
            parent_uuid=parent_uuid,
            limit=limit,
            offset=offset,
        )
        return [_codec.info_from_json(row) for row in rows]

    def search_runs(
        self,
        where: str | None = None,
        sort: str | Sequence[str] | None = None,
        experiment: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        include_deleted: bool = False,
        parent_uuid: str | None = None,
    ) -> tuple[list[int], int]:
        """The server evaluates the query (it has the catalog and the indexes)."""
        sorts = [sort] if isinstance(sort, str) else list(sort or ())
        body = self._get_json(
            "/search",
            where=where,
            sort=sorts or None,
            experiment=experiment,
            limit=limit,
            offset=offset,
            include_deleted=_flag(include_deleted),
            parent_uuid=parent_uuid,
        )
        return [int(n) for n in body["numbers"]], int(body["total"])

    def get_records(self, numbers: Sequence[int]) -> list[RunRecord]:
        if not numbers:
            return []
        rows = self._json(self._request("POST", "/records", json_body={"numbers": list(numbers)}))
        return [_codec.record_from_json(row) for row in rows]

    def get_history_bytes(self, number: int, key: str) -> tuple[bytes, bytes, bytes]:
        response = self._request("GET", f"/history/{int(number)}", params={"key": key})
        return _codec.split_history(response.content)

    def get_snapshot(self, number: int) -> dict[str, Any] | None:
        snapshot: dict[str, Any] | None = self._get_json(f"/snapshot/{int(number)}")["snapshot"]
        return snapshot

    def get_output(self, number: int, after: int = 0, limit: int | None = None) -> list[OutputLine]:
        rows = self._get_json(f"/output/{int(number)}", after=after, limit=limit)
        return _codec.output_from_json(rows)

    def list_experiments(self) -> list[str]:
        return [str(name) for name in self._get_json("/experiments")]

    def running_runs(self) -> list[RunInfo]:
        return [_codec.info_from_json(row) for row in self._get_json("/running")]

    def metric_keys(self, number: int) -> list[str]:
        return [str(key) for key in self._get_json(f"/metric-keys/{int(number)}")]

    # -- editing -----------------------------------------------------------------------
    def set_tags(self, number: int, add: Iterable[str] = (), remove: Iterable[str] = ()) -> None:
        body = {"number": int(number), "add": list(add), "remove": list(remove)}
        self._request("POST", "/tags", json_body=body)

    def set_notes(self, number: int, notes: str) -> None:
        self._request("POST", "/notes", json_body={"number": int(number), "notes": notes})

    def set_deleted(self, numbers: Sequence[int], deleted: bool) -> None:
        body = {"numbers": [int(n) for n in numbers], "deleted": bool(deleted)}
        self._request("POST", "/deleted", json_body=body)

    def purge(self, numbers: Sequence[int]) -> int:
        body = {"numbers": [int(n) for n in numbers]}
        return int(self._json(self._request("POST", "/purge", json_body=body))["purged"])

    def mark_killed(self, numbers: list[int], end_times: list[float]) -> None:
        body = {"numbers": [int(n) for n in numbers], "end_times": [float(t) for t in end_times]}
        self._request("POST", "/mark-killed", json_body=body)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _checked_sha(sha256: str) -> str:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise NotFoundError(f"{sha256[:70]!r} is not a blob id: give a 64-digit sha256 in hex")
    return sha256
