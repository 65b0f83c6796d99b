"""Content-addressed files: each distinct content is stored once, under its sha256.

A blob is checked when it is read, not trusted because of its name: it must be a regular
file directly in the blob directory (a symbolic link, or anything resolving outside the
store, is refused) and its content must hash to its name. :meth:`BlobDirectory.get` hashes
the whole file once per process (remembered by inode, size and mtime, so a blob is read
twice only the first time); :meth:`BlobDirectory.open` hashes while the caller streams it and
raises instead of handing over the last chunk when the content does not match, so a blob
that fits in one chunk is refused before any byte of it is used.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from labkeep.errors import DamagedStoreError, InvalidInputError, NotFoundError

_BUFFER = 1 << 20


@dataclass(frozen=True, slots=True)
class BlobRead:
    """A blob being read: its size, and its content in chunks checked against its sha256 as
    they are read (:class:`DamagedStoreError` in place of the last chunk on a mismatch)."""

    size: int
    chunks: Iterator[bytes]


def plain_chunks(path: Path) -> Iterator[bytes]:
    """A file's content in chunks, read lazily (nothing is opened until the first chunk)."""
    with open(path, "rb") as fh:
        while block := fh.read(_BUFFER):
            yield block


def file_sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(_BUFFER):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


class HashingTempFile:
    """A temporary file that hashes what is written to it: what a blob is written through
    before it is stored under its sha256 (here, or in S3 by ``_s3.py``)."""

    def __init__(self, fd: int, name: str) -> None:
        self._tmp = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, block: bytes) -> None:
        self._digest.update(block)
        self._file.write(block)
        self.size += len(block)

    @property
    def sha256(self) -> str:
        """The sha256 of what was written so far."""
        return self._digest.hexdigest()


class BlobWriter(HashingTempFile):
    """A blob being written: a temporary file in the blob directory, moved to its content
    address atomically, never a partial file under a blob's name."""

    def __init__(self, blobs: BlobDirectory) -> None:
        blobs.ensure_directory(blobs.root)
        try:
            fd, name = tempfile.mkstemp(dir=blobs.root, prefix=".tmp-")
        except FileNotFoundError:  # removed since it was made
            blobs.ensure_directory(blobs.root, again=True)
            fd, name = tempfile.mkstemp(dir=blobs.root, prefix=".tmp-")
        super().__init__(fd, name)
        self._blobs = blobs

    def finish(self) -> tuple[str, int]:
        """Store what was written under its sha256 (kept as it was if already stored);
        return (sha256, size)."""
        self._file.close()
        return self._blobs._settle(self._tmp, self.sha256), self.size

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


