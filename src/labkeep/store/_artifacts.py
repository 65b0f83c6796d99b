"""Artifact stores by URI: where a store's content-addressed blobs live.

``open_artifacts(uri)`` picks the backend: a directory (:class:`LocalArtifacts`, the blob
directory beside a SQLite store) or ``s3://bucket/prefix`` (:class:`S3Artifacts`, any
S3-compatible object storage). Both name a blob by its sha256 (``PREFIX/ab/cdef…``), so an
upload is idempotent: the object is asked for first (HEAD) and sent only when missing (on
object storage, a blob under 256 KiB is sent at once: the same bytes under the same name).

Every put of a blob that was already there refreshes its *last put* time (the file's mtime;
on object storage a zero-byte marker ``PREFIX/touched/SHA``): ``labkeep gc`` and purge never
delete a blob put after the cutoff they work from, so content that a run is re-using at the
very moment another run that named it is purged is kept (see ``store/_gc.py``).

S3 (:mod:`labkeep.store._s3`) goes through boto3 (``pip install labkeep[s3]``), imported on
first use: its transfer
manager (s3transfer) does multipart uploads and parallel ranged downloads with a byte
callback for the progress bar, botocore's ``standard`` retry mode retries throttling and
dropped connections, and the endpoint, region, credentials and profile come from the usual
AWS variables (``AWS_ENDPOINT_URL``, ``AWS_REGION``/``AWS_DEFAULT_REGION``,
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``~/.aws/config``).
"""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkeep.errors import InvalidInputError, NotFoundError, StoreError
from labkeep.store._blobs import BlobDirectory, BlobRead

if TYPE_CHECKING:
    from labkeep.store._blobs import BlobWriter


class ObjectStoreUnreachableError(StoreError):
    """The object store did not answer (refused, timed out, name not resolved), after retries."""


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """A blob an artifact store holds: its size and when it was last put (epoch seconds)."""

    sha256: str
    size: int
    last_put: float


@dataclass(frozen=True, slots=True)
class Leftover:
    """Something an interrupted upload left behind (a temporary file, an unfinished multipart
    upload): ``name`` says what, for a listing."""

    name: str
    size: int
    started: float


ProgressFactory = Callable[[str, int], contextlib.AbstractContextManager[Callable[[int], None]]]


def _no_progress(description: str, total: int) -> contextlib.AbstractContextManager[Any]:
    return contextlib.nullcontext(lambda n: None)


def check_sha(sha256: str) -> str:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise NotFoundError(f"{sha256[:80]!r} is not a sha256 blob id")
    return sha256


class ArtifactStore(ABC):
    """Content-addressed blobs behind a URI. Constructors do no I/O."""

    uri: str
    #: Whether another machine can reach the blobs with the URI alone (object storage).
    shared: bool = False
    #: How coarse :meth:`last_put` is, in seconds (object stores keep whole seconds).
    time_resolution: float = 0.0

    @abstractmethod
    def size(self, sha256: str) -> int | None:
        """The size of a stored blob, or None when it is not stored."""

    @abstractmethod
    def put(self, source: Path, sha256: str | None = None) -> tuple[str, int]:
        """Store a file's content under its sha256 unless already there; (sha256, size)."""

    @abstractmethod
    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store bytes under their sha256 unless already there; (sha256, size)."""

    @abstractmethod
    def writer(self) -> ArtifactWriter:
        """A blob written in pieces (an upload through the server), stored by ``finish``."""

    @abstractmethod
    def open(self, sha256: str) -> BlobRead:
        """A blob's size and content in chunks, checked against its sha256 as they stream."""

    @abstractmethod
    def local_path(self, sha256: str) -> Path:
        """A local file with the blob's checked content (downloaded once into a cache)."""

    @abstractmethod
    def touch(self, sha256: str) -> None:
        """Note that the blob was put again now (it is being named by a new record)."""

    @abstractmethod
    def last_put(self, sha256: str) -> float | None:
        """When the blob was last put or touched (None when it is not stored)."""

    @abstractmethod
    def scan(self) -> Iterator[StoredBlob]:
        """Every stored blob."""

    @abstractmethod
    def delete(self, sha256s: list[str]) -> None:
        """Remove blobs (and their markers); missing ones are skipped."""

    @abstractmethod
    def leftovers(self, before: float) -> list[Leftover]:
        """What uploads interrupted before ``before`` left behind."""

    @abstractmethod
    def delete_leftovers(self, items: list[Leftover]) -> None:
        """Remove what :meth:`leftovers` listed."""

    @abstractmethod
    def check(self, sha256: str) -> str | None:
        """Why a blob is damaged or missing (one line), or None when it is intact."""


