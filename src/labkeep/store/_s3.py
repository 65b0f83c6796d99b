"""S3-compatible object storage as an artifact store: ``s3://bucket/prefix/ab/cdef…``.

boto3 is imported on first use. Small blobs go in one PUT (under 256 KiB without a HEAD first:
sending them again costs less than asking) and come back in one streamed GET;
from ``MULTIPART_THRESHOLD`` up, the transfer manager sends parts several at a time and reads
ranges in parallel. A blob put again is marked by a zero-byte ``PREFIX/touched/SHA`` (its
time is the blob's last put). botocore's exceptions leave as one-line StoreErrors that say
what to do.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from labkeep.errors import InvalidInputError, NotFoundError, StoreError
from labkeep.store._artifacts import (
    ArtifactStore,
    ArtifactWriter,
    Leftover,
    ObjectStoreUnreachableError,
    ProgressFactory,
    StoredBlob,
    _no_progress,
    check_sha,
)
from labkeep.store._blobs import BlobDirectory, BlobRead, HashingTempFile, file_sha256

_BUFFER = 1 << 20
#: Files at least this large go to object storage in parts, several at once.
MULTIPART_THRESHOLD = 64 << 20
MULTIPART_CHUNK = 16 << 20
TRANSFER_THREADS = 8
#: Blobs smaller than this are sent in one PUT without asking first whether they are there.
SMALL_PUT = 256 << 10
#: The error codes of an object that is not there (HEAD says 404, GET NoSuchKey).
_NOT_THERE = ("404", "NoSuchKey", "NotFound")
#: Where the markers of blobs put again live under the prefix (never two hex digits).
TOUCHED = "touched"
#: How often a call to the object store is tried in all (botocore's standard retry mode:
#: throttling, 5xx answers and dropped or refused connections, with backoff).
S3_ATTEMPTS = 5


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → (``bucket``, ``some/prefix``)."""
    rest = uri.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise InvalidInputError(f"{uri!r} names no bucket: give s3://BUCKET or s3://BUCKET/PREFIX")
    return bucket, prefix.strip("/")


class _HashingReader:
    """A file read once, front to back, hashing what it hands out. Not seekable, so the
    transfer manager reads it in order (a file changed during the upload is caught)."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        block = self._fh.read(n)
        self.digest.update(block)
        self.size += len(block)
        return block

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return True


def _code(exc: Any) -> str:
    """The error code of a botocore ClientError ("404", "NoSuchKey", "InvalidRange"…)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def _small_file(source: Path) -> bytes | None:
    """The content of ``source`` when it is a file smaller than :data:`SMALL_PUT` (None
    otherwise, or when it cannot be read: the caller then says why)."""
    try:
        if source.stat().st_size >= SMALL_PUT or not source.is_file():
            return None
        return source.read_bytes()
    except OSError:
        return None


