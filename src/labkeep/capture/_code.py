"""The code snapshot: which files reproduce a run, with their content hashes.

Code is source, not what the source produced. The rules, the same with and without git:

- Files git tracks are all code (up to ``git_max_file_size``): the commit already names them,
  and a script may read a committed data file or image.
- Any other file is code when it is source: a known source type (:data:`SOURCE_SUFFIXES`,
  :data:`SOURCE_NAMES`), not hidden, text (no NUL byte in its first 8,000 bytes, git's own
  test), at most ``max_file_size``, and outside the directories tools write into
  (:data:`SKIPPED_DIRS`, hidden ones, virtual environments). Checkpoints, pickles, databases
  and ``mlruns/`` or ``wandb/`` trees are outputs or inputs, never code.
- ``.gitignore`` files are honoured: by git in a repository, by the scan without one.
- ``.labkeepignore`` (gitignore syntax) adjusts both: a pattern leaves files out (tracked ones
  too), ``!pattern`` brings back what the defaults leave out (up to ``git_max_file_size``).
- The run's entry point is always code, whatever its name or size (a rerun needs it).

Files left out by type, size or content are listed in ``skipped`` with the reason.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkeep.capture._hashcache import HashCache
from labkeep.capture._ignore import IgnoreRules

DEFAULT_MAX_FILE_SIZE = 1024 * 1024
DEFAULT_MAX_FILES = 2000
# Tracked files, files .labkeepignore brings back and the entry point are kept up to this size
# (datasets and checkpoints committed by mistake would otherwise be copied on every run).
DEFAULT_GIT_MAX_FILE_SIZE = 64 * 1024 * 1024
MAX_LISTED_SKIPPED = 100
# git's binary test: a NUL byte among the first 8,000 bytes.
BINARY_SNIFF_BYTES = 8000

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
        "Procfile",
        "MANIFEST.in",
        "requirements.in",
        "constraints.in",
    ]
)
# Directories whose untracked files are never code unless .labkeepignore re-includes them:
# caches, builds, and where MLflow, W&B, Lightning and Hydra write. Hidden directories (.git,
# .venv, ...) and virtual environments (holding pyvenv.cfg) are also skipped.
SKIPPED_DIRS = frozenset(
    ["__pycache__", "node_modules", "site-packages", "build", "dist", "wandb", "mlruns",
     "mlartifacts", "outputs", "multirun", "lightning_logs", "checkpoints"]
)  # fmt: skip


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

    def add_link(self, rel: str, abspath: str) -> None:
        try:
            self.links.append({"path": rel, "target": os.readlink(abspath)})
        except OSError:
            self.skip(rel, "unreadable link")


def _in_store(rel: str) -> bool:
    """A labkeep store inside the tree is never code (its journals alone are large)."""
    return rel.startswith(".labkeep/") or "/.labkeep/" in rel


def _looks_binary(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return b"\0" in f.read(BINARY_SNIFF_BYTES)
    except OSError:
        return True  # unreadable: it cannot be stored either


def _skipped_dir_name(name: str) -> bool:
    return name.startswith(".") or name in SKIPPED_DIRS or name.endswith(".egg-info")


@dataclass(slots=True)
class _Judge:
    """Applies the rules of the module docstring to one file at a time."""

    rules: IgnoreRules
    keep: frozenset[str]
    max_file_size: int
    explicit_max_file_size: int

    def explicit(self, rel: str) -> bool:
        """The entry point, or a file ``.labkeepignore`` brings back by name."""
        return rel in self.keep or (bool(self.rules) and self.rules.match(rel) is False)

    def select(
        self, sel: _Selection, rel: str, abspath: str, st: os.stat_result, source: bool
    ) -> None:
        """Add a regular file to ``sel`` or record why not. ``source``: already known to be
        code by origin (tracked by git); else its name, size and content decide."""
        explicit = self.explicit(rel)
        if not (source or explicit):
            name = rel.rpartition("/")[2]
            if name.startswith("."):
                return
            if not _is_source(name):
                sel.skip(rel, "not source", st.st_size)
                return
        limit = self.explicit_max_file_size if source or explicit else self.max_file_size
        if st.st_size > limit:
            sel.skip(rel, "size", st.st_size)
            return
        if not (source or explicit) and _looks_binary(abspath):
            sel.skip(rel, "binary")
            return
        sel.files.append((rel, abspath, st))


def _select_listed(root: Path, listed: Mapping[str, bool], judge: _Judge) -> _Selection:
    """Git mode: ``listed`` maps each path git does not ignore to whether git tracks it."""
    sel = _Selection([], [], [])
    base = str(root)
    rules = judge.rules
    dir_skipped: dict[str, bool] = {}

    def in_skipped_dir(rel: str) -> bool:
        parts = rel.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            cached = dir_skipped.get(prefix)
            if cached is None:
                default = _skipped_dir_name(parts[depth - 1]) or os.path.isfile(
                    os.path.join(base, prefix, "pyvenv.cfg")
                )
                cached = default and not (rules and rules.match(prefix, is_dir=True) is False)
                dir_skipped[prefix] = cached
            if cached:
                return True
        return False

    for rel, tracked in listed.items():
        if _in_store(rel) or (rules and rules.is_ignored(rel)):
            continue
        if not tracked and rel not in judge.keep and in_skipped_dir(rel):
            continue
        abspath = os.path.join(base, rel)
        try:
            st = os.lstat(abspath)
        except OSError:
            continue  # deleted in the work tree; the diff records it
        if stat.S_ISLNK(st.st_mode):
            sel.add_link(rel, abspath)
        elif stat.S_ISREG(st.st_mode):  # not a submodule or other non-file entry
            judge.select(sel, rel, abspath, st, source=tracked)
    return sel


def _gitignored(gitignores: Sequence[tuple[str, IgnoreRules]], rel: str, is_dir: bool) -> bool:
    """Whether the ``.gitignore`` files met on the way down ignore ``rel`` (deepest wins)."""
    result: bool | None = None
    for prefix, rules in gitignores:
        if rel.startswith(prefix):
            verdict = rules.match(rel[len(prefix) :], is_dir)
            if verdict is not None:
                result = verdict
    return result is True


def _scan(root: Path, judge: _Judge, max_files: int) -> _Selection:
    """Source files under ``root`` in sorted order, within the limits."""
    sel = _Selection([], [], [])
    rules = judge.rules
    Frame = tuple[str, str, tuple[tuple[str, IgnoreRules], ...]]
    stack: list[Frame] = [(str(root), "", ())]
    while stack:
        directory, prefix, gitignores = stack.pop()
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        is_venv = prefix and any(e.name == "pyvenv.cfg" for e in entries)
        if is_venv and not (rules and rules.match(prefix.rstrip("/"), is_dir=True) is False):
            continue
        if any(e.name == ".gitignore" for e in entries):
            loaded = IgnoreRules.load(Path(directory), ".gitignore")
            if loaded:
                gitignores = (*gitignores, (prefix, loaded))
        subdirs: list[Frame] = []
        for entry in entries:
            rel = prefix + entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            verdict = rules.match(rel, is_dir) if rules else None
            if verdict is True or (gitignores and _gitignored(gitignores, rel, is_dir)):
                continue
            if is_dir:
                if verdict is False or not _skipped_dir_name(entry.name):
                    subdirs.append((entry.path, rel + "/", gitignores))
                continue
            if (
                verdict is None
                and rel not in judge.keep
                and (entry.name.startswith(".") or not _is_source(entry.name))
            ):
                continue  # data and outputs: too many to list
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                sel.add_link(rel, entry.path)
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            if len(sel.files) >= max_files:
                sel.truncated = True
                return sel
            judge.select(sel, rel, entry.path, st, source=False)
        # Pushed in reverse so the walk visits directories in sorted order.
        stack.extend(reversed(subdirs))
    return sel


def _add_kept(root: Path, sel: _Selection, judge: _Judge) -> None:
    """The entry point, when the selection missed it (git ignores it, a skipped directory)."""
    have = {rel for rel, _, _ in sel.files} | {link["path"] for link in sel.links}
    for rel in sorted(judge.keep - have):
        if judge.rules and judge.rules.is_ignored(rel):
            continue  # the user's own .labkeepignore has the last word
        abspath = os.path.join(str(root), rel)
        try:
            st = os.lstat(abspath)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and not any(s["path"] == rel for s in sel.skipped):
            judge.select(sel, rel, abspath, st, source=True)


def collect_code(
    root: Path,
    *,
    git_files: Sequence[str] | Mapping[str, bool] | None = None,
    cache: HashCache | None = None,
    max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    max_files: int = DEFAULT_MAX_FILES,
    git_max_file_size: int = DEFAULT_GIT_MAX_FILE_SIZE,
    keep: Collection[str] = (),
) -> tuple[dict[str, Any], list[CodeFile]]:
    """The ``code`` section and its files for the tree at ``root``.

    ``git_files`` (paths relative to ``root`` from ``git ls-files``, mapped to whether git
    tracks them; a plain list means all tracked) selects git mode; without it the directory is
    scanned. ``keep`` (paths relative to ``root``: the entry point) are code whatever their
    type. See the module docstring for the rules.

    >>> section, files = collect_code(Path("."), cache=HashCache(Path(".labkeep/cache")))
    >>> section["files"][0]  # doctest: +SKIP
    {'path': 'train.py', 'size': 812, 'sha256': '9c1e...', 'mode': '100644'}
    """
    judge = _Judge(IgnoreRules.load(root), frozenset(keep), max_file_size, git_max_file_size)
    if git_files is not None:
        listed = git_files if isinstance(git_files, Mapping) else dict.fromkeys(git_files, True)
        sel = _select_listed(root, listed, judge)
        source = "git"
    else:
        sel = _scan(root, judge, max_files)
        source = "scan"
    if judge.keep and not sel.truncated:
        _add_kept(root, sel, judge)
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
