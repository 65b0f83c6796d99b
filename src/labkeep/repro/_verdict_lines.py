"""What ``labkeep rerun`` says, as data: the drift since the original run, why a rerun is
refused, and the verdict on whether the rerun reproduced it.

The decisions are in :mod:`labkeep.repro._drift` and :mod:`labkeep.repro._verify`; this module
words them. The command line formats the rows as tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from labkeep.repro._drift import DriftItem
from labkeep.repro._styled import Line, Span
from labkeep.repro._verify import Verdict, VerdictItem

#: How each drift severity is marked: ``block`` stops the rerun.
DRIFT_MARKS = {"block": Span("✗", "bad"), "warn": Span("!", "warn"), "note": Span("·", "dim")}
#: Outputs named in the "not compared" line; the rest are counted.
TOP_SKIPPED = 12
_SKIP_REASONS = {"ignored": "--ignore", "other tracker": "another tracker's"}


@dataclass(frozen=True, slots=True)
class DriftRow:
    """One drift item as a row: its mark, what drifted, then, now and why."""

    mark: Span
    what: str
    then: Span
    now: Span
    why: str


@dataclass(frozen=True, slots=True)
class VerdictRow:
    """One compared item as a row: ``verdict`` is ``reproduced`` or how it differs."""

    item: str
    original: str
    new: str
    verdict: Span


@dataclass(frozen=True, slots=True)
class VerdictReport:
    """The verdict on run ``new`` as a rerun of run ``original``: a title, a row per compared
    item, the child runs that did not reproduce and the outputs left out (empty lines when
    there are none)."""

    original: int
    new: int
    reproduced: bool
    title: Line
    rows: tuple[VerdictRow, ...]
    children: Line
    skipped: Line


def drift_rows(items: Sequence[DriftItem]) -> list[DriftRow]:
    """The drift since a run, one row an item (names, versions and paths as recorded)."""
    return [
        DriftRow(
            DRIFT_MARKS[item.severity],
            f"{item.kind} {item.name}",
            _known(item.then),
            _known(item.now),
            item.why,
        )
        for item in items
    ]


def _known(value: str | None) -> Span:
    return Span(str(value)) if value is not None else Span("-", "dim")


def no_drift_line(number: int) -> Line:
    return (Span(f"no drift since run {number}", "dim"),)


def blocked_message(blocking: Sequence[DriftItem], number: int) -> str:
    """Why a rerun of run ``number`` is refused: the first blocking input, and how to go on."""
    first = blocking[0]
    more = f" (and {len(blocking) - 1} more)" if len(blocking) > 1 else ""
    return (
        f"input {first.name} {first.why} since run {number}{more}; "
        "pass --allow-changed-inputs to rerun anyway"
    )


def verdict_report(verdict: Verdict, original: int, new: int) -> VerdictReport:
    """The verdict worded: ``run 9 reproduced run 1``, each item, children and outputs left out."""
    ok = verdict.reproduced
    title = (
        Span(f"run {new} "),
        Span("reproduced", "good") if ok else Span("did not reproduce", "bad"),
        Span(f" run {original}"),
    )
    children: Line = ()
    if verdict.differing_children:
        listed = "; ".join(verdict.differing_children)
        children = (Span(f"child runs that did not reproduce: {listed}"),)
    return VerdictReport(
        original=original,
        new=new,
        reproduced=ok,
        title=title,
        rows=tuple(_verdict_row(item) for item in verdict.items),
        children=children,
        skipped=skipped_line(verdict.skipped) if verdict.skipped else (),
    )


def _verdict_row(item: VerdictItem) -> VerdictRow:
    label = (f"{item.child}: " if item.child else "") + (
        f"{item.kind} {item.name}" if item.kind != "status" else "status"
    )
    # ``why`` says how it differs ("differs by 0.06", "only in the rerun").
    verdict = Span("reproduced", "good") if item.reproduced else Span(item.why or "differs", "bad")
    return VerdictRow(
        label,
        str(item.original) if item.original is not None else "-",
        str(item.new) if item.new is not None else "-",
        verdict,
    )


def skipped_line(skipped: Sequence[tuple[str, str]], limit: int = TOP_SKIPPED) -> Line:
    """``not compared: out.txt (--ignore), mlruns/x (another tracker's) and 3 more``."""
    shown = ", ".join(
        f"{path} ({_SKIP_REASONS.get(reason, reason)})" for path, reason in skipped[:limit]
    )
    more = f" and {len(skipped) - limit} more" if len(skipped) > limit else ""
    return (Span(f"not compared: {shown}{more}", "dim"),)
