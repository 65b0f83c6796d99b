"""Content-addressed files: each distinct content is stored once, under its sha256."""

from __future__ import annotations

import hashlib
import os
import shutil
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
        return self.root / sha256[:2] / sha256[2:]

    def put(self, source: Path) -> tuple[str, int]:
        if not source.is_file():
            raise InvalidInputError(f"{source} is not a file: give the path of a file to store")
        sha, size = file_sha256(source)
        target = self.path(sha)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            os.close(fd)
            try:
                shutil.copyfile(source, tmp)
                os.chmod(tmp, 0o444)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return sha, size

    def get(self, sha256: str) -> Path:
        target = self.path(sha256)
        if not target.exists():
            raise NotFoundError(
                f"blob {sha256[:12]} is missing from {self.root}: the store was damaged or "
                "partly copied; restore the blobs directory"
            )
        return target