class _S3Writer(HashingTempFile, ArtifactWriter):
    """An upload through the server: a temporary file in the cache, sent when finished."""

    def __init__(self, store: S3Artifacts) -> None:
        store.cache.root.mkdir(parents=True, exist_ok=True)
        super().__init__(*tempfile.mkstemp(dir=store.cache.root, prefix=".tmp-"))
        self._store = store

    def finish(self) -> tuple[str, int]:
        self._file.close()
        return self._store.put(self._tmp, self.sha256)

    def close(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


class S3Artifacts(ArtifactStore):
    """Blobs in S3-compatible object storage, ``s3://bucket/prefix/ab/cdef…``.

    ``cache`` is a local blob directory for :meth:`local_path` (downloads kept by hash)."""

    shared = True
    time_resolution = 1.0

    def __init__(self, uri: str, cache: Path, *, progress: ProgressFactory | None = None) -> None:
        self.uri = uri.rstrip("/")
        self.bucket, self.prefix = parse_s3_uri(self.uri)
        self.cache = BlobDirectory(cache)
        self.progress: ProgressFactory = progress or _no_progress
        self._client: Any = None
        self._pid = 0
        self._lock = threading.Lock()
        self._bucket_checked = False

    # -- connection and errors ---------------------------------------------------------
    def _s3(self) -> Any:
        client = self._client
        if client is not None and self._pid == os.getpid():
            return client
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                try:
                    import boto3
                    from botocore.config import Config
                except ImportError:
                    raise StoreError(
                        f"artifacts at {self.uri} need boto3: pip install 'labkeep[s3]'"
                    ) from None
                session = boto3.session.Session()
                region = (
                    os.environ.get("AWS_REGION")
                    or os.environ.get("AWS_DEFAULT_REGION")
                    or session.region_name
                    or "us-east-1"
                )
                endpoint = (
                    os.environ.get("AWS_ENDPOINT_URL_S3")
                    or os.environ.get("AWS_ENDPOINT_URL")
                    or None
                )
                self._client = session.client(
                    "s3",
                    region_name=region,
                    endpoint_url=endpoint,
                    config=Config(
                        retries={"mode": "standard", "max_attempts": S3_ATTEMPTS},
                        connect_timeout=5,
                        read_timeout=60,
                        max_pool_connections=32,
                    ),
                )
                self._pid = os.getpid()
                self._bucket_checked = False
            return self._client

    @property
    def endpoint(self) -> str:
        return str(self._s3().meta.endpoint_url)

    def _key(self, sha256: str) -> str:
        check_sha(sha256)
        return (
            f"{self.prefix}/{sha256[:2]}/{sha256[2:]}"
            if self.prefix
            else f"{sha256[:2]}/{sha256[2:]}"
        )

    def _marker(self, sha256: str) -> str:
        return f"{self.prefix}/{TOUCHED}/{sha256}" if self.prefix else f"{TOUCHED}/{sha256}"

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """botocore's exceptions as one-line StoreErrors that say what to do."""
        from botocore import exceptions as bx

        try:
            yield
        except (
            bx.EndpointConnectionError,
            bx.ConnectTimeoutError,
            bx.ConnectionClosedError,
        ) as exc:
            raise ObjectStoreUnreachableError(
                f"cannot reach the object store at {self.endpoint} for {self.uri} "
                f"({type(exc).__name__}, tried {S3_ATTEMPTS} times): start it, or check "
                "AWS_ENDPOINT_URL and the network"
            ) from None
        except (bx.NoCredentialsError, bx.PartialCredentialsError):
            raise StoreError(
                f"no AWS credentials for {self.uri}: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
            ) from None
        except bx.ClientError as exc:
            raise self._client_error(exc, what) from None
        except bx.BotoCoreError as exc:
            raise StoreError(f"{what} at {self.uri} failed: {exc}") from None

    def _client_error(self, exc: Any, what: str) -> StoreError:
        code = _code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchBucket",) or (code == "404" and what == "checking the bucket"):
            return StoreError(
                f"bucket {self.bucket!r} does not exist at {self.endpoint}: create it, or "
                "fix the artifact URI (--artifacts s3://BUCKET/PREFIX)"
            )
        if (
            code
            in (
                "InvalidAccessKeyId",
                "SignatureDoesNotMatch",
                "AccessDenied",
                "403",
                "ExpiredToken",
                "InvalidToken",
            )
            or status == 403
        ):
            return StoreError(
                f"the object store at {self.endpoint} refused the credentials for {self.uri} "
                f"({code or status}): check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
            )
        message = str(exc.response.get("Error", {}).get("Message", "")) or str(exc)
        return StoreError(f"{what} at {self.uri} failed: {code} {message}".strip())

    def _ready(self) -> Any:
        """The client, after checking once that the bucket is there and may be read."""
        s3 = self._s3()
        if not self._bucket_checked:
            with self._errors("checking the bucket"):
                s3.head_bucket(Bucket=self.bucket)
            self._bucket_checked = True
        return s3

    # -- reading -----------------------------------------------------------------------
    def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        s3 = self._ready()
        with self._errors("reading an object"):
            try:
                head: dict[str, Any] = s3.head_object(Bucket=self.bucket, Key=key)
                return head
            except ClientError as exc:
                if _code(exc) in _NOT_THERE:
                    return None
                raise

    def size(self, sha256: str) -> int | None:
        head = self._head(self._key(sha256))
        return None if head is None else int(head["ContentLength"])

    def last_put(self, sha256: str) -> float | None:
        head = self._head(self._key(sha256))
        if head is None:
            return None
        marker = self._head(self._marker(sha256))
        times = [float(head["LastModified"].timestamp())]
        if marker is not None:
            times.append(float(marker["LastModified"].timestamp()))
        return max(times)

    def open(self, sha256: str) -> BlobRead:
        size = self.size(sha256)
        if size is None:
            raise self._missing(sha256)
        return BlobRead(size, self._chunks(sha256))

    def _chunks(self, sha256: str) -> Iterator[bytes]:
        """The object's content, hashed as it streams; the last chunk is held back until
        the hash matched (:class:`DamagedStoreError` instead). The GET is sent when the
        first chunk is asked for (a server answering HEAD asks for none)."""
        from labkeep.errors import DamagedStoreError

        s3 = self._ready()
        with self._errors("downloading"):
            body = s3.get_object(Bucket=self.bucket, Key=self._key(sha256))["Body"]
        digest = hashlib.sha256()
        held: bytes | None = None
        try:
            with self._errors("downloading"):
                for block in body.iter_chunks(_BUFFER):
                    if held is not None:
                        yield held
                    digest.update(block)
                    held = block
        finally:
            body.close()
        if digest.hexdigest() != sha256:
            raise DamagedStoreError(
                f"blob {sha256[:12]} in {self.uri} does not match its sha256 (it hashes to "
                f"{digest.hexdigest()[:12]}…): it was changed after it was stored"
            )
        if held is not None:
            yield held

    def _get_head_part(self, key: str) -> tuple[int, Any] | None:
        """The object's size and a body of its first :data:`MULTIPART_THRESHOLD` bytes (all
        of a small object) to read and close, in one ranged GET; None when there is none."""
        from botocore.exceptions import ClientError

        s3 = self._ready()
        with self._errors("downloading"):
            try:
                response = s3.get_object(
                    Bucket=self.bucket, Key=key, Range=f"bytes=0-{MULTIPART_THRESHOLD - 1}"
                )
            except ClientError as exc:
                code = _code(exc)
                if code in _NOT_THERE:
                    return None
                if code != "InvalidRange":
                    raise
                # An empty object has no byte 0 to ask for (S3 answers 416): all of it.
                response = s3.get_object(Bucket=self.bucket, Key=key)
            # "bytes 0-99/100"; a server that sends the whole object sends no range.
            total = str(response.get("ContentRange") or "").rpartition("/")[2]
            size = int(total) if total.isdigit() else int(response["ContentLength"])
            return size, response["Body"]

    def local_path(self, sha256: str) -> Path:
        local = self.cache.path(sha256)
        if local.exists():
            # Asked each time (one HEAD), so a blob removed from the object store (purged,
            # by another machine too) is not served from this machine's cache.
            if self.size(sha256) is None:
                local.unlink(missing_ok=True)
                raise self._missing(sha256)
            return self.cache.get(sha256)
        # Not here yet: one GET, which says as well whether the blob is still stored.
        found_part = self._get_head_part(self._key(sha256))
        if found_part is None:
            raise self._missing(sha256)
        size, body = found_part
        from boto3.s3.transfer import TransferConfig

        local.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.cache.root, prefix=".tmp-")
        os.close(fd)
        tmp = Path(name)
        try:
            if size < MULTIPART_THRESHOLD:  # that GET, streamed and hashed as it arrives
                digest = hashlib.sha256()
                with open(tmp, "wb") as out, self._errors("downloading"):
                    for block in body.iter_chunks(_BUFFER):
                        digest.update(block)
                        out.write(block)
                found = digest.hexdigest()
            else:  # ranged GETs in parallel, then hashed from the file
                body.close()
                with (
                    self.progress(f"download {sha256[:12]}", size) as step,
                    self._errors("downloading"),
                ):
                    self._ready().download_file(
                        self.bucket,
                        self._key(sha256),
                        str(tmp),
                        Config=self._transfer_config(TransferConfig),
                        Callback=step,
                    )
                found, _ = file_sha256(tmp)
            if found != sha256:
                raise StoreError(f"blob {sha256[:12]} arrived damaged from {self.uri}: try again")
            os.chmod(tmp, 0o444)
            os.replace(tmp, local)
        finally:
            body.close()
            tmp.unlink(missing_ok=True)
        return self.cache.get(sha256)

    def check(self, sha256: str) -> str | None:
        try:
            for _ in self.open(sha256).chunks:
                pass
        except StoreError as exc:
            return str(exc)
        except NotFoundError as exc:
            return str(exc)
        return None

    def _missing(self, sha256: str) -> NotFoundError:
        return NotFoundError(f"blob {sha256[:12]} is missing from {self.uri}")

    # -- writing -----------------------------------------------------------------------
    @staticmethod
    def _transfer_config(factory: Any) -> Any:
        return factory(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=MULTIPART_CHUNK,
            max_concurrency=TRANSFER_THREADS,
        )

    def put(self, source: Path, sha256: str | None = None) -> tuple[str, int]:
        small = _small_file(source)
        if small is not None:
            return self.put_bytes(small)
        if sha256 is not None:
            known = self.size(sha256)
            if known is not None:
                self.touch(sha256)
                return sha256, known
        if not source.is_file():
            raise InvalidInputError(f"{source} is not a file: give the path of a file to store")
        for _ in range(2):
            sha, size = file_sha256(source)
            known = self.size(sha)
            if known is not None:
                self.touch(sha)
                return sha, known
            if self._upload(source, sha, size):
                return sha, size
        raise StoreError(f"{source} kept changing while it was uploaded: store it when it is done")

    def _upload(self, source: Path, sha: str, size: int) -> bool:
        """Send a file under ``sha``; False (and nothing left under that name) when what
        was read while sending hashes otherwise (the file changed meanwhile)."""
        from boto3.s3.transfer import TransferConfig

        s3 = self._ready()
        key = self._key(sha)
        if size < MULTIPART_THRESHOLD:
            # One PUT of what was read (the transfer manager's threads cost more than a
            # small file's upload).
            data = source.read_bytes()
            if hashlib.sha256(data).hexdigest() != sha:
                return False
            with self._errors("uploading"):
                s3.put_object(Bucket=self.bucket, Key=key, Body=data)
            return True
        with open(source, "rb") as fh:
            reader = _HashingReader(fh)
            with self.progress(f"upload {source.name}", size) as step, self._errors("uploading"):
                s3.upload_fileobj(
                    reader,
                    self.bucket,
                    key,
                    Config=self._transfer_config(TransferConfig),
                    Callback=step,
                )
        if reader.digest.hexdigest() != sha:
            with self._errors("removing a changed upload"):
                s3.delete_object(Bucket=self.bucket, Key=key)
            return False
        return True

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        sha = hashlib.sha256(data).hexdigest()
        # A small blob is sent whether it is there or not: one PUT of the same bytes under
        # the same name (which refreshes its last-put time) costs less than HEAD and then a
        # PUT of the content or of the marker.
        if len(data) >= SMALL_PUT and self.size(sha) is not None:
            self.touch(sha)
            return sha, len(data)
        with self._errors("uploading"):
            self._ready().put_object(Bucket=self.bucket, Key=self._key(sha), Body=data)
        return sha, len(data)

    def writer(self) -> ArtifactWriter:
        return _S3Writer(self)

    def touch(self, sha256: str) -> None:
        with self._errors("marking a blob as put again"):
            self._ready().put_object(Bucket=self.bucket, Key=self._marker(sha256), Body=b"")

    # -- garbage collection --------------------------------------------------------------
    def scan(self) -> Iterator[StoredBlob]:
        s3 = self._ready()
        base = f"{self.prefix}/" if self.prefix else ""
        blobs: dict[str, tuple[int, float]] = {}
        touched: dict[str, float] = {}
        with self._errors("listing"):
            for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base
            ):
                for item in page.get("Contents", ()):
                    name = item["Key"][len(base) :]
                    modified = item["LastModified"].timestamp()
                    folder, _, rest = name.partition("/")
                    if folder == TOUCHED and len(rest) == 64:
                        touched[rest] = modified
                    elif len(folder) == 2 and len(folder + rest) == 64:
                        blobs[folder + rest] = (int(item["Size"]), modified)
        for sha, (size, modified) in blobs.items():
            yield StoredBlob(sha, size, max(modified, touched.get(sha, 0.0)))

    def delete(self, sha256s: list[str]) -> None:
        for sha in sha256s:
            self.cache.path(sha).unlink(missing_ok=True)
        s3 = self._ready()
        keys = [k for sha in sha256s for k in (self._key(sha), self._marker(sha))]
        for lo in range(0, len(keys), 1000):
            with self._errors("deleting"):
                s3.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in keys[lo : lo + 1000]], "Quiet": True},
                )

    def leftovers(self, before: float) -> list[Leftover]:
        s3 = self._ready()
        base = f"{self.prefix}/" if self.prefix else ""
        found: list[Leftover] = []
        with self._errors("listing unfinished uploads"):
            for page in s3.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=base
            ):
                for upload in page.get("Uploads", ()):
                    started = upload["Initiated"].timestamp()
                    if started < before:
                        found.append(
                            Leftover(f"{upload['Key']}?uploadId={upload['UploadId']}", 0, started)
                        )
        return found

    def delete_leftovers(self, items: list[Leftover]) -> None:
        s3 = self._ready()
        for item in items:
            key, _, upload_id = item.name.partition("?uploadId=")
            with self._errors("aborting an unfinished upload"):
                s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
