"""Which blobs a run names: the rows of ``blob_refs`` that keep a blob from being purged.

Artifacts name their blob in their own row, but a snapshot names its blobs inside its JSON
(the code manifest, the package list, the uncommitted diff) and names each code file only
inside the manifest, itself a blob. Purge must see all of them, so each is kept as a row
``(run_number, sha256, kind)`` written in the same transaction as what names it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

ARTIFACT = "artifact"
#: A blob holding an image, histogram, table or figure a run logged.
MEDIA = "media"
#: A blob named by a snapshot, by where in the snapshot it is named.
CODE, MANIFEST, PACKAGES, DIFF = "code", "manifest", "packages", "diff"


def _sha(value: Any) -> str | None:
    if isinstance(value, str) and len(value) == 64:
        return value
    return None


def snapshot_refs(data: dict[str, Any], read_json: Callable[[str], Any]) -> set[tuple[str, str]]:
    """``(sha256, kind)`` of every blob a snapshot names. ``read_json`` reads a blob as JSON
    (to list the manifest's files); a manifest that cannot be read still counts itself."""
    refs: set[tuple[str, str]] = set()
    code = data.get("code")
    manifest = _sha(code.get("manifest")) if isinstance(code, dict) else None
    if manifest is not None:
        refs.add((manifest, MANIFEST))
        try:
            files = read_json(manifest)
        except Exception as exc:  # a missing or damaged manifest must not stop the write
            log.warning("code manifest %s could not be read (%s)", manifest[:12], exc)
            files = []
        for entry in files if isinstance(files, list) else []:
            sha = _sha(entry.get("sha256")) if isinstance(entry, dict) else None
            if sha is not None:
                refs.add((sha, CODE))
    environment = data.get("environment")
    if isinstance(environment, dict) and (sha := _sha(environment.get("packages_blob"))):
        refs.add((sha, PACKAGES))
    git = data.get("git")
    if isinstance(git, dict) and (sha := _sha(git.get("diff_blob"))):
        refs.add((sha, DIFF))
    return refs
