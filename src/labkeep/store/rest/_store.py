"""The REST Store: the Store interface over a labkeep server's store protocol.

Logging never waits on it: a run's journal is applied here by the background ingester. A call
to a server that answered before is retried for a short while when it cannot be reached (a
restart); one to a server not reached yet, or found unreachable, is tried once, so a down
server costs a refused connection, not seconds per call. A writer whose batch failed is
caught up from its journal (from the position the server holds) before its next batch, so a
server restart in the middle of a run loses nothing and duplicates nothing (``apply`` is
idempotent per writer and position).

Blobs put while the server is unreachable (a run's snapshot, its artifacts) wait in an outbox
on this machine, content-addressed beside the journals; every ``apply`` first sends what the
outbox holds, so a blob is on the server before any journal record that names it, whichever
process (the run, ``labkeep sync``) gets through first.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from labkeep import errors
from labkeep.entities import (
    ArtifactFile,
    ArtifactLink,
    ArtifactVersion,
    MediaEntry,
    ModelVersion,
    NamedArtifact,
    OutputLine,
    RegisteredModel,
    RunInfo,
    RunRecord,
)
from labkeep.errors import InvalidInputError, LabkeepError, NotFoundError, StoreError
from labkeep.store._artifacts import ArtifactStore, ObjectStoreUnreachableError
from labkeep.store._base import Store, WriteBatch
from labkeep.store._blobs import BlobDirectory, file_sha256
from labkeep.store._uri import StoreLocation
from labkeep.store.rest import _codec

if TYPE_CHECKING:
    import httpx

    from labkeep.query import KeyCatalog
    from labkeep.store._gc import GarbageReport

logger = logging.getLogger(__name__)

TOKEN_ENV = "LABKEEP_TOKEN"
#: How long one call keeps retrying an overloaded (503) server, or one that answered before
#: and cannot be reached now.
RETRY_FOR_S = 2.0
#: How long :meth:`RestStore.check_writable` waits for an answer before taking the server as
#: unreachable for now.
PROBE_TIMEOUT_S = 3.0
_SMALL_BLOB = 1 << 20
_ERRORS: dict[str, type[LabkeepError]] = {
    name: cls
    for name, cls in vars(errors).items()
    if isinstance(cls, type) and issubclass(cls, LabkeepError)
}


class ServerUnreachableError(StoreError):
    """The server did not answer (refused, timed out): what is written waits on this machine."""


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
        self.outbox = BlobDirectory(location.journal_dir.parent / "outbox")
        #: None until the first answer or failure; False while the server cannot be reached.
        self._reachable: bool | None = None
        self._client: httpx.Client | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._behind: set[str] = set()
        #: What ``/artifacts`` answered: where the blobs live, and whether they go through
        #: the server (None until asked).
        self._artifacts_info: tuple[str, bool] | None = None
        self._direct_store: ArtifactStore | None = None

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
                    # Plain http needs no certificates (loading them costs a few tenths of a
                    # second at the first call, which a short run's finish() would wait for).
                    verify=self.uri.startswith("https://"),
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
        timeout: float | None = None,
    ) -> httpx.Response:
        """One call; a LabkeepError of the server's kind, or ServerUnreachableError.

        Every call of the protocol is idempotent, so it is retried while the server answers 503
        and, when it answered before, while it cannot be reached (a restart)."""
        import httpx

        if json_body is not None:
            content = _codec.dumps(json_body)
            headers = {**(headers or {}), "content-type": "application/json"}
        deadline = time.monotonic() + self.retry_for
        retry_unreachable = self._reachable is True and timeout is None
        delay = 0.05
        while True:
            try:
                options: dict[str, Any] = {"params": params, "headers": headers}
                if timeout is not None:
                    options["timeout"] = timeout
                if isinstance(content, Path):  # a file streams from disk, reopened per try
                    with open(content, "rb") as body:
                        response = self._http().request(
                            method, self.base + path, content=body, **options
                        )
                else:
                    response = self._http().request(
                        method, self.base + path, content=content, **options
                    )
            except httpx.RequestError as exc:
                if not retry_unreachable or time.monotonic() + delay > deadline:
                    self._reachable = False
                    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    raise ServerUnreachableError(
                        f"cannot reach the labkeep server at {self.uri} ({reason}): start it, "
                        "or point --store or LABKEEP_TRACKING_URI at one that runs"
                    ) from None
            else:
                self._reachable = True
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
            if data.get("type") == "QueryError":
                # Raised as SqlStore raises it, so ``except QueryError`` works on a server too
                # (imported here: the query package is not needed to talk to a server).
                from labkeep.query._errors import QueryError

                kind = QueryError
        else:
            message, kind = response.text.strip()[:200], None
        status = response.status_code
        if status == 401:
            return StoreError(
                f"the labkeep server at {self.uri} needs a token: set {TOKEN_ENV} ({message})"
            )
        if status == 403:
            advice = (
                f": set {TOKEN_ENV} to a token that may write (rw)" if "token" in message else ""
            )
            return StoreError(f"the labkeep server at {self.uri} refused: {message}{advice}")
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
    def check_writable(self) -> bool:
        """One quick write that changes nothing (hiding no runs): a refused token raises
        StoreError at once; a server that does not answer within PROBE_TIMEOUT_S gives False."""
        body = {"numbers": [], "deleted": True}
        try:
            self._request("POST", "/deleted", json_body=body, timeout=PROBE_TIMEOUT_S)
        except ServerUnreachableError:
            return False
        return True

    def apply(self, batch: WriteBatch) -> int:
        try:
            self._send_outbox()
            if batch.writer in self._behind:
                number = self._catch_up(batch)
                self._behind.discard(batch.writer)
                return number
            return self._send(batch)
        except ServerUnreachableError as exc:
            self._behind.add(batch.writer)
            raise ServerUnreachableError(f"{exc}; what was logged waits on this machine") from None
        except StoreError:
            # The batch may or may not have arrived; the caller has moved on either way, so
            # the writer's next batch first resends its journal from the server's position.
            self._behind.add(batch.writer)
            raise

    def _send_outbox(self) -> None:
        """Upload the blobs put while the server was unreachable (by any process here)."""
        root = self.outbox.root
        if not root.is_dir():
            return
        for entry in os.scandir(root):
            if len(entry.name) != 2 or not entry.is_dir(follow_symlinks=False):
                continue
            for blob in os.scandir(entry.path):
                sha = entry.name + blob.name
                if blob.name.startswith("."):
                    continue
                try:
                    if self._blob_size(sha) is not None:
                        pass  # the server had it already (unchanged code, say)
                    elif self._upload(sha, Path(blob.path), blob.stat().st_size) is None:
                        # Changed on disk since it was kept: it can never be sent, and keeping
                        # it would stop every later batch.
                        logger.warning("blob %s in %s is damaged; dropped", sha[:12], root)
                except FileNotFoundError:
                    continue  # another process here sent it meanwhile
                Path(blob.path).unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # not empty: a writer racing this retries
                os.rmdir(entry.path)

    def _spool_blob(self, source: Path | bytes, sha256: str | None = None) -> tuple[str, int]:
        """Keep a blob in the outbox until the server can be reached."""
        for _ in range(3):
            try:
                if isinstance(source, bytes):
                    return self.outbox.put_bytes(source)
                return self.outbox.put(source, sha256)
            except FileNotFoundError:
                if isinstance(source, Path) and not source.is_file():
                    raise
                continue  # its fan-out directory was just emptied and removed: try again
        raise StoreError(f"cannot keep a blob in {self.outbox.root}: check the directory")

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
        from labkeep._journal_decoder import JournalDecoder

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

    # -- blobs: through the server, or straight to the object store it names ------------
    def _artifacts(self) -> tuple[str, bool]:
        """(where the server's blobs live, whether clients send them through the server)."""
        if self._artifacts_info is None:
            response = self._request("GET", "/artifact-store", missing_ok=True)
            if response.status_code == 404:  # a server from before artifact stores
                self._artifacts_info = ("", True)
            else:
                info = self._json(response)
                self._artifacts_info = (str(info["uri"]), bool(info["proxy"]))
        return self._artifacts_info

    def _direct(self) -> ArtifactStore | None:
        """The object store that this client reads and writes itself (the server told it
        where, and that it does not proxy), or None to go through the server."""
        if self._direct_store is None:
            uri, proxy = self._artifacts()
            if proxy or not uri.startswith("s3://"):
                return None
            from labkeep.store._artifacts import open_artifacts
            from labkeep.store._progress import transfer_progress

            self._direct_store = open_artifacts(
                uri, self.location.blob_dir, progress=transfer_progress
            )
        return self._direct_store

    def artifact_location(self) -> str:
        return self._artifacts()[0]

    def record_artifact_location(self, uri: str) -> None:
        raise InvalidInputError(
            f"the artifact location of {self.uri} is the server's: start it with "
            f"`labkeep server --artifacts {uri}`"
        )

    def collect_garbage(self, grace_s: float, *, dry_run: bool = False) -> GarbageReport:
        from labkeep.store._gc import report_from_json

        body = {"grace_s": float(grace_s), "dry_run": bool(dry_run)}
        response = self._request("POST", "/gc", json_body=body)
        return report_from_json(self._json(response))

    def keep_blob(self, sha256: str) -> int | None:
        direct = self._direct()
        if direct is not None:
            size = direct.size(_checked_sha(sha256))
            if size is not None:
                direct.touch(sha256)
            return size
        response = self._request(
            "HEAD", f"/blobs/{_checked_sha(sha256)}", params={"put": "1"}, missing_ok=True
        )
        if response.status_code == 404:
            return None
        return int(response.headers["content-length"])

    def put_blob(self, path: Path, sha256: str | None = None) -> tuple[str, int]:
        if self._reachable is False:
            return self._spool_blob(path, sha256)
        try:
            direct = self._direct()
            if direct is not None:
                return direct.put(path, sha256)
            return self._put_blob(path, sha256)
        except (ServerUnreachableError, ObjectStoreUnreachableError):
            return self._spool_blob(path, sha256)

    def _put_blob(self, path: Path, sha256: str | None) -> tuple[str, int]:
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
        if self._reachable is False:
            return self._spool_blob(data)
        try:
            direct = self._direct()
            if direct is not None:
                return direct.put_bytes(data)
            return self._put_bytes(data)
        except (ServerUnreachableError, ObjectStoreUnreachableError):
            return self._spool_blob(data)

    def _put_bytes(self, data: bytes) -> tuple[str, int]:
        sha = hashlib.sha256(data).hexdigest()
        if len(data) > _SMALL_BLOB and self._blob_size(sha) is not None:
            return sha, len(data)
        stored = self._upload(sha, data, len(data))
        if stored is None:
            raise StoreError(f"the labkeep server at {self.uri} stored different bytes")
        return stored

    def _upload(self, sha: str, data: bytes | Path, size: int) -> tuple[str, int] | None:
        """PUT a blob; None when the server found a different hash (the file changed)."""
        direct = self._direct()
        if direct is not None:
            stored = direct.put_bytes(data) if isinstance(data, bytes) else direct.put(data)
            return stored if stored[0] == sha else None
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
        return sha, int(result["size"])

    def _blob_size(self, sha: str) -> int | None:
        """The size of a blob the server holds (put again now: a record will name it).
        Asked every time, never answered from what this process put before: the answer
        refreshes the blob's last-put time, which keeps purge and gc off it."""
        return self.keep_blob(sha)

    def blob_path(self, sha256: str) -> Path:
        """The blob, downloaded once into the local cache (the server is asked each time
        whether it still holds it, so a purged blob is not served from the cache)."""
        sha256 = _checked_sha(sha256)
        if self._reachable is False:  # not worth a wait (the snapshot asks on a run's start)
            raise ServerUnreachableError(
                f"the labkeep server at {self.uri} could not be reached a moment ago: start "
                "it, or point --store or LABKEEP_TRACKING_URI at one that runs"
            )
        direct = self._direct()
        if direct is not None:
            return direct.local_path(sha256)
        local = self.cache.path(sha256)
        if local.exists():
            if self._request("HEAD", f"/blobs/{sha256}", missing_ok=True).status_code == 404:
                raise self._missing_blob(sha256)
            return local
        local.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=local.parent, prefix=".tmp-")
        tmp = Path(tmp_name)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                self._download(sha256, out, digest)
            if digest.hexdigest() != sha256:
                raise StoreError(f"blob {sha256[:12]} arrived damaged from {self.uri}: try again")
            os.chmod(tmp, 0o444)
            os.replace(tmp, local)
        finally:
            tmp.unlink(missing_ok=True)
        return local

    def _download(self, sha256: str, out: Any, digest: Any) -> None:
        """Stream a blob from the server into ``out`` (never whole in memory)."""
        import httpx

        try:
            with self._http().stream("GET", f"{self.base}/blobs/{sha256}") as response:
                if response.status_code == 404:
                    raise self._missing_blob(sha256)
                if response.status_code >= 400:
                    response.read()
                    raise self._error(response)
                for block in response.iter_bytes(1 << 20):
                    digest.update(block)
                    out.write(block)
        except httpx.RequestError as exc:
            self._reachable = False
            raise ServerUnreachableError(
                f"the download of blob {sha256[:12]} from {self.uri} broke off "
                f"({type(exc).__name__}): try again"
            ) from None

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
        *,
        deleted_only: bool = False,
    ) -> tuple[list[int], int]:
        """The server evaluates the query (it has the catalog and the indexes)."""
        body = self._search(
            where, sort, experiment, limit, offset, include_deleted, parent_uuid,
            deleted_only=_flag(deleted_only) if deleted_only else None,
        )  # fmt: skip
        return [int(n) for n in body["numbers"]], int(body["total"])

    def search_numbers(
        self,
        where: str | None = None,
        sort: str | Sequence[str] | None = None,
        experiment: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        include_deleted: bool = False,
        parent_uuid: str | None = None,
    ) -> list[int]:
        """The page alone: the server does not count every match (``labkeep.runs`` through a
        server asks this)."""
        body = self._search(
            where, sort, experiment, limit, offset, include_deleted, parent_uuid,
            total=_flag(False),
        )  # fmt: skip
        return [int(n) for n in body["numbers"]]

    def _search(
        self,
        where: str | None,
        sort: str | Sequence[str] | None,
        experiment: str | None,
        limit: int | None,
        offset: int,
        include_deleted: bool,
        parent_uuid: str | None,
        **extra: str | None,
    ) -> Any:
        """``GET /search`` with a search's arguments (and ``extra`` ones, None left out)."""
        sorts = [sort] if isinstance(sort, str) else list(sort or ())
        return self._get_json(
            "/search",
            where=where,
            sort=sorts or None,
            experiment=experiment,
            limit=limit,
            offset=offset,
            include_deleted=_flag(include_deleted),
            parent_uuid=parent_uuid,
            **extra,
        )

    def get_records(self, numbers: Sequence[int]) -> list[RunRecord]:
        if not numbers:
            return []
        rows = self._json(self._request("POST", "/records", json_body={"numbers": list(numbers)}))
        return [_codec.record_from_json(row) for row in rows]

    def get_history_bytes(self, number: int, key: str) -> tuple[bytes, bytes, bytes]:
        response = self._request("GET", f"/history/{int(number)}", params={"key": key})
        return _codec.split_history(response.content)

    def media_keys(self, number: int) -> dict[str, str]:
        return {str(k): str(v) for k, v in self._get_json(f"/media-keys/{int(number)}").items()}

    def list_media(self, number: int, key: str, step: int | None = None) -> list[MediaEntry]:
        rows = self._get_json(f"/media/{int(number)}", key=key, step=step)
        return [_codec.media_from_json(row) for row in rows]

    def get_snapshot(self, number: int) -> dict[str, Any] | None:
        snapshot: dict[str, Any] | None = self._get_json(f"/snapshot/{int(number)}")["snapshot"]
        return snapshot

    def get_output(self, number: int, after: int = 0, limit: int | None = None) -> list[OutputLine]:
        rows = self._get_json(f"/output/{int(number)}", after=after, limit=limit)
        return _codec.output_from_json(rows)

    def list_experiments(self) -> list[str]:
        return [str(name) for name in self._get_json("/experiments")]

    def count_runs_per_experiment(self) -> dict[str, int]:
        return {str(name): int(n) for name, n in self._get_json("/experiment-counts")}

    def count_children(self, parent_uuids: Sequence[str]) -> dict[str, dict[str, int]]:
        if not parent_uuids:
            return {}
        body = {"uuids": list(parent_uuids)}
        found = self._json(self._request("POST", "/child-counts", json_body=body))
        return {str(u): {str(s): int(n) for s, n in c.items()} for u, c in found.items()}

    def get_key_catalog(self) -> KeyCatalog:
        from labkeep.query import KeyCatalog

        keys = self._get_json("/keys")
        return KeyCatalog.of(keys["params"], keys["metrics"], keys["summaries"])

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

    # -- model registry ----------------------------------------------------------------
    def _post(self, path: str, body: dict[str, Any]) -> Any:
        return self._json(self._request("POST", path, json_body=body))

    def create_model_version(
        self,
        name: str,
        run_uuid: str,
        model_path: str,
        *,
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        body = {
            "name": name,
            "run_uuid": run_uuid,
            "model_path": model_path,
            "description": description,
            "tags": dict(tags or {}),
        }
        # Not retried when the connection drops: the server may have registered the version
        # already, and a second try would register another (a 503 is retried: it changed
        # nothing).
        response = self._request("POST", "/registry/versions", json_body=body, timeout=300.0)
        return _codec.model_version_from_json(self._json(response))

    def get_registered_model(self, name: str) -> RegisteredModel:
        return _codec.model_from_json(self._get_json("/registry/model", name=name))

    def list_registered_models(self) -> list[RegisteredModel]:
        return [_codec.model_from_json(row) for row in self._get_json("/registry/models")]

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        rows = self._get_json("/registry/versions", name=name)
        return [_codec.model_version_from_json(row) for row in rows]

    def find_model_versions(self, run_uuid: str) -> list[ModelVersion]:
        rows = self._get_json("/registry/versions-of-run", run_uuid=run_uuid)
        return [_codec.model_version_from_json(row) for row in rows]

    def get_model_version(self, name: str, ref: int | str) -> ModelVersion:
        data = self._get_json("/registry/version", name=name, ref=str(ref))
        return _codec.model_version_from_json(data)

    def set_model_alias(self, name: str, alias: str, version: int) -> None:
        self._post("/registry/alias", {"name": name, "alias": alias, "version": int(version)})

    def delete_model_alias(self, name: str, alias: str) -> None:
        self._post("/registry/alias/delete", {"name": name, "alias": alias})

    def update_registered_model(
        self,
        name: str,
        *,
        description: str | None = None,
        set_tags: Mapping[str, str] | None = None,
        delete_tags: Sequence[str] = (),
    ) -> RegisteredModel:
        body = {
            "name": name,
            "description": description,
            "set_tags": dict(set_tags or {}),
            "delete_tags": list(delete_tags),
        }
        return _codec.model_from_json(self._post("/registry/model/update", body))

    def update_model_version(
        self,
        name: str,
        version: int,
        *,
        description: str | None = None,
        set_tags: Mapping[str, str] | None = None,
        delete_tags: Sequence[str] = (),
    ) -> ModelVersion:
        body = {
            "name": name,
            "version": int(version),
            "description": description,
            "set_tags": dict(set_tags or {}),
            "delete_tags": list(delete_tags),
        }
        return _codec.model_version_from_json(self._post("/registry/version/update", body))

    def delete_model_version(self, name: str, version: int) -> None:
        self._post("/registry/version/delete", {"name": name, "version": int(version)})

    def delete_registered_model(self, name: str) -> None:
        self._post("/registry/model/delete", {"name": name})

    # -- versioned artifacts -----------------------------------------------------------
    def log_artifact_version(
        self, name: str, type: str, files: Sequence[ArtifactFile], run_uuid: str
    ) -> ArtifactVersion:
        body = {
            "name": name,
            "type": type,
            "run_uuid": run_uuid,
            "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in files],
        }
        return _codec.artifact_version_from_json(self._post("/artifacts/versions", body))

    def list_named_artifacts(self) -> list[NamedArtifact]:
        return [_codec.named_artifact_from_json(row) for row in self._get_json("/artifacts")]

    def list_artifact_versions(self, name: str) -> list[ArtifactVersion]:
        rows = self._get_json("/artifacts/versions", name=name)
        return [_codec.artifact_version_from_json(row) for row in rows]

    def get_artifact_version(self, name: str, ref: int | str) -> ArtifactVersion:
        data = self._get_json("/artifacts/version", name=name, ref=str(ref))
        return _codec.artifact_version_from_json(data)

    def set_artifact_alias(self, name: str, alias: str, version: int) -> None:
        self._post("/artifacts/alias", {"name": name, "alias": alias, "version": int(version)})

    def delete_artifact_alias(self, name: str, alias: str) -> None:
        self._post("/artifacts/alias/delete", {"name": name, "alias": alias})

    def use_artifact_version(self, name: str, version: int, run_uuid: str) -> None:
        body = {"name": name, "version": int(version), "run_uuid": run_uuid}
        self._post("/artifacts/use", body)

    def list_artifact_links(
        self, *, run_uuid: str | None = None, name: str | None = None
    ) -> list[ArtifactLink]:
        rows = self._get_json("/artifacts/links", run_uuid=run_uuid, name=name)
        return [_codec.artifact_link_from_json(row) for row in rows]


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _checked_sha(sha256: str) -> str:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise NotFoundError(f"{sha256[:70]!r} is not a blob id: give a 64-digit sha256 in hex")
    return sha256
