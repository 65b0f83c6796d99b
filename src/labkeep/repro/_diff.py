"""What differs between two runs: params, arguments, metrics, packages, code, console output.

Each comparison is a pure function of what the store returns, so the command only renders.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from labkeep.repro._source import ManifestEntry, RunSnapshot

State = Literal["same", "changed", "added", "removed"]
#: Files larger than this are compared by hash only.
MAX_TEXT_DIFF_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Row:
    """One key in two runs: ``added`` means only in the second, ``removed`` only in the first."""

    key: str
    a: Any
    b: Any
    state: State


_MISSING = object()


def diff_mappings(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[Row]:
    """Keys of both mappings, sorted, with their state.

    >>> [(r.key, r.state) for r in diff_mappings({"x": 1, "y": 2}, {"y": 3, "z": 4})]
    [('x', 'removed'), ('y', 'changed'), ('z', 'added')]
    """
    rows: list[Row] = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key, _MISSING), b.get(key, _MISSING)
        if x is _MISSING:
            rows.append(Row(key, None, y, "added"))
        elif y is _MISSING:
            rows.append(Row(key, x, None, "removed"))
        else:
            same = json.dumps(x, sort_keys=True) == json.dumps(y, sort_keys=True)
            rows.append(Row(key, x, y, "same" if same else "changed"))
    return rows


def script_args(snapshot: RunSnapshot) -> list[str]:
    """The arguments the run's script received (its ``sys.argv[1:]``), as recorded."""
    argv = snapshot.section("host").get("argv") or []
    return [str(a) for a in argv[1:]]


def diff_argv(a: RunSnapshot, b: RunSnapshot) -> Row:
    """The script arguments of two runs as one ``argv`` row, each side as a shell would quote it.

    Two runs given different positional arguments (``-- a.csv`` and ``-- b.csv``) have the same
    params; this row is where they differ.
    """
    import shlex

    x, y = shlex.join(script_args(a)), shlex.join(script_args(b))
    return Row("argv", x, y, "same" if x == y else "changed")


@dataclass(frozen=True, slots=True)
class CodeDiff:
    """Files changed (by content hash), added and removed between two code manifests."""

    changed: tuple[tuple[ManifestEntry, ManifestEntry], ...]
    added: tuple[ManifestEntry, ...]
    removed: tuple[ManifestEntry, ...]
    unchanged: int

    @property
    def empty(self) -> bool:
        return not (self.changed or self.added or self.removed)


def diff_manifests(a: Sequence[ManifestEntry], b: Sequence[ManifestEntry]) -> CodeDiff:
    """Compare two manifests by path and sha256 (a mode change alone counts as a change)."""
    left = {e.path: e for e in a}
    right = {e.path: e for e in b}
    changed = []
    unchanged = 0
    for path in sorted(set(left) & set(right)):
        x, y = left[path], right[path]
        if x.sha256 != y.sha256 or x.mode != y.mode:
            changed.append((x, y))
        else:
            unchanged += 1
    return CodeDiff(
        tuple(changed),
        tuple(right[p] for p in sorted(set(right) - set(left))),
        tuple(left[p] for p in sorted(set(left) - set(right))),
        unchanged,
    )


def _is_text(data: bytes) -> bool:
    if b"\0" in data[:8192]:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def unified_text_diff(a: bytes | None, b: bytes | None, path: str, labels: tuple[str, str]) -> str:
    """A unified diff of two versions of one file ('' when equal); binary files by hash."""
    a_bytes, b_bytes = a or b"", b or b""
    if a_bytes == b_bytes:
        return ""
    if (
        max(len(a_bytes), len(b_bytes)) > MAX_TEXT_DIFF_BYTES
        or not _is_text(a_bytes)
        or not _is_text(b_bytes)
    ):
        return f"Binary or large file {path} differs\n"
    lines = difflib.unified_diff(
        a_bytes.decode().splitlines(keepends=True),
        b_bytes.decode().splitlines(keepends=True),
        fromfile=f"{labels[0]}/{path}" if a is not None else "/dev/null",
        tofile=f"{labels[1]}/{path}" if b is not None else "/dev/null",
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def notebook_diff_text(a: bytes | None, b: bytes | None, path: str, labels: tuple[str, str]) -> str:
    """A cell-by-cell diff of two notebook versions with nbdime's pretty printer (plain text)."""
    import io

    import nbformat
    from nbdime import diff_notebooks
    from nbdime.prettyprint import PrettyPrintConfig, pretty_print_diff

    def read(data: bytes | None) -> Any:
        if data is None:
            return nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
        return nbformat.reads(data.decode("utf-8"), as_version=4)  # type: ignore[no-untyped-call]

    nb_a, nb_b = read(a), read(b)
    diff = diff_notebooks(nb_a, nb_b)
    if not diff:
        return ""
    out = io.StringIO()
    out.write(f"--- {labels[0]}/{path}\n+++ {labels[1]}/{path}\n")
    pretty_print_diff(nb_a, diff, "", PrettyPrintConfig(out=out, use_color=False))
    return out.getvalue()


def file_diff(
    a: RunSnapshot,
    b: RunSnapshot,
    path: str,
    entries: tuple[ManifestEntry | None, ManifestEntry | None],
) -> str:
    """The diff of one code file between two snapshots (notebooks cell by cell)."""
    x, y = entries
    a_bytes = a.file_bytes(x) if x is not None else None
    b_bytes = b.file_bytes(y) if y is not None else None
    labels = (f"run{a.number}", f"run{b.number}")
    if path.lower().endswith(".ipynb"):
        try:
            return notebook_diff_text(a_bytes, b_bytes, path, labels)
        except ImportError:
            pass  # nbdime is not installed: a plain text diff of the JSON still helps
        except Exception:  # not a readable notebook: fall back to text
            pass
    text = unified_text_diff(a_bytes, b_bytes, path, labels)
    if not text and x is not None and y is not None and x.mode != y.mode:
        text = f"mode of {path} changed: {x.mode} -> {y.mode}\n"
    return text


def output_diff(a_lines: Sequence[str], b_lines: Sequence[str], labels: tuple[str, str]) -> str:
    """A unified diff of two runs' console output ('' when equal)."""
    return "\n".join(
        difflib.unified_diff(list(a_lines), list(b_lines), labels[0], labels[1], lineterm="")
    )
