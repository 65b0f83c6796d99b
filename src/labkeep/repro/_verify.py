"""Did a rerun reproduce its original? A pure comparison of two run records, and of their
child runs pairwise (a script that calls ``labkeep.init()`` once per model)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from labkeep.entities import Artifact, RunRecord
from labkeep.errors import LabkeepError
from labkeep.repro._output_verdict import OutputFilter, notebook_difference

#: Metric keys that measure the machine, not the computation: never compared.
SYSTEM_PREFIX = "sys/"


@dataclass(frozen=True, slots=True)
class VerdictItem:
    """One compared item: ``kind`` is ``status``, ``metric``, ``output``, ``input``, or
    ``run`` for a child run found on one side only. ``child`` names the pair of child runs
    the item belongs to (``"child 2 (run 3 → 7, iris)"``), empty for the run itself."""

    kind: str
    name: str
    original: str | None
    new: str | None
    reproduced: bool
    why: str = ""
    child: str = ""


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

    @property
    def differing_children(self) -> list[str]:
        """The child runs (their labels) with at least one item that did not reproduce."""
        return list(dict.fromkeys(item.child for item in self.differing if item.child))


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


def compare_with_children(
    original: RunRecord,
    new: RunRecord,
    original_children: Sequence[RunRecord] = (),
    new_children: Sequence[RunRecord] = (),
    *,
    rtol: float = 0.0,
    atol: float = 0.0,
    original_inputs: Sequence[Mapping[str, Any]] = (),
    new_inputs: Sequence[Mapping[str, Any]] = (),
    ignore: Sequence[str] = (),
    volatile: Iterable[str] = (),
    read_blob: Callable[[str], bytes] | None = None,
) -> Verdict:
    """:func:`compare_runs` of the two runs, then of their child runs pairwise: a child is
    paired with the rerun's first unpaired child of the same experiment and config, else by
    order; one without a partner differs. The items of a pair carry its label in ``child``.
    An original without children (a script run without ``labkeep run`` made separate runs)
    leaves the rerun's children out: nothing recorded says what they should match.

    >>> compare_with_children(run1, run5, [run2, run3], [run6, run7]).differing_children  # doctest: +SKIP
    ['child 2 (run 3 → 7, iris)']
    """
    volatile = tuple(volatile)
    top = compare_runs(
        original,
        new,
        rtol=rtol,
        atol=atol,
        original_inputs=original_inputs,
        new_inputs=new_inputs,
        ignore=ignore,
        volatile=volatile,
        read_blob=read_blob,
    )
    items = list(top.items)
    skipped = list(top.skipped)
    if not original_children:
        return Verdict(tuple(items), tuple(skipped))
    for index, (a, b) in enumerate(pair_children(original_children, new_children), 1):
        if a is None or b is None:
            items.append(_unpaired(index, a, b))
            continue
        label = f"child {index} (run {a.info.number} → {b.info.number}, {a.info.experiment})"
        pair = compare_runs(
            a, b, rtol=rtol, atol=atol, ignore=ignore, volatile=volatile, read_blob=read_blob
        )
        items.extend(replace(item, child=label) for item in pair.items)
        skipped.extend((f"{label}: {path}", why) for path, why in pair.skipped)
    return Verdict(tuple(items), tuple(skipped))


def _unpaired(index: int, a: RunRecord | None, b: RunRecord | None) -> VerdictItem:
    experiment = next(r.info.experiment for r in (a, b) if r is not None)
    return VerdictItem(
        "run",
        f"child {index} ({experiment})",
        None if a is None else f"run {a.info.number}",
        None if b is None else f"run {b.info.number}",
        False,
        "only in the original" if b is None else "only in the rerun",
    )


def pair_children(
    original: Sequence[RunRecord], new: Sequence[RunRecord]
) -> list[tuple[RunRecord | None, RunRecord | None]]:
    """Pairs of child runs, in the original's order, the rerun's unpaired ones last: same
    experiment and config first (children made in another order still pair), then by order."""
    free = list(range(len(new)))
    partner: dict[int, int] = {}
    for i, a in enumerate(original):
        key = _child_key(a)
        match = next((k for k in free if _child_key(new[k]) == key), None)
        if match is not None:
            partner[i] = match
            free.remove(match)
    for i in range(len(original)):
        if i not in partner and free:
            partner[i] = free.pop(0)
    pairs: list[tuple[RunRecord | None, RunRecord | None]] = [
        (a, new[partner[i]] if i in partner else None) for i, a in enumerate(original)
    ]
    pairs.extend((None, new[k]) for k in free)
    return pairs


def _child_key(record: RunRecord) -> tuple[str, str]:
    params = json.dumps(record.params, sort_keys=True, default=repr, allow_nan=True)
    return record.info.experiment, params


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
