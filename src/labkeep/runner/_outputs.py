"""Which files a run created or changed in its working directory.

Before the script starts, the runner records the size and modification time of every file
under the working directory; afterwards it compares, and what is new or different becomes an
artifact of the run, so the next run overwriting ``model.pkl`` loses nothing. Files ignored by
git are *not* skipped: checkpoints and plots usually are, and they are what people want kept.
Version-control metadata, labkeep's store, virtual environments and tool caches are skipped.
The scan is bounded: a directory tree with more than ``max_entries`` entries is not compared
at all (the caller says so), rather than compared in part.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

#: Directory names never scanned for outputs.
SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", ".labkeep", "__pycache__", "node_modules", ".venv", "venv",
     ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints",
     ".idea", ".vscode", ".bench", ".cache"}
)  # fmt: skip
#: What other trackers write beside a script (their own stores): left out of a scan with
#: ``trackers=False``, as ``labkeep run`` does when it records the script's tracker calls
#: itself. Otherwise they are outputs, which ``rerun --verify`` leaves out of its verdict.
TRACKER_DIRS = frozenset({"mlruns", "mlartifacts", "wandb"})
TRACKER_FILES = frozenset({"mlflow.db", "mlflow.db-journal", "mlflow.db-wal", "mlflow.db-shm"})
TRACKER_FILE_PREFIXES = ("events.out.tfevents.",)

#: Entries (files and directories) a scan looks at before it gives up.
MAX_ENTRIES = 50_000


@dataclass
class TreeState:
    """Size and mtime of each file under ``root``, by POSIX relative path."""

    root: Path
    files: dict[str, tuple[int, int]] = field(default_factory=dict)
    complete: bool = True


def scan_tree(
    root: Path,
    skip: Iterable[Path] = (),
    max_entries: int = MAX_ENTRIES,
    *,
    trackers: bool = True,
) -> TreeState:
    """Record the files under ``root``, leaving out :data:`SKIP_DIRS` (and, with
    ``trackers=False``, other trackers' stores: :data:`TRACKER_DIRS`, :data:`TRACKER_FILES`,
    TensorBoard event files), virtual environments
    (a directory holding ``pyvenv.cfg``) and the directories in ``skip``.

    ``complete`` is false when the tree had more than ``max_entries`` entries.
    """
    state = TreeState(root)
    # Entries are compared by path: the walk starts at the resolved root and never follows
    # symlinked directories, so resolving ``skip`` once is enough.
    skipped = {os.path.realpath(p) for p in skip}
    skip_dirs = SKIP_DIRS if trackers else SKIP_DIRS | TRACKER_DIRS
    skip_files = frozenset() if trackers else TRACKER_FILES
    skip_prefixes = () if trackers else TRACKER_FILE_PREFIXES
    seen = 0
    stack_root = os.path.realpath(root)
    stack = [stack_root]
    while stack:
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        if any(e.name == "pyvenv.cfg" for e in entries) and directory != stack_root:
            continue
        for entry in entries:
            seen += 1
            if seen > max_entries:
                state.complete = False
                state.files.clear()
                return state
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in skip_dirs and entry.path not in skipped:
                        stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    if entry.name in skip_files or entry.name.startswith(skip_prefixes):
                        continue
                    st = entry.stat(follow_symlinks=False)
                    rel = entry.path[len(stack_root) + 1 :].replace(os.sep, "/")
                    state.files[rel] = (st.st_size, st.st_mtime_ns)
            except OSError:
                continue  # vanished while we looked
    return state


def changed_files(before: TreeState, after: TreeState) -> list[str]:
    """Relative paths of the files that are new in ``after`` or differ in size or mtime."""
    if not (before.complete and after.complete):
        return []
    old = before.files
    return sorted(path for path, stat in after.files.items() if old.get(path) != stat)
