"""Notebook flags, papermill's way: the cell tagged ``parameters``, else literal assignments.

Detection reads the ``.ipynb`` as plain JSON (no nbformat import) and parses code cells with
:mod:`ast`; IPython magics (``%time``, ``!pip``) are blanked first so the cells still parse.
:func:`write_notebook_with_overrides` makes the per-run copy that a notebook run executes.
"""

from __future__ import annotations

import ast
import copy
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from labkeep.errors import InvalidInputError
from labkeep.runner._bootstrap import first_assignments
from labkeep.runner._flag import Flag, FlagSet, FlagValue
from labkeep.runner._script_globals import global_flags

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"


def read_notebook(path: Path, data: bytes | None = None) -> dict[str, Any]:
    try:
        raw = path.read_bytes() if data is None else data
        notebook = json.loads(raw)
    except OSError as exc:
        raise InvalidInputError(f"cannot read notebook {path}: {exc.strerror}") from None
    except ValueError:
        raise InvalidInputError(f"{path.name} is not a notebook (invalid JSON)") from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise InvalidInputError(
            f"{path.name} is not a version 4 notebook; open and save it in Jupyter"
        )
    return notebook


def _cell_source(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _is_code(cell: Mapping[str, Any]) -> bool:
    return cell.get("cell_type") == "code"


def _tags(cell: Mapping[str, Any]) -> list[str]:
    tags = cell.get("metadata", {}).get("tags", [])
    return [str(t) for t in tags] if isinstance(tags, list) else []


def _parse_cell(source: str) -> ast.Module | None:
    """The cell's AST with magic lines blanked (line and column numbers kept), or ``None``."""
    if source.lstrip().startswith("%%"):
        return None  # a cell magic: the whole cell is not Python
    lines = source.split("\n")
    cleaned = [
        "" if line.lstrip().startswith(("%", "!")) or line.rstrip().endswith("?") else line
        for line in lines
    ]
    try:
        return ast.parse("\n".join(cleaned))
    except SyntaxError:
        return None


def parameters_cell_index(notebook: Mapping[str, Any]) -> int | None:
    for index, cell in enumerate(notebook["cells"]):
        if _is_code(cell) and PARAMETERS_TAG in _tags(cell):
            return index
    return None


def detect_notebook_flags(path: Path, data: bytes | None = None) -> FlagSet:
    """Flags of a notebook: its ``parameters`` cell, or literal assignments across code cells."""
    notebook = read_notebook(path, data)
    cells = notebook["cells"]
    params_index = parameters_cell_index(notebook)
    indices = [params_index] if params_index is not None else range(len(cells))
    flags: dict[str, Flag] = {}
    for index in indices:
        cell = cells[index]
        if not _is_code(cell):
            continue
        source = _cell_source(cell)
        tree = _parse_cell(source)
        if tree is None:
            continue
        # A name assigned in an earlier cell keeps that first assignment, flag or not.
        assigned = set(first_assignments(tree))
        for flag in global_flags(tree, source.split("\n")):
            flags.setdefault(flag.name, flag)
        for name in assigned:
            flags.setdefault(name, _SHADOW)
    found = tuple(flag for flag in flags.values() if flag is not _SHADOW)
    return FlagSet(source=path, interface="notebook", flags=found)


_SHADOW = Flag(name="", kind="global", type="none")


def python_literal(value: FlagValue) -> str:
    """Source text for a flag value (``float('nan')`` where ``repr`` would not parse)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    if isinstance(value, list):
        return "[" + ", ".join(python_literal(v) for v in value) + "]"
    return repr(value)


def write_notebook_with_overrides(
    source: Path, dest: Path, values: Mapping[str, FlagValue]
) -> Path:
    """Write a copy of notebook ``source`` to ``dest`` that runs with ``values``.

    With a ``parameters`` cell, a cell tagged ``injected-parameters`` is added right after it
    (papermill's convention, so papermill users see what they expect). Without one, the value
    of each name's first assignment is replaced in its cell's text.
    """
    notebook = copy.deepcopy(read_notebook(source))
    cells: list[dict[str, Any]] = notebook["cells"]
    if values:
        params_index = parameters_cell_index(notebook)
        if params_index is not None:
            text = "# Parameters set by labkeep\n" + "\n".join(
                f"{name} = {python_literal(value)}" for name, value in values.items()
            )
            cells.insert(params_index + 1, _code_cell(text, notebook))
        else:
            _replace_first_assignments(cells, values, source.name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return dest


def _code_cell(text: str, notebook: Mapping[str, Any]) -> dict[str, Any]:
    cell: dict[str, Any] = {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {"tags": [INJECTED_TAG]},
        "outputs": [],
        "source": text.splitlines(keepends=True),
    }
    if (notebook.get("nbformat"), notebook.get("nbformat_minor", 0)) >= (4, 5):
        import uuid

        cell["id"] = uuid.uuid4().hex[:8]  # nbformat 4.5 requires cell ids
    return cell


def _replace_first_assignments(
    cells: list[dict[str, Any]], values: Mapping[str, FlagValue], name: str
) -> None:
    pending = dict(values)
    for cell in cells:
        if not pending or not _is_code(cell):
            continue
        source = _cell_source(cell)
        tree = _parse_cell(source)
        if tree is None:
            continue
        edits: list[tuple[ast.expr, FlagValue]] = []
        for var, stmt in first_assignments(tree).items():
            if var not in pending:
                continue
            value = pending.pop(var)
            if stmt.value is not None:
                edits.append((stmt.value, value))
        if edits:
            cell["source"] = _apply_edits(source, edits).splitlines(keepends=True)
    if pending:
        missing = ", ".join(sorted(pending))
        raise InvalidInputError(f"{name} assigns no {missing} at top level; check the flag names")


def _apply_edits(source: str, edits: list[tuple[ast.expr, FlagValue]]) -> str:
    lines = source.split("\n")
    # Last edit first, so earlier positions stay valid; ast columns are UTF-8 byte offsets.
    for node, value in sorted(edits, key=lambda e: (e[0].lineno, e[0].col_offset), reverse=True):
        assert node.end_lineno is not None and node.end_col_offset is not None
        first = lines[node.lineno - 1].encode()
        last = lines[node.end_lineno - 1].encode()
        head = first[: node.col_offset].decode()
        tail = last[node.end_col_offset :].decode()
        lines[node.lineno - 1 : node.end_lineno] = [head + python_literal(value) + tail]
    return "\n".join(lines)