class ArtifactWriter(ABC):
    """A blob being written in pieces; dropped unless :meth:`finish` stores it."""

    @abstractmethod
    def write(self, block: bytes) -> None: ...

    @property
    @abstractmethod
    def sha256(self) -> str: ...

    @abstractmethod
    def finish(self) -> tuple[str, int]: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> ArtifactWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- a local directory -------------------------------------------------------------------


class _LocalWriter(ArtifactWriter):
    def __init__(self, inner: BlobWriter, store: LocalArtifacts) -> None:
        self._inner = inner
        self._store = store

    def write(self, block: bytes) -> None:
        self._inner.write(block)

    @property
    def sha256(self) -> str:
        return self._inner.sha256

    def finish(self) -> tuple[str, int]:
        sha, size = self._inner.finish()
        self._store.touch(sha)
        return sha, size

    def close(self) -> None:
        self._inner.__exit__()


class LocalArtifacts(ArtifactStore):
    """Blobs in a directory (``root/ab/cdef…``); a blob's mtime is when it was last put."""

    def __init__(self, root: Path) -> None:
        self.blobs = BlobDirectory(root)
        self.root = root
        self.uri = str(root)

    def size(self, sha256: str) -> int | None:
        try:
            return self.blobs.path(sha256).stat().st_size
        except FileNotFoundError:
            return None

    def put(self, source: Path, sha256: str | None = None) -> tuple[str, int]:
        sha, size = self.blobs.put(source, sha256)
        self.touch(sha)
        return sha, size

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        sha, size = self.blobs.put_bytes(data)
        self.touch(sha)
        return sha, size

    def writer(self) -> ArtifactWriter:
        return _LocalWriter(self.blobs.writer(), self)

    def open(self, sha256: str) -> BlobRead:
        return self.blobs.open(sha256)

    def local_path(self, sha256: str) -> Path:
        return self.blobs.get(sha256)

    def touch(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError, PermissionError):
            os.utime(self.blobs.path(sha256))

    def last_put(self, sha256: str) -> float | None:
        try:
            return self.blobs.path(sha256).stat().st_mtime
        except FileNotFoundError:
            return None

    def scan(self) -> Iterator[StoredBlob]:
        if not self.root.is_dir():
            return
        for folder in os.scandir(self.root):
            if len(folder.name) != 2 or not folder.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(folder.path):
                sha = folder.name + entry.name
                if len(sha) != 64 or entry.name.startswith("."):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    st = entry.stat(follow_symlinks=False)
                    yield StoredBlob(sha, st.st_size, st.st_mtime)

    def delete(self, sha256s: list[str]) -> None:
        for sha in sha256s:
            self.blobs.path(sha).unlink(missing_ok=True)

    def leftovers(self, before: float) -> list[Leftover]:
        found: list[Leftover] = []
        if not self.root.is_dir():
            return found
        for entry in os.scandir(self.root):
            if entry.name.startswith(".tmp-") and entry.is_file(follow_symlinks=False):
                st = entry.stat(follow_symlinks=False)
                if st.st_mtime < before:
                    found.append(Leftover(entry.name, st.st_size, st.st_mtime))
        return found

    def delete_leftovers(self, items: list[Leftover]) -> None:
        for item in items:
            (self.root / item.name).unlink(missing_ok=True)

    def check(self, sha256: str) -> str | None:
        return self.blobs.check(sha256)


def open_artifacts(
    uri: str, cache: Path, *, progress: ProgressFactory | None = None
) -> ArtifactStore:
    """The artifact store for ``uri``: a directory, or ``s3://bucket/prefix`` (``cache``
    holds its downloads)."""
    if uri.startswith("s3://"):
        from labkeep.store._s3 import S3Artifacts

        return S3Artifacts(uri, cache, progress=progress)
    if "://" in uri and not uri.startswith("file://"):
        raise InvalidInputError(
            f"unsupported artifact store {uri!r}: give a directory or s3://BUCKET/PREFIX"
        )
    return LocalArtifacts(Path(uri.removeprefix("file://")).expanduser().resolve())


def normalise_artifacts_uri(uri: str) -> str:
    """One spelling per location (what a store records and compares)."""
    if uri.startswith("s3://"):
        from labkeep.store._s3 import parse_s3_uri

        bucket, prefix = parse_s3_uri(uri)
        return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
    return str(Path(uri.removeprefix("file://")).expanduser().resolve())