class BlobDirectory:
    """``root/ab/cdef…``: blobs named by sha256, written atomically, never rewritten."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # sha256 -> (device, inode, size, mtime) of the file whose content was checked.
        self._verified: dict[str, tuple[int, int, int, int]] = {}
        self._verified_lock = threading.Lock()
        #: Directories made (or found) already: a thousand small blobs (logged images) would
        #: otherwise cost two ``mkdir`` calls each.
        self._directories: set[Path] = set()

    def ensure_directory(self, directory: Path, *, again: bool = False) -> None:
        if again or directory not in self._directories:
            directory.mkdir(parents=True, exist_ok=True)
            self._directories.add(directory)

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise NotFoundError(f"{sha256[:80]!r} is not a sha256 blob id")
        return self.root / sha256[:2] / sha256[2:]

    def put(self, source: Path, sha256: str | None = None) -> tuple[str, int]:
        """Store a file's content. With ``sha256`` already known (from a hash cache) and that
        blob present, nothing is read; otherwise the copy is hashed and stored under its own
        hash, so a file changed in between is never stored under a wrong name."""
        if sha256 is not None:
            known = self.path(sha256)
            if known.exists():
                return sha256, known.stat().st_size
        if not source.is_file():
            raise InvalidInputError(f"{source} is not a file: give the path of a file to store")
        with self.writer() as out, open(source, "rb") as src:
            while block := src.read(_BUFFER):
                out.write(block)
            return out.finish()

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        sha = hashlib.sha256(data).hexdigest()
        if self.path(sha).exists():
            return sha, len(data)
        with self.writer() as out:
            out.write(data)
            return out.finish()

    def writer(self) -> BlobWriter:
        """A new blob written in pieces (an upload), hashed as it is written and stored
        under its hash by :meth:`BlobWriter.finish`; dropped if the ``with`` block ends
        without it."""
        return BlobWriter(self)

    def _settle(self, tmp: Path, sha: str) -> str:
        """Move a written temporary file to its content address (or drop it if already there)."""
        target = self.path(sha)
        if target.exists():
            tmp.unlink()
            return sha
        self.ensure_directory(target.parent)
        os.chmod(tmp, 0o444)
        try:
            os.replace(tmp, target)
        except FileNotFoundError:  # the directory was removed since it was made
            self.ensure_directory(target.parent, again=True)
            os.replace(tmp, target)
        return sha

    def get(self, sha256: str) -> Path:
        """The path of a blob whose content was checked against its name (see the module)."""
        target, st = self._checked(sha256)
        if not self._was_verified(sha256, st):
            digest = hashlib.sha256()
            with open(target, "rb") as fh:
                while block := fh.read(_BUFFER):
                    digest.update(block)
            self._conclude(sha256, target, st, digest.hexdigest())
        return target

    def open(self, sha256: str) -> BlobRead:
        """A blob's content, hashed as it is streamed (nothing is read before the first
        chunk is asked for)."""
        target, st = self._checked(sha256)
        if self._was_verified(sha256, st):
            return BlobRead(st.st_size, plain_chunks(target))
        return BlobRead(st.st_size, self._verified_chunks(sha256, target, st))

    def _verified_chunks(self, sha256: str, target: Path, st: os.stat_result) -> Iterator[bytes]:
        digest = hashlib.sha256()
        with open(target, "rb") as fh:
            held = fh.read(_BUFFER)
            while True:
                digest.update(held)
                following = fh.read(_BUFFER) if held else b""
                if not following:
                    break
                yield held
                held = following
        self._conclude(sha256, target, st, digest.hexdigest())
        if held:
            yield held

    def _checked(self, sha256: str) -> tuple[Path, os.stat_result]:
        """The blob's path and status, refusing a link, a non-file, or a path out of the store."""
        target = self.path(sha256)
        try:
            st = os.lstat(target)
            folder = os.lstat(target.parent)
        except FileNotFoundError:
            raise NotFoundError(
                f"blob {sha256[:12]} is missing from {self.root}: the store was damaged or "
                "partly copied; restore the blobs directory"
            ) from None
        if stat.S_ISLNK(st.st_mode) or stat.S_ISLNK(folder.st_mode):
            raise DamagedStoreError(
                f"blob {sha256[:12]} in {self.root} is a symbolic link, refused: blobs are "
                "plain files; remove the link (labkeep db check lists every damaged blob)"
            )
        if not stat.S_ISREG(st.st_mode):
            raise DamagedStoreError(
                f"blob {sha256[:12]} in {self.root} is not a regular file, refused: remove it "
                "(labkeep db check lists every damaged blob)"
            )
        root = self.root.resolve()
        if not target.resolve().is_relative_to(root):
            raise DamagedStoreError(
                f"blob {sha256[:12]} resolves outside {root}, refused: remove it"
            )
        return target, st

    @staticmethod
    def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def _was_verified(self, sha256: str, st: os.stat_result) -> bool:
        with self._verified_lock:
            return self._verified.get(sha256) == self._identity(st)

    def _conclude(self, sha256: str, target: Path, st: os.stat_result, found: str) -> None:
        if found != sha256:
            raise DamagedStoreError(
                f"blob {sha256[:12]} ({target}) does not match its sha256 (its content hashes to "
                f"{found[:12]}…): it was changed after it was stored; `labkeep db check` lists "
                "every damaged blob"
            )
        with self._verified_lock:
            self._verified[sha256] = self._identity(st)

    def check(self, sha256: str) -> str | None:
        """Why a blob is damaged or missing (one line), or None when it is intact; always
        hashes the content (``labkeep db check``)."""
        try:
            target, st = self._checked(sha256)
            digest = hashlib.sha256()
            with open(target, "rb") as fh:
                while block := fh.read(_BUFFER):
                    digest.update(block)
            self._conclude(sha256, target, st, digest.hexdigest())
        except (NotFoundError, DamagedStoreError) as exc:
            return str(exc)
        except OSError as exc:
            return f"blob {sha256[:12]} cannot be read: {exc}"
        return None
