"""Runs as a tree: runs with their child runs nested under them (``init(parent=…)``, a
sweep's trials), as ``labkeep runs`` lists them.

A parent with many children (a sweep of 100 trials) is collapsed to one row that counts them
by status unless asked to expand: the listing stays about the runs that were asked for. The
walk costs one :meth:`Store.count_children` per group of siblings, and one search and one
read for each group it lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from labkeep.entities import RunRecord
    from labkeep.store._base import Store

#: A parent with more children than this shows a count of them instead (unless expanded).
COLLAPSE_OVER = 5
#: Deeper than this, children are counted rather than listed (a guard; real trees are shallow).
MAX_DEPTH = 16


@dataclass(frozen=True, slots=True)
class TreeRow:
    """One row of a tree of runs: a run (``record``), or, with ``record`` None, the children
    of the row above that are not listed, by status (``hidden``). ``lasts`` says, for each
    level below the top one, whether the row (or its ancestor at that level) is the last of
    its siblings: what draws the tree's lines."""

    record: RunRecord | None
    lasts: tuple[bool, ...] = ()
    hidden: dict[str, int] = field(default_factory=dict)

    @property
    def depth(self) -> int:
        return len(self.lasts)

    def prefix(self) -> str:
        """The tree's lines before the row's name: ``├─ ``, ``│  └─ ``…"""
        if not self.lasts:
            return ""
        above = "".join("   " if last else "│  " for last in self.lasts[:-1])
        return above + ("└─ " if self.lasts[-1] else "├─ ")


def run_tree(
    store: Store,
    top: list[RunRecord],
    *,
    expand: bool = False,
    collapse_over: int = COLLAPSE_OVER,
) -> list[TreeRow]:
    """``top`` (in their order), each followed by its children (oldest first) and theirs;
    a parent with more than ``collapse_over`` children gets a counting row instead, unless
    ``expand``.

    >>> [row.prefix() + row.record.info.name for row in run_tree(store, records)]  # doctest: +SKIP
    ['cv', '├─ fold-0', '└─ fold-1', 'baseline']
    """
    rows: list[TreeRow] = []

    def walk(records: list[RunRecord], lasts: tuple[bool, ...] | None) -> None:
        counts = store.count_children([r.info.uuid for r in records])
        for i, record in enumerate(records):
            here = () if lasts is None else (*lasts, i == len(records) - 1)
            rows.append(TreeRow(record, here))
            children = counts.get(record.info.uuid)
            if not children:
                continue
            if (not expand and sum(children.values()) > collapse_over) or len(here) >= MAX_DEPTH:
                rows.append(TreeRow(None, (*here, True), dict(children)))
                continue
            numbers = store.search_numbers(sort="number", parent_uuid=record.info.uuid)
            walk(store.get_records(numbers) if numbers else [], here)

    if top:
        walk(top, None)
    return rows


def describe_hidden(hidden: dict[str, int]) -> str:
    """``12 child runs (11 completed, 1 failed)``: a collapsed row's text."""
    total = sum(hidden.values())
    order = ("running", "completed", "failed", "interrupted", "killed")
    ranked = sorted(hidden, key=lambda s: order.index(s) if s in order else len(order))
    parts = [f"{hidden[s]} {s}" for s in ranked]
    return f"{total} child run{'s' if total != 1 else ''} ({', '.join(parts)})"
