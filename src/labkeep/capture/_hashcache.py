"""Content hashes of files, cached by (path, size, mtime_ns) so unchanged files cost one stat."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

CACHE_FILE = "file-hashes.json"
# Entries kept in the cache file; the least recently used beyond this are dropped on save.
MAX_ENTRIES = 200_000
# A file modified within this window of being hashed may change again inside the same mtime
# tick (git's "racily clean" problem); its hash is used but not cached.
RACY_WINDOW_NS = 2_000_000_000
# Below this many bytes to hash, threads cost more than they save.
PARALLEL_MIN_BYTES = 8 * 1024 * 1024
LAST_USED_RESOLUTION_S = 86_400
_CACHE_VERSION = 1


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's content."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class HashCache:
    """sha256 of files keyed by absolute path and validated by size and mtime_ns.

    ``HashCache(None)`` hashes without caching. The cache file is read lazily on first use and
    written atomically by :meth:`save` (last writer wins; it is only a cache).

    >>> cache = HashCache(Path(".labkeep/cache"))
    >>> digests = cache.hash_files([("a.py", os.stat("a.py"))])
    >>> cache.save()
    """

    def __init__(self, cache_dir: Path | None) -> None:
        self.cache_dir = cache_dir
        self._entries: dict[str, list[int | str]] | None = None
        self._dirty = False
        self.hits = 0
        self.misses = 0

    def _load(self) -> dict[str, list[int | str]]:
        if self._entries is not None:
            return self._entries
        entries: dict[str, list[int | str]] = {}
        if self.cache_dir is not None:
            try:
                raw = json.loads((self.cache_dir / CACHE_FILE).read_bytes())
                if isinstance(raw, dict) and raw.get("version") == _CACHE_VERSION:
                    loaded = raw.get("entries")
                    if isinstance(loaded, dict):
                        entries = loaded
            except (OSError, ValueError):
                entries = {}
        self._entries = entries
        return entries

    def hash_files(self, files: Sequence[tuple[str, os.stat_result]]) -> list[str]:
        """sha256 of each ``(absolute path, stat)``; unchanged cached files are not read."""
        entries = self._load()
        now_s = int(time.time())
        digests: list[str | None] = [None] * len(files)
        todo: list[int] = []
        for i, (path, st) in enumerate(files):
            entry = entries.get(path)
            if entry is not None and entry[0] == st.st_size and entry[1] == st.st_mtime_ns:
                digests[i] = str(entry[2])
                # Last use is kept to the day so an unchanged tree does not rewrite the file.
                if now_s - int(entry[3]) > LAST_USED_RESOLUTION_S:
                    entry[3] = now_s
                    self._dirty = True
                self.hits += 1
            else:
                todo.append(i)
        if todo:
            self.misses += len(todo)
            total = sum(files[i][1].st_size for i in todo)
            paths = [files[i][0] for i in todo]
            if total >= PARALLEL_MIN_BYTES and len(todo) > 1:
                from concurrent.futures import ThreadPoolExecutor

                workers = min(8, (os.cpu_count() or 1) + 1, len(todo))
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    computed = list(pool.map(sha256_file, paths))
            else:
                computed = [sha256_file(p) for p in paths]
            racy_after = time.time_ns() - RACY_WINDOW_NS
            for i, digest in zip(todo, computed, strict=True):
                digests[i] = digest
                path, st = files[i]
                if st.st_mtime_ns < racy_after:
                    entries[path] = [st.st_size, st.st_mtime_ns, digest, now_s]
                    self._dirty = True
        return [d for d in digests if d is not None]

    def hash_file(self, path: str, st: os.stat_result | None = None) -> str:
        """sha256 of one file through the cache."""
        return self.hash_files([(path, st if st is not None else os.stat(path))])[0]

    def save(self) -> None:
        """Write the cache file if anything changed; failures leave the old cache in place."""
        if self.cache_dir is None or not self._dirty or self._entries is None:
            return
        entries = self._entries
        if len(entries) > MAX_ENTRIES:
            newest = sorted(entries.items(), key=lambda kv: int(kv[1][3]), reverse=True)
            entries = dict(newest[:MAX_ENTRIES])
            self._entries = entries
        target = self.cache_dir / CACHE_FILE
        tmp = target.with_name(f"{CACHE_FILE}.{os.getpid()}.tmp")
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            tmp.write_text(
                json.dumps({"version": _CACHE_VERSION, "entries": entries}, separators=(",", ":"))
            )
            os.replace(tmp, target)
            self._dirty = False
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
