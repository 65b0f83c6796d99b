"""A run's stored snapshot, read back: the row, and the blobs it names by sha256."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from labkeep.errors import InvalidInputError, NotFoundError, StoreError

if TYPE_CHECKING:
    from labkeep.entities import RunInfo
    from labkeep.store._base import Store


class MissingBlobError(StoreError):
    """A blob the snapshot names is not in the store (deleted by hand, or a partial copy)."""


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One code file of a snapshot: where it goes, its content's sha256, size and git mode."""

    path: str
    sha256: str
    size: int
    mode: str

    @property
    def executable(self) -> bool:
        return self.mode == "100755"


@dataclass(slots=True)
class RunSnapshot:
    """The snapshot of one run, with its blobs read on demand (and each read once)."""

    store: Store
    info: RunInfo
    data: dict[str, Any]
    _cache: dict[str, Any] = field(default_factory=dict)

    @property
    def number(self) -> int:
        return self.info.number

    def section(self, name: str) -> dict[str, Any]:
        """A section (``code``, ``git``, ``environment``, ``host``, ``command``) or ``{}``."""
        value = self.data.get(name)
        return value if isinstance(value, dict) else {}

    @property
    def inputs(self) -> list[dict[str, Any]]:
        value = self.data.get("inputs")
        return [i for i in value if isinstance(i, dict)] if isinstance(value, list) else []

    @property
    def seeds(self) -> list[dict[str, Any]]:
        value = self.data.get("seeds")
        return [s for s in value if isinstance(s, dict)] if isinstance(value, list) else []

    def blob_path(self, sha256: str, what: str) -> Path:
        """The local file of a blob; :class:`MissingBlobError` names ``what`` is lost."""
        try:
            path = self.store.blob_path(sha256)
        except NotFoundError:
            path = None
        if path is None or not path.is_file():
            raise MissingBlobError(
                f"{what} of run {self.number} (blob {sha256[:12]}) is missing from the store "
                f"{self.store.uri}; restore the store's blobs/ from a backup to use this snapshot"
            )
        return path

    def blob_bytes(self, sha256: str, what: str) -> bytes:
        return self.blob_path(sha256, what).read_bytes()

    def _json_blob(self, key: str, sha256: str, what: str) -> Any:
        if key not in self._cache:
            try:
                self._cache[key] = json.loads(self.blob_bytes(sha256, what))
            except ValueError:
                raise StoreError(
                    f"{what} of run {self.number} (blob {sha256[:12]}) is not valid JSON; "
                    "the store is damaged"
                ) from None
        return self._cache[key]

    def manifest(self) -> list[ManifestEntry]:
        """The code files, sorted by path (empty when the run kept no code)."""
        code = self.section("code")
        sha = code.get("manifest")
        if not isinstance(sha, str):
            return []
        raw = self._json_blob("manifest", sha, "the code manifest")
        return [
            ManifestEntry(str(f["path"]), str(f["sha256"]), int(f["size"]), str(f["mode"]))
            for f in raw
        ]

    def links(self) -> list[dict[str, str]]:
        value = self.section("code").get("links")
        return [x for x in value if isinstance(x, dict)] if isinstance(value, list) else []

    def packages(self) -> dict[str, str]:
        """``{canonical name: version}`` of the distributions installed when the run started."""
        sha = self.section("environment").get("packages_blob")
        if not isinstance(sha, str):
            return {}
        raw = self._json_blob("packages", sha, "the package list")
        return {str(k): str(v) for k, v in raw.items()}

    def package_sources(self) -> dict[str, dict[str, Any]]:
        value = self.section("environment").get("package_sources")
        return value if isinstance(value, dict) else {}

    def file_bytes(self, entry: ManifestEntry) -> bytes:
        return self.blob_bytes(entry.sha256, f"code file {entry.path}")

    def code_root(self) -> str | None:
        root = self.section("code").get("root")
        return root if isinstance(root, str) else None

    def relative_cwd(self) -> PurePosixPath:
        """Where the run's working directory was, relative to the code root ('.' if outside)."""
        root = self.code_root()
        cwd = self.section("host").get("cwd")
        if not root or not isinstance(cwd, str):
            return PurePosixPath(".")
        rel = os.path.relpath(cwd, root)
        if rel == os.curdir or rel.startswith(os.pardir):
            return PurePosixPath(".")
        return PurePosixPath(Path(rel).as_posix())


def load_snapshot(store: Store, ref: str | int) -> RunSnapshot:
    """The snapshot of run ``ref``; one-line errors for runs in the trash or without one.

    >>> snap = load_snapshot(client.store, 7)  # doctest: +SKIP
    >>> [f.path for f in snap.manifest()]  # doctest: +SKIP
    ['train.py', 'data/prep.py']
    """
    if not store.exists():
        raise NotFoundError(f"no run {str(ref)!r}: the store at {store.uri} has no runs yet")
    info = store.resolve_run(ref)
    if info.deleted:
        raise InvalidInputError(
            f"run {info.number} is in the trash: `labkeep restore {info.number}` it first"
        )
    data = store.get_snapshot(info.number)
    if data is None:
        raise NotFoundError(
            f"run {info.number} has no snapshot (it ran with capture off, or is still starting); "
            "only runs with a snapshot can be reproduced"
        )
    if "code" not in data and "error" in data:
        raise NotFoundError(
            f"run {info.number} has no usable snapshot: capture failed ({data['error']})"
        )
    return RunSnapshot(store, info, data)


def safe_relative(path: str) -> PurePosixPath:
    """``path`` as a relative path that stays inside its directory, or InvalidInputError."""
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise InvalidInputError(
            f"snapshot path {path!r} would leave the target directory; the snapshot is damaged"
        )
    return pure
