"""Find the store and pick its backend from a URI.

The default store is ``.labkeep/`` in the nearest enclosing directory that has one (as git
finds ``.git``), else ``./.labkeep`` created on first use. An explicit argument,
``LABKEEP_HOME`` or ``LABKEEP_TRACKING_URI`` (in that order: ``LABKEEP_HOME`` wins when both
are set) point elsewhere: a directory path, ``sqlite:///path/to/file.db``,
``postgresql://…`` or ``http(s)://…``.

Blobs go to the store's artifact store (``labkeep.store._artifacts``): ``--artifacts`` or
``LABKEEP_ARTIFACTS`` (a directory or ``s3://bucket/prefix``), else the one a SQL store
recorded (``labkeep server --artifacts``), else ``blobs/`` beside a SQLite database or a
per-database cache directory for PostgreSQL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from labkeep.errors import StoreError

if TYPE_CHECKING:
    from labkeep.store._base import Store

STORE_DIRNAME = ".labkeep"
#: Environment variables naming the store, the first set one wins.
STORE_ENVS = ("LABKEEP_HOME", "LABKEEP_TRACKING_URI")
#: The artifact store (a directory or ``s3://bucket/prefix``), when not the store's own.
ARTIFACTS_ENV = "LABKEEP_ARTIFACTS"
DB_FILENAME = "labkeep.db"


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """Where a store's database, blobs and journals are.

    ``kind`` is ``sqlite``, ``postgresql`` or ``http``. ``db_url`` is the SQLAlchemy URL for
    SQL stores. Journals live on local disk: for remote stores under a per-URI directory
    of the user's cache. ``blob_dir`` is the local blob directory: the store's blobs unless
    ``artifacts`` (``--artifacts``, ``LABKEEP_ARTIFACTS``) or the store's recorded artifact
    location names another, and the download cache of an object store.
    """

    kind: str
    uri: str
    db_url: str
    journal_dir: Path
    blob_dir: Path
    artifacts: str | None = None

    @property
    def cache_dir(self) -> Path:
        """Local caches (file hashes, detected flags)."""
        return self.journal_dir.parent / "cache"

    @property
    def sqlite_path(self) -> Path:
        return Path(self.db_url.removeprefix("sqlite:///"))


def _find_enclosing(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        candidate = directory / STORE_DIRNAME
        if candidate.is_dir():
            return candidate
    return None


def _cache_dir(uri: str) -> Path:
    import hashlib

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "labkeep"
    return base / hashlib.sha256(uri.encode()).hexdigest()[:16]


def locate_store(
    uri: str | os.PathLike[str] | None = None,
    cwd: Path | None = None,
    *,
    artifacts: str | None = None,
) -> StoreLocation:
    """Resolve ``uri`` (or ``LABKEEP_HOME``, ``LABKEEP_TRACKING_URI``, or the nearest
    ``.labkeep``) to a location.

    >>> locate_store("/tmp/exp").db_url
    'sqlite:////tmp/exp/labkeep.db'
    """
    from dataclasses import replace

    chosen = artifacts or os.environ.get(ARTIFACTS_ENV, "").strip() or None
    location = _locate(os.fspath(uri) if uri is not None else _store_from_env(), cwd)
    if chosen is None or location.kind == "http":
        return location
    from labkeep.store._artifacts import normalise_artifacts_uri

    return replace(location, artifacts=normalise_artifacts_uri(chosen))


def _locate(raw: str | None, cwd: Path | None) -> StoreLocation:
    if raw is None:
        here = (cwd or Path.cwd()).resolve()
        root = _find_enclosing(here) or here / STORE_DIRNAME
        return _sqlite_location(root / DB_FILENAME, str(root))
    if raw.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        url = "postgresql+psycopg://" + raw.split("://", 1)[1]
        cache = _cache_dir(url)
        return StoreLocation("postgresql", raw, url, cache / "journals", cache / "blobs")
    if raw.startswith(("http://", "https://")):
        raw = raw.rstrip("/")  # one server, one journal cache, with or without the slash
        cache = _cache_dir(raw)
        return StoreLocation("http", raw, raw, cache / "journals", cache / "blobs")
    if raw.startswith("sqlite:///"):
        db = Path(raw.removeprefix("sqlite:///")).expanduser().resolve()
        return _sqlite_location(db, raw)
    if "://" in raw:
        raise StoreError(
            f"unsupported store URI {raw!r}: use a directory, sqlite:///FILE, postgresql://… or http(s)://…"
        )
    root = Path(raw).expanduser().resolve()
    if root.suffix == ".db":
        return _sqlite_location(root, raw)
    return _sqlite_location(root / DB_FILENAME, raw)


def _store_from_env() -> str | None:
    for name in STORE_ENVS:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def _sqlite_location(db: Path, uri: str) -> StoreLocation:
    root = db.parent
    return StoreLocation("sqlite", uri, f"sqlite:///{db}", root / "journals", root / "blobs")


def open_store(location: StoreLocation) -> Store:
    """The Store for a location (no I/O until first use)."""
    if location.kind in ("sqlite", "postgresql"):
        from labkeep.store.sql import SqlStore

        return SqlStore(location)
    from labkeep.store.rest import RestStore

    return RestStore(location)
