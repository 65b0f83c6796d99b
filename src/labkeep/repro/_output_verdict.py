"""Which output files a verdict compares, and how: notebooks by their cells, not their bytes.

An executed notebook changes on every run even when its computation does not: nbclient writes
execution timestamps into each cell's metadata, and kernels add ids. Two notebooks match when
their cells have the same types, sources and outputs; metadata, execution counts, cell ids and
widget model ids (random per kernel) are left out, and consecutive stream outputs are joined,
because the kernel may split one ``print`` loop into several messages.

Files left out of the verdict entirely: those another tracker writes beside a run (their
databases, run directories and event files hold timestamps and ids by design), artifacts the run
logged as volatile (``run.log_artifact(path, volatile=True)``), and ``--ignore`` patterns.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from labkeep.capture import IgnoreRules

#: What MLflow, W&B, Lightning and TensorBoard write (gitignore syntax, any depth).
OTHER_TRACKERS = (
    "mlflow.db",
    "mlruns/",
    "mlartifacts/",
    "wandb/",
    "lightning_logs/",
    "events.out.tfevents.*",
)
_OTHER_TRACKER_RULES = IgnoreRules.parse("\n".join(OTHER_TRACKERS))
#: Output mime types whose content is random per kernel.
_VOLATILE_MIME = frozenset(["application/vnd.jupyter.widget-view+json"])

#: Why an output was left out: volatile, matched by an ``--ignore`` pattern, another tracker's.
VOLATILE, IGNORED, OTHER_TRACKER = "volatile", "ignored", "other tracker"


class OutputFilter:
    """Decides which output artifacts are left out of a verdict, and why.

    ``ignore`` are gitignore-syntax patterns (``*.log``, ``logs/``); ``volatile`` are artifact
    names a run marked volatile (a name ending in ``/`` covers a directory).

    >>> OutputFilter(["*.log"], ["stamp.txt"]).reason("stamp.txt")
    'volatile'
    """

    def __init__(self, ignore: Sequence[str] = (), volatile: Iterable[str] = ()) -> None:
        self._ignore = IgnoreRules.parse("\n".join(ignore))
        self._volatile = frozenset(volatile)
        self._volatile_dirs = tuple(v for v in self._volatile if v.endswith("/"))

    def reason(self, path: str) -> str | None:
        """Why ``path`` is not compared, or None when it is."""
        if path in self._volatile or path.startswith(self._volatile_dirs):
            return VOLATILE
        if self._ignore.is_ignored(path):
            return IGNORED
        if _OTHER_TRACKER_RULES.is_ignored(path):
            return OTHER_TRACKER
        return None


def volatile_names(snapshot: Mapping[str, Any] | None) -> list[str]:
    """The artifact names a run marked volatile, from its snapshot's ``volatile`` list."""
    names = (snapshot or {}).get("volatile")
    return [str(n) for n in names] if isinstance(names, list) else []


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _outputs(outputs: Any) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    for output in outputs if isinstance(outputs, list) else []:
        if not isinstance(output, dict):
            continue
        kind = output.get("output_type")
        if kind == "stream":
            name, text = output.get("name"), _text(output.get("text", ""))
            last = result[-1] if result else None
            if last is not None and last["output_type"] == "stream" and last["name"] == name:
                last["text"] += text
            else:
                result.append({"output_type": "stream", "name": name, "text": text})
        elif kind in ("execute_result", "display_data"):
            raw = output.get("data")
            data: dict[str, Any] = raw if isinstance(raw, dict) else {}
            result.append(
                {
                    "output_type": kind,
                    "data": {k: _text(v) for k, v in data.items() if k not in _VOLATILE_MIME},
                }
            )
        else:
            kept = {k: v for k, v in output.items() if k not in ("metadata", "transient")}
            result.append(kept)
    return result


def notebook_cells(data: bytes) -> list[dict[str, Any]] | None:
    """The cells of a notebook as compared (type, source, outputs); None if it is not one."""
    try:
        nb = json.loads(data)
    except ValueError:
        return None
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        return None
    return [
        {
            "cell_type": cell.get("cell_type"),
            "source": _text(cell.get("source", "")),
            "outputs": _outputs(cell.get("outputs")),
        }
        for cell in cells
        if isinstance(cell, dict)
    ]


def notebook_difference(a: bytes, b: bytes) -> str | None:
    """How two executed notebooks differ in their cells, or None when they do not.

    Raises ValueError when either is not a notebook.

    >>> notebook_difference(executed_monday, executed_tuesday) is None  # doctest: +SKIP
    True
    """
    cells_a, cells_b = notebook_cells(a), notebook_cells(b)
    if cells_a is None or cells_b is None:
        raise ValueError("not a notebook")
    if len(cells_a) != len(cells_b):
        return f"{len(cells_a)} cells vs {len(cells_b)}"
    for index, (x, y) in enumerate(zip(cells_a, cells_b, strict=True), start=1):
        if x["cell_type"] != y["cell_type"] or x["source"] != y["source"]:
            return f"cell {index}'s source differs"
        if x["outputs"] != y["outputs"]:
            return f"cell {index}'s outputs differ"
    return None
