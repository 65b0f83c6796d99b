"""Fingerprints of input data: a file's sha256, or a directory's hash over its files."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

from labkeep.capture._hashcache import HashCache
from labkeep.errors import InvalidInputError


def _walk(root: str) -> list[tuple[str, str, os.stat_result]]:
    """(relative posix path, absolute path, stat) of every file under ``root``.

    Symbolic links are followed (data directories are often links into a cache); a directory
    reached twice through links is walked once.
    """
    files: list[tuple[str, str, os.stat_result]] = []
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[str, str]] = [(root, "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            dst = os.stat(directory)
        except OSError:
            continue
        if (dst.st_dev, dst.st_ino) in seen:
            continue
        seen.add((dst.st_dev, dst.st_ino))
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except OSError:
            continue
        for entry in entries:
            rel = prefix + entry.name
            try:
                st = entry.stat()  # follows links
            except OSError:
                continue  # dangling link
            if stat.S_ISDIR(st.st_mode):
                stack.append((entry.path, rel + "/"))
            elif stat.S_ISREG(st.st_mode):
                files.append((rel, entry.path, st))
    files.sort(key=lambda f: f[0])
    return files


def directory_digest(entries: list[tuple[str, str]]) -> str:
    """Merkle-style hash of a directory from its (relative path, sha256) pairs.

    Depends on names and contents only, so copying a directory or touching its files leaves it
    unchanged, while renaming, adding, removing or editing a file changes it.
    """
    h = hashlib.sha256()
    for rel, digest in sorted(entries):
        h.update(rel.encode("utf-8", "surrogateescape"))
        h.update(b"\0")
        h.update(digest.encode("ascii"))
        h.update(b"\n")
    return h.hexdigest()


def fingerprint_input(
    path: str | os.PathLike[str],
    cache_dir: Path | None = None,
    *,
    cache: HashCache | None = None,
) -> dict[str, Any]:
    """Fingerprint an input file or directory: ``{path, kind, sha256, size, files}``.

    File hashes are cached in ``cache_dir`` (or the given ``cache``) by path, size and
    mtime, so a second fingerprint of unchanged data reads no content.

    >>> fingerprint_input("data/train.csv", Path(".labkeep/cache"))  # doctest: +SKIP
    {'path': '/abs/data/train.csv', 'kind': 'file', 'sha256': '...', 'size': 1024, 'files': 1}
    """
    target = Path(path).expanduser().absolute()
    try:
        st = os.stat(target)
    except FileNotFoundError:
        raise InvalidInputError(
            f"input {str(path)!r} does not exist; pass an existing file or directory"
        ) from None
    except OSError as exc:
        raise InvalidInputError(
            f"cannot read input {str(path)!r} ({exc.strerror}); check its permissions"
        ) from None
    own_cache = cache is None
    hasher = HashCache(cache_dir) if cache is None else cache
    try:
        if stat.S_ISDIR(st.st_mode):
            files = _walk(str(target))
            digests = hasher.hash_files([(abspath, fst) for _, abspath, fst in files])
            result: dict[str, Any] = {
                "path": str(target),
                "kind": "dir",
                "sha256": directory_digest(
                    [(rel, d) for (rel, _, _), d in zip(files, digests, strict=True)]
                ),
                "size": sum(fst.st_size for _, _, fst in files),
                "files": len(files),
            }
        elif stat.S_ISREG(st.st_mode):
            result = {
                "path": str(target),
                "kind": "file",
                "sha256": hasher.hash_file(str(target), st),
                "size": st.st_size,
                "files": 1,
            }
        else:
            raise InvalidInputError(
                f"input {str(path)!r} is neither a file nor a directory; pass a file or directory"
            )
    except PermissionError as exc:
        raise InvalidInputError(
            f"cannot read input {exc.filename!r}; check its permissions"
        ) from None
    finally:
        if own_cache:
            hasher.save()
    return result
