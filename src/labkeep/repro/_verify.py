"""Did a rerun reproduce its original? A pure comparison of two run records."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labkeep.entities import Artifact, RunRecord
from labkeep.errors import LabkeepError
from labkeep.repro._output_verdict import OutputFilter, notebook_difference

#: Metric keys that measure the machine, not the computation: never compared.
SYSTEM_PREFIX = "sys/"


@dataclass(frozen=True, slots=True)
class VerdictItem:
    """One compared item: ``kind`` is ``status``, ``metric``, ``output`` or ``input``."""

    kind: str
    name: str
    original: str | None
    new: str | None
    reproduced: bool
    why: str = ""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The compared items, and the outputs left out as ``(path, why)``: ``volatile``,
    ``ignored`` (an ignore pattern) or ``other tracker`` (files MLflow, W&B… write)."""

    items: tuple[VerdictItem, ...]
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def reproduced(self) -> bool:
        return all(item.reproduced for item in self.items)

    @property
    def differing(self) -> list[VerdictItem]:
        return [item for item in self.items if not item.reproduced]


def values_match(a: float, b: float, rtol: float = 0.0, atol: float = 0.0) -> bool:
    """``a`` equals ``b`` within ``atol + rtol * |a|`` (exact by default); NaN matches NaN.

    >>> values_match(1.0, 1.0 + 1e-12), values_match(1.0, 1.0 + 1e-12, rtol=1e-9)
    (False, True)
    """
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= atol + rtol * abs(a)


def _num(value: float | None) -> str | None:
    return None if value is None else repr(value)


def compare_runs(
    original: RunRecord,
    new: RunRecord,
    *,
    rtol: float = 0.0,
    atol: float = 0.0,
    original_inputs: Sequence[Mapping[str, Any]] = (),
    new_inputs: Sequence[Mapping[str, Any]] = (),
    ignore: Sequence[str] = (),
    volatile: Iterable[str] = (),
    read_blob: Callable[[str], bytes] | None = None,
) -> Verdict:
    """Compare ``new`` with ``original``: final status, every metric's last value (system
    metrics excepted), output artifacts by content hash, and the inputs both snapshots
    fingerprinted (same data is part of reproducing).

    Outputs matching ``ignore`` (gitignore-syntax patterns), named in ``volatile`` (what the
    runs marked volatile) or written by other trackers are left out and listed in ``skipped``.
    With ``read_blob`` (sha256 to bytes), executed notebooks whose bytes differ are compared
    by their cells' sources and outputs instead.

    >>> compare_runs(run7, run9, rtol=1e-6).reproduced  # doctest: +SKIP
    True
    """
    if rtol < 0 or atol < 0:
        raise ValueError("rtol and atol must not be negative")
    items: list[VerdictItem] = []
    a_status, b_status = original.info.status.value, new.info.status.value
    items.append(
        VerdictItem(
            "status",
            "status",
            a_status,
            b_status,
            a_status == b_status,
            "" if a_status == b_status else "the runs ended differently",
        )
    )
    keys = sorted(
        k for k in set(original.metrics) | set(new.metrics) if not k.startswith(SYSTEM_PREFIX)
    )
    for key in keys:
        a, b = original.metrics.get(key), new.metrics.get(key)
        if a is None or b is None:
            items.append(
                VerdictItem(
                    "metric",
                    key,
                    _num(a.last) if a else None,
                    _num(b.last) if b else None,
                    False,
                    "only in the original" if b is None else "only in the rerun",
                )
            )
            continue
        same = values_match(a.last, b.last, rtol, atol)
        why = ""
        if not same:
            why = (
                f"differs by {abs(a.last - b.last):.3g}"
                if math.isfinite(a.last - b.last)
                else "differs"
            )
        items.append(VerdictItem("metric", key, _num(a.last), _num(b.last), same, why))
    skip = OutputFilter(ignore, volatile)
    skipped: dict[str, str] = {}
    outputs: list[dict[str, Artifact]] = [{}, {}]
    for side, record in zip(outputs, (original, new), strict=True):
        for artifact in record.artifacts:
            if artifact.kind != "output":
                continue
            reason = skip.reason(artifact.path)
            if reason is None:
                side[artifact.path] = artifact
            else:
                skipped[artifact.path] = reason
    a_out, b_out = outputs
    for path in sorted(set(a_out) | set(b_out)):
        x, y = a_out.get(path), b_out.get(path)
        if x is None or y is None:
            items.append(
                VerdictItem(
                    "output",
                    path,
                    x.sha256[:12] if x else None,
                    y.sha256[:12] if y else None,
                    False,
                    "only in the original" if y is None else "only in the rerun",
                )
            )
            continue
        same, why = _same_output(x, y, read_blob)
        items.append(VerdictItem("output", path, x.sha256[:12], y.sha256[:12], same, why))
    new_by_path = {str(i.get("path")): i for i in new_inputs}
    for item in original_inputs:
        path = str(item.get("path"))
        then = item.get("sha256")
        other = new_by_path.get(path)
        if then is None or other is None:
            continue
        now = other.get("sha256")
        same = then == now
        items.append(
            VerdictItem(
                "input",
                path,
                str(then)[:12],
                str(now)[:12] if now else None,
                same,
                "" if same else "the rerun read other data",
            )
        )
    return Verdict(tuple(items), tuple(sorted(skipped.items())))


def _same_output(
    x: Artifact, y: Artifact, read_blob: Callable[[str], bytes] | None
) -> tuple[bool, str]:
    """Whether two versions of one output match, and why not: by hash, notebooks by cells."""
    if x.sha256 == y.sha256:
        return True, ""
    if read_blob is not None and x.path.lower().endswith(".ipynb"):
        try:
            difference = notebook_difference(read_blob(x.sha256), read_blob(y.sha256))
        except (OSError, ValueError, LabkeepError):
            pass  # missing, unreadable or not a notebook: the bytes decide
        else:
            if difference is None:
                return True, "same cells and outputs"
            return False, difference
    return False, f"content differs ({x.size} vs {y.size} bytes)"
