"""Content-addressed files: each distinct content is stored once, under its sha256."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from labkeep.errors import InvalidInputError, NotFoundError

_BUFFER = 1 << 20


def file_sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(_BUFFER):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


class BlobDirectory:
    """``root/ab/cdef…``: blobs named by sha256, written atomically, never rewritten."""

    def __init__(self, root: Path) -> None:
        self.root = root

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
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        tmp = Path(tmp_name)
        digest = hashlib.sha256()
        size = 0
        try:
            with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
                while block := src.read(_BUFFER):
                    digest.update(block)
                    dst.write(block)
                    size += len(block)
            return self._settle(tmp, digest.hexdigest()), size
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        sha = hashlib.sha256(data).hexdigest()
        if self.path(sha).exists():
            return sha, len(data)
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        with os.fdopen(fd, "wb") as dst:
            dst.write(data)
        return self._settle(Path(tmp_name), sha), len(data)

    def _settle(self, tmp: Path, sha: str) -> str:
        """Move a written temporary file to its content address (or drop it if already there)."""
        target = self.path(sha)
        if target.exists():
            tmp.unlink()
            return sha
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)
        return sha

    def get(self, sha256: str) -> Path:
        target = self.path(sha256)
        if not target.exists():
            raise NotFoundError(
                f"blob {sha256[:12]} is missing from {self.root}: the store was damaged or "
                "partly copied; restore the blobs directory"
            )
        return target
