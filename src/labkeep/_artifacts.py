"""Versioned artifacts from Python: ``run.log_artifact(path, name=…, type=…)`` makes a
version of a named artifact (a new one only when the content changed), and
``run.use_artifact("NAME:latest")`` records which version the run consumed and returns a
:class:`VersionedArtifact` that locates or downloads its files.

The files are content-addressed blobs of the store, logged as the run's artifacts too
(under ``NAME/``), and the version itself goes straight to the store
(:meth:`Store.log_artifact_version`), in one transaction.

``labkeep rerun`` hands the versions the original run used to the new run through
``LABKEEP_ARTIFACT_PINS`` (``{"train-set": 1}``): there, ``use_artifact("train-set:latest")``
(or any alias) resolves to the recorded version, so a rerun reads the data the run read.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from labkeep._values import check_registry_name, version_ref
from labkeep.entities import ArtifactFile, ArtifactVersion
from labkeep.errors import InvalidInputError

if TYPE_CHECKING:
    from labkeep.store._base import Store

#: The versions a rerun must use, by artifact name (JSON), set by ``labkeep rerun``.
PINS_ENV = "LABKEEP_ARTIFACT_PINS"


def parse_artifact_ref(ref: object) -> tuple[str, int | str]:
    """``NAME``, ``NAME:latest``, ``NAME:v1`` or ``NAME:ALIAS`` as (name, version ref)."""
    if not isinstance(ref, str):
        raise InvalidInputError(f"artifact {ref!r} is not a name: use 'NAME:latest' or 'NAME:v1'")
    name, _, wanted = ref.partition(":")
    name = check_registry_name(name, "artifact name")
    return name, version_ref(wanted or "latest", "artifact version")


def pinned_versions() -> dict[str, int]:
    """The versions ``labkeep rerun`` pinned for this process (empty outside a rerun)."""
    raw = os.environ.get(PINS_ENV)
    if not raw:
        return {}
    try:
        pins = json.loads(raw)
        return {str(k): int(v) for k, v in dict(pins).items()}
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(
            f"{PINS_ENV} is not a JSON object of artifact names to versions ({exc}): unset it"
        ) from None


def artifact_files(source: Path) -> Iterator[tuple[Path, str]]:
    """The files of a file or directory to log as one artifact, with their paths in it."""
    if source.is_dir():
        found = sorted(p for p in source.rglob("*") if p.is_file())
        if not found:
            raise InvalidInputError(f"directory {str(source)!r} has no files to log")
        for child in found:
            yield child, child.relative_to(source).as_posix()
    elif source.is_file():
        yield source, source.name
    else:
        raise InvalidInputError(
            f"artifact {str(source)!r} does not exist: give a file or a directory"
        )


def resolve(store: Store, ref: str, *, pinned: bool = True) -> ArtifactVersion:
    """The version ``ref`` names; an alias (``latest`` too) of an artifact that a rerun
    pinned resolves to the pinned version."""
    name, wanted = parse_artifact_ref(ref)
    if pinned and not isinstance(wanted, int):
        pins = pinned_versions()
        if name in pins:
            wanted = pins[name]
    return store.get_artifact_version(name, wanted)


class VersionedArtifact:
    """One version of a named artifact, as ``use_artifact`` returns it: what it is, and its
    files on this machine.

    >>> data = run.use_artifact("train-set:latest")       # doctest: +SKIP
    >>> data.label, data.download()                       # doctest: +SKIP
    ('train-set:v1', PosixPath('.../artifacts/train-set/v1'))
    """

    def __init__(self, store: Store, version: ArtifactVersion, cache_dir: Path) -> None:
        self._store = store
        self.info = version
        self._cache_dir = cache_dir

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def type(self) -> str:
        return self.info.type

    @property
    def version(self) -> int:
        return self.info.version

    @property
    def label(self) -> str:
        """``NAME:vN``."""
        return self.info.label

    @property
    def digest(self) -> str:
        return self.info.digest

    @property
    def files(self) -> tuple[ArtifactFile, ...]:
        return self.info.files

    def file(self, path: str) -> Path:
        """The local, read-only copy of one file of the version (checked against its sha256;
        downloaded once from a server)."""
        for f in self.info.files:
            if f.path == path:
                return self._store.blob_path(f.sha256)
        listed = ", ".join(f.path for f in self.info.files[:10])
        raise InvalidInputError(f"{self.label} has no file {path!r} (its files: {listed})")

    def download(self, root: str | os.PathLike[str] | None = None) -> Path:
        """Copy the version's files under ``root`` (default: a directory of the store's cache
        per version) and return it; files already there with the right size are kept."""
        target = (
            Path(root)
            if root is not None
            else self._cache_dir / "artifacts" / self.name / f"v{self.version}"
        )
        for f in self.info.files:
            dest = target / f.path
            if dest.is_file() and dest.stat().st_size == f.size:
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + ".part")
            shutil.copyfile(self._store.blob_path(f.sha256), tmp)
            os.replace(tmp, dest)
        return target

    def __repr__(self) -> str:
        return f"<VersionedArtifact {self.label} ({self.type}, {len(self.info.files)} files)>"
