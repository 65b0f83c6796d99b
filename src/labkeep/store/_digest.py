"""The identity of a versioned artifact's content: a digest of its files' paths and hashes.

Two directories with the same files (same relative paths, same bytes) have the same
digest, whatever their modification times or the order they were listed in; so logging the
same data again gives the version it already has. Every store computes it the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from labkeep.entities import ArtifactFile


def artifact_digest(files: Sequence[ArtifactFile]) -> str:
    """sha256 over ``path NUL sha256 LF`` of each file, in path order."""
    h = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.path):
        h.update(f.path.encode())
        h.update(b"\0")
        h.update(f.sha256.encode())
        h.update(b"\n")
    return h.hexdigest()
