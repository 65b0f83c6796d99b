"""Find the store and pick its backend from a URI.

The default store is ``.labkeep/`` in the nearest enclosing directory that has one (as git
finds ``.git``), else ``./.labkeep`` created on first use. ``LABKEEP_HOME`` or an explicit
argument point elsewhere: a directory path, ``sqlite:///path/to/file.db``,
``postgresql://…`` or ``http(s)://…``.
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
DB_FILENAME = "labkeep.db"


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """Where a store's database, blobs and journals are.

    ``kind`` is ``sqlite``, ``postgresql`` or ``http``. ``db_url`` is the SQLAlchemy URL for
    SQL stores. Journals and blobs always live on local disk: for remote stores under a
    per-URI directory of the user's cache.
    """

    kind: str
    uri: str
    db_url: str
    journal_dir: Path
    blob_dir: Path

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
    uri: str | os.PathLike[str] | None = None, cwd: Path | None = None
) -> StoreLocation:
    """Resolve ``uri`` (or ``LABKEEP_HOME``, or the nearest ``.labkeep``) to a location.

    >>> locate_store("/tmp/exp").db_url
    'sqlite:////tmp/exp/labkeep.db'
    """
    raw = os.fspath(uri) if uri is not None else os.environ.get("LABKEEP_HOME") or None
    if raw is None:
        here = (cwd or Path.cwd()).resolve()
        root = _find_enclosing(here) or here / STORE_DIRNAME
        return _sqlite_location(root / DB_FILENAME, str(root))
    if raw.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        url = "postgresql+psycopg://" + raw.split("://", 1)[1]
        cache = _cache_dir(url)
        blob_root = os.environ.get("LABKEEP_ARTIFACTS")
        return StoreLocation(
            "postgresql",
            raw,
            url,
            cache / "journals",
            Path(blob_root) if blob_root else cache / "blobs",
        )
    if raw.startswith(("http://", "https://")):
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


def _sqlite_location(db: Path, uri: str) -> StoreLocation:
    root = db.parent
    return StoreLocation("sqlite", uri, f"sqlite:///{db}", root / "journals", root / "blobs")


def open_store(location: StoreLocation) -> Store:
    """The Store for a location (no I/O until first use)."""
    if location.kind in ("sqlite", "postgresql"):
        from labkeep.store.sql import SqlStore

        return SqlStore(location)
    from labkeep.store.rest import RestStore  # type: ignore[import-not-found,unused-ignore]

    store: Store = RestStore(location)
    return store
