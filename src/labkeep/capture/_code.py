"""The code snapshot: which files reproduce a run, with their content hashes.

With git, the files git does not ignore; without it, source files under the directory, within
size and count limits. ``.labkeepignore`` (gitignore syntax) adjusts both: a pattern leaves
files out, ``!pattern`` brings back what the defaults leave out.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkeep.capture._hashcache import HashCache
from labkeep.capture._ignore import IgnoreRules

DEFAULT_MAX_FILE_SIZE = 1024 * 1024
DEFAULT_MAX_FILES = 2000
# Files git tracks are all kept, except ones this large (datasets and checkpoints committed
# by mistake would otherwise be copied into the store on every run).
DEFAULT_GIT_MAX_FILE_SIZE = 64 * 1024 * 1024
MAX_LISTED_SKIPPED = 100

SOURCE_SUFFIXES = frozenset(
    [
        ".py",
        ".pyi",
        ".pyx",
        ".pxd",
        ".ipynb",
        ".yaml",
        ".yml",
        ".json",
        ".jsonnet",
        ".toml",
        ".cfg",
        ".ini",
        ".conf",
        ".txt",
        ".md",
        ".rst",
        ".sh",
        ".bash",
        ".zsh",
        ".r",
        ".rmd",
        ".jl",
        ".sql",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".cxx",
        ".hpp",
        ".cu",
        ".cuh",
        ".js",
        ".ts",
        ".lua",
        ".scala",
        ".java",
        ".go",
        ".rs",
        ".proto",
        ".jinja",
        ".j2",
        ".tex",
        ".gin",
    ]
)
SOURCE_NAMES = frozenset(
    [
        "Makefile",
        "Dockerfile",
        "Pipfile",
        "Pipfile.lock",
        "poetry.lock",
        "uv.lock",
        "Snakefile",
        "Justfile",
    ]
)
# Directories the scan never enters unless .labkeepignore re-includes them. Hidden
# directories (.git, .venv, ...) and virtual environments (holding pyvenv.cfg) are also skipped.
SKIPPED_DIRS = frozenset(
    ["__pycache__", "node_modules", "site-packages", "build", "dist", "wandb", "mlruns", "outputs"]
)


@dataclass(frozen=True, slots=True)
class CodeFile:
    """One file of the code snapshot; ``abspath`` is where to read it to store the blob."""

    path: str
    abspath: str
    sha256: str
    size: int
    mode: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256, "mode": self.mode}


def _git_mode(st_mode: int) -> str:
    return "100755" if st_mode & stat.S_IXUSR else "100644"


def _is_source(name: str) -> bool:
    if name in SOURCE_NAMES:
        return True
    dot = name.rfind(".")
    return dot > 0 and name[dot:].lower() in SOURCE_SUFFIXES


@dataclass(slots=True)
class _Selection:
    files: list[tuple[str, str, os.stat_result]]  # (relative path, absolute path, stat)
    links: list[dict[str, str]]
    skipped: list[dict[str, Any]]
    skipped_count: int = 0
    truncated: bool = False

    def skip(self, path: str, reason: str, size: int | None = None) -> None:
        self.skipped_count += 1
        if len(self.skipped) < MAX_LISTED_SKIPPED:
            entry: dict[str, Any] = {"path": path, "reason": reason}
            if size is not None:
                entry["size"] = size
            self.skipped.append(entry)


def _in_store(rel: str) -> bool:
    """A labkeep store inside the tree is never code (its journals alone are large)."""
    return rel.startswith(".labkeep/") or "/.labkeep/" in rel


def _select_listed(
    root: Path, paths: Iterable[str], rules: IgnoreRules, max_file_size: int
) -> _Selection:
    sel = _Selection([], [], [])
    base = str(root)
    for rel in paths:
        if _in_store(rel) or (rules and rules.is_ignored(rel)):
            continue
        abspath = os.path.join(base, rel)
        try:
            st = os.lstat(abspath)
        except OSError:
            continue  # deleted in the work tree; the diff records it
        if stat.S_ISLNK(st.st_mode):
            try:
                sel.links.append({"path": rel, "target": os.readlink(abspath)})
            except OSError:
                sel.skip(rel, "unreadable link")
            continue
        if not stat.S_ISREG(st.st_mode):
            continue  # submodule or other non-file entry
        if st.st_size > max_file_size:
            sel.skip(rel, "size", st.st_size)
            continue
        sel.files.append((rel, abspath, st))
    return sel


def _scan(root: Path, rules: IgnoreRules, max_file_size: int, max_files: int) -> _Selection:
    """Source files under ``root`` in sorted order, within the limits."""
    sel = _Selection([], [], [])
    stack: list[tuple[str, str]] = [(str(root), "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        is_venv = prefix and any(e.name == "pyvenv.cfg" for e in entries)
        if is_venv and not (rules and rules.match(prefix.rstrip("/"), is_dir=True) is False):
            continue
        subdirs: list[tuple[str, str]] = []
        for entry in entries:
            rel = prefix + entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            verdict = rules.match(rel, is_dir) if rules else None
            if verdict is True:
                continue
            if is_dir:
                default_skip = (
                    entry.name.startswith(".")
                    or entry.name in SKIPPED_DIRS
                    or entry.name.endswith(".egg-info")
                )
                if verdict is False or not default_skip:
                    subdirs.append((entry.path, rel + "/"))
                continue
            if verdict is None and (entry.name.startswith(".") or not _is_source(entry.name)):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                try:
                    sel.links.append({"path": rel, "target": os.readlink(entry.path)})
                except OSError:
                    sel.skip(rel, "unreadable link")
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            if st.st_size > max_file_size:
                sel.skip(rel, "size", st.st_size)
                continue
            if len(sel.files) >= max_files:
                sel.truncated = True
                return sel
            sel.files.append((rel, entry.path, st))
        # Pushed in reverse so the walk visits directories in sorted order.
        stack.extend(reversed(subdirs))
    return sel


def collect_code(
    root: Path,
    *,
    git_files: Sequence[str] | None = None,
    cache: HashCache | None = None,
    max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    max_files: int = DEFAULT_MAX_FILES,
    git_max_file_size: int = DEFAULT_GIT_MAX_FILE_SIZE,
) -> tuple[dict[str, Any], list[CodeFile]]:
    """The ``code`` section and its files for the tree at ``root``.

    ``git_files`` (paths relative to ``root`` from ``git ls-files``) selects git mode; without
    it the directory is scanned for source files within ``max_file_size`` bytes per file and
    ``max_files`` files.

    >>> section, files = collect_code(Path("."), cache=HashCache(Path(".labkeep/cache")))
    >>> section["files"][0]  # doctest: +SKIP
    {'path': 'train.py', 'size': 812, 'sha256': '9c1e...', 'mode': '100644'}
    """
    rules = IgnoreRules.load(root)
    if git_files is not None:
        sel = _select_listed(root, git_files, rules, git_max_file_size)
        source = "git"
    else:
        sel = _scan(root, rules, max_file_size, max_files)
        source = "scan"
    hasher = cache if cache is not None else HashCache(None)
    digests = hasher.hash_files([(abspath, st) for _, abspath, st in sel.files])
    files = [
        CodeFile(rel, abspath, digest, st.st_size, _git_mode(st.st_mode))
        for (rel, abspath, st), digest in zip(sel.files, digests, strict=True)
    ]
    files.sort(key=lambda f: f.path)
    section: dict[str, Any] = {
        "source": source,
        "root": str(root),
        "file_count": len(files),
        "total_bytes": sum(f.size for f in files),
        "files": [f.to_dict() for f in files],
        "links": sel.links,
        "skipped": sel.skipped,
        "skipped_count": sel.skipped_count,
        "truncated": sel.truncated,
    }
    if source == "scan":
        section["limits"] = {"max_file_size": max_file_size, "max_files": max_files}
    return section, files
