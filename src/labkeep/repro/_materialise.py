"""Write a snapshot's code files back to disk, all or nothing.

Files are written into a hidden temporary directory beside the target and renamed into place
at the end, so a failure (a blob missing from the store, a full disk) leaves no half-written
tree behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from labkeep.errors import InvalidInputError
from labkeep.repro._environment import requirements_text
from labkeep.repro._source import RunSnapshot, safe_relative

SNAPSHOT_FILE = "labkeep-snapshot.json"
REQUIREMENTS_FILE = "requirements.txt"
FALLBACK_REQUIREMENTS_FILE = "labkeep-requirements.txt"


@dataclass(frozen=True, slots=True)
class Materialised:
    """What :func:`materialise` wrote: the directory, how many files and bytes, extra files."""

    directory: Path
    files: int
    bytes: int
    extras: tuple[str, ...] = ()


def check_target(directory: Path) -> None:
    """``directory`` must not exist or be an empty directory."""
    if directory.is_symlink() or directory.exists():
        if not directory.is_dir() or directory.is_symlink():
            raise InvalidInputError(f"{directory} exists and is not a directory; pick a new path")
        if any(directory.iterdir()):
            raise InvalidInputError(
                f"{directory} is not empty; check out into a new or empty directory"
            )


def materialise(snapshot: RunSnapshot, directory: Path, *, extras: bool = False) -> Materialised:
    """Write the snapshot's code files (with their modes and symbolic links) into ``directory``.

    With ``extras``, also ``labkeep-snapshot.json`` (the snapshot row) and pinned requirements
    (``requirements.txt``, or ``labkeep-requirements.txt`` when the code has its own).

    >>> materialise(load_snapshot(store, 7), Path("run7"), extras=True)  # doctest: +SKIP
    Materialised(directory=PosixPath('run7'), files=12, bytes=40960, extras=(...))
    """
    directory = directory.absolute()
    check_target(directory)
    manifest = snapshot.manifest()
    if not manifest and not snapshot.section("code").get("manifest"):
        raise InvalidInputError(
            f"run {snapshot.number} kept no code files (code capture was off); nothing to write"
        )
    # Every blob is located before anything is written: a missing one fails cleanly.
    sources = [
        (safe_relative(e.path), snapshot.blob_path(e.sha256, f"code file {e.path}"), e)
        for e in manifest
    ]
    links = [
        (safe_relative(link["path"]), str(link.get("target", ""))) for link in snapshot.links()
    ]
    extra_files: dict[str, bytes] = {}
    if extras:
        extra_files[SNAPSHOT_FILE] = (
            json.dumps(snapshot.data, indent=2, sort_keys=True).encode() + b"\n"
        )
        name = REQUIREMENTS_FILE
        if any(str(rel) == REQUIREMENTS_FILE for rel, _, _ in sources):
            name = FALLBACK_REQUIREMENTS_FILE
        extra_files[name] = requirements_text(
            snapshot.packages(),
            snapshot.package_sources(),
            python_version=snapshot.section("environment").get("python_version"),
        ).encode()
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.partial-"))
    try:
        total = 0
        for rel, blob, entry in sources:
            target = staging.joinpath(*rel.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(blob, target)
            os.chmod(target, 0o755 if entry.executable else 0o644)
            total += entry.size
        for rel, link_target in links:
            target = staging.joinpath(*rel.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(link_target, target)
        for name, content in extra_files.items():
            (staging / name).write_bytes(content)
        os.chmod(staging, 0o755)
        if directory.is_dir():
            directory.rmdir()  # empty, checked above
        os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Materialised(directory, len(sources), total, tuple(extra_files))
