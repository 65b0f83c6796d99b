"""What ``labkeep diff`` says about two runs, as data: one section per part compared
(flags/params, argv, metrics, packages, code, output), each a summary line, a table of keys,
listed lines or unified diffs.

The comparisons are in :mod:`labkeep.repro._diff`; this module reads the two runs from the
store, picks the sections and words them. The command line formats the result.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from labkeep.errors import InvalidInputError
from labkeep.repro._diff import (
    Row,
    diff_argv,
    diff_manifests,
    diff_mappings,
    file_diff,
    output_diff,
)
from labkeep.repro._source import RunSnapshot
from labkeep.repro._styled import Line, Span

if TYPE_CHECKING:
    from labkeep.entities import RunRecord
    from labkeep.store._base import Store

#: The parts ``labkeep diff`` compares, in the order it shows them.
DIFF_PARTS = ("flags", "metrics", "packages", "code", "output")


@dataclass(frozen=True, slots=True)
class KeyTable:
    """Keys side by side in the two runs (values as recorded, not yet formatted)."""

    title: str
    rows: tuple[Row, ...]


@dataclass(frozen=True, slots=True)
class DiffSection:
    """One part of a diff, shown in this order: a heading (``title``, then ``: summary`` when
    there is one; no heading when there is a table and no summary), the table, a note under
    it, listed lines, then unified diffs."""

    title: str
    summary: Line = ()
    table: KeyTable | None = None
    note: Line = ()
    lines: tuple[Line, ...] = ()
    patches: tuple[str, ...] = ()

    @property
    def heading(self) -> bool:
        return bool(self.summary) or self.table is None


@dataclass(frozen=True, slots=True)
class RunDiff:
    """The sections that differ (or not) between runs ``a`` and ``b``."""

    a: int
    b: int
    sections: tuple[DiffSection, ...]


@dataclass(frozen=True, slots=True)
class FileDiff:
    """One code file in two runs: ``patch`` is empty when the file is the same."""

    path: str
    a: int
    b: int
    patch: str


@dataclass(frozen=True, slots=True)
class _Runs:
    """The two runs a diff reads: numbers, snapshots (when kept), and whether a part that needs
    snapshots must have them (it was asked for by name)."""

    store: Store
    a: int
    b: int
    snaps: dict[int, RunSnapshot]
    strict: bool

    def missing(self, what: str) -> DiffSection | None:
        """None when both runs have snapshots, else the section that says which has none (an
        error when the part was asked for: it cannot be shown)."""
        missing = [n for n in (self.a, self.b) if n not in self.snaps]
        if not missing:
            return None
        message = f"run {missing[0]} has no snapshot, so its {what} are unknown"
        if self.strict:
            raise InvalidInputError(message + "; compare runs that have snapshots")
        return DiffSection(what, summary=(Span(message, "dim"),))


def _read_runs(store: Store, run_a: str, run_b: str, *, strict: bool) -> _Runs:
    if not store.exists():
        raise InvalidInputError(f"the store at {store.uri} has no runs yet")
    infos = store.resolve_run(run_a), store.resolve_run(run_b)
    snaps = {}
    for info in infos:
        data = store.get_snapshot(info.number)
        if data is not None:
            snaps[info.number] = RunSnapshot(store, info, data)
    return _Runs(store, infos[0].number, infos[1].number, snaps, strict)


def diff_runs(
    store: Store, run_a: str, run_b: str, parts: Collection[str] = (), *, show_all: bool = False
) -> RunDiff:
    """Compare two runs, the ``parts`` of :data:`DIFF_PARTS` asked for (all of them when
    none); ``show_all`` also lists the keys that are the same.

    A part that needs snapshots says so when a run has none, or fails when it was asked for.
    """
    runs = _read_runs(store, run_a, run_b, strict=bool(parts))
    chosen = set(parts) or set(DIFF_PARTS)
    rec_a, rec_b = store.get_records([runs.a, runs.b])
    sections: list[DiffSection] = []
    if "flags" in chosen:
        sections += _flag_sections(runs, rec_a, rec_b, show_all)
    if "metrics" in chosen:
        sections.append(_metric_section(rec_a, rec_b, show_all))
    if "packages" in chosen:
        sections.append(_package_section(runs, show_all))
    if "code" in chosen:
        sections.append(_code_section(runs))
    if "output" in chosen:
        sections.append(_output_section(runs))
    return RunDiff(runs.a, runs.b, tuple(sections))


def diff_file(store: Store, run_a: str, run_b: str, path: str) -> FileDiff:
    """One code file in two runs' snapshots (notebooks cell by cell)."""
    runs = _read_runs(store, run_a, run_b, strict=True)
    runs.missing("code files")  # strict: raises when a run has no snapshot
    snap_a, snap_b = runs.snaps[runs.a], runs.snaps[runs.b]
    ma = {e.path: e for e in snap_a.manifest()}
    mb = {e.path: e for e in snap_b.manifest()}
    key = Path(path).as_posix().removeprefix("./")
    if key not in ma and key not in mb:
        raise InvalidInputError(
            f"{path} is in neither run's code snapshot; `labkeep show RUN --snapshot --all` "
            "lists the files"
        )
    patch = file_diff(snap_a, snap_b, key, (ma.get(key), mb.get(key)))
    return FileDiff(key, runs.a, runs.b, patch)


def _rows_section(title: str, rows: list[Row], show_all: bool) -> DiffSection:
    """Keys in both runs: ``the same`` when none differs, else a table of those that do."""
    same = sum(1 for row in rows if row.state == "same")
    if not rows:
        return DiffSection(title, summary=(Span("none in either run", "dim"),))
    if same == len(rows) and not show_all:
        return DiffSection(title, summary=(Span("the same", "good"), Span(f" ({same})")))
    shown = rows if show_all else [row for row in rows if row.state != "same"]
    note: Line = ()
    if same and not show_all:
        note = (Span(f"{same} the same (--all shows them)", "dim"),)
    return DiffSection(title, table=KeyTable(title, tuple(shown)), note=note)


def _flag_sections(
    runs: _Runs, rec_a: RunRecord, rec_b: RunRecord, show_all: bool
) -> list[DiffSection]:
    sections = [_rows_section("flags/params", diff_mappings(rec_a.params, rec_b.params), show_all)]
    if runs.a in runs.snaps and runs.b in runs.snaps:
        argv = diff_argv(runs.snaps[runs.a], runs.snaps[runs.b])
        if argv.state == "same" and not show_all:
            shown = argv.a or "no arguments"
            sections.append(
                DiffSection("argv", summary=(Span("the same", "good"), Span(f" ({shown})")))
            )
        else:
            sections.append(DiffSection("argv", table=KeyTable("script arguments", (argv,))))
    return sections


def _metric_section(rec_a: RunRecord, rec_b: RunRecord, show_all: bool) -> DiffSection:
    last_a = {k: m.last for k, m in rec_a.metrics.items() if not k.startswith("sys/")}
    last_b = {k: m.last for k, m in rec_b.metrics.items() if not k.startswith("sys/")}
    rows = diff_mappings({**last_a, **rec_a.summary}, {**last_b, **rec_b.summary})
    return _rows_section("metrics (last) and summary", rows, show_all)


def _package_section(runs: _Runs, show_all: bool) -> DiffSection:
    missing = runs.missing("packages")
    if missing is not None:
        return missing
    packages = [runs.snaps[n].packages() for n in (runs.a, runs.b)]
    return _rows_section("packages", diff_mappings(*packages), show_all)


def _code_section(runs: _Runs) -> DiffSection:
    missing = runs.missing("code files")
    if missing is not None:
        return missing
    snap_a, snap_b = runs.snaps[runs.a], runs.snaps[runs.b]
    code = diff_manifests(snap_a.manifest(), snap_b.manifest())
    if code.empty:
        return DiffSection(
            "code", summary=(Span("the same", "good"), Span(f" ({code.unchanged} files)"))
        )
    counts = (
        f"{len(code.changed)} changed, {len(code.added)} added, {len(code.removed)} removed, "
        f"{code.unchanged} the same"
    )
    listed = [(Span("  "), Span(f"+ {e.path}", "good")) for e in code.added]
    listed += [(Span("  "), Span(f"- {e.path}", "bad")) for e in code.removed]
    patches = (file_diff(snap_a, snap_b, x.path, (x, y)) for x, y in code.changed)
    return DiffSection(
        "code",
        summary=(Span(counts),),
        lines=tuple(listed),
        patches=tuple(patch for patch in patches if patch),
    )


def _output_section(runs: _Runs) -> DiffSection:
    lines_a = [line.text for line in runs.store.get_output(runs.a)]
    lines_b = [line.text for line in runs.store.get_output(runs.b)]
    if not lines_a and not lines_b:
        return DiffSection("output", summary=(Span("neither run kept console output", "dim"),))
    patch = output_diff(lines_a, lines_b, (f"run {runs.a} output", f"run {runs.b} output"))
    if not patch:
        return DiffSection(
            "output", summary=(Span("the same", "good"), Span(f" ({len(lines_a)} lines)"))
        )
    return DiffSection("output", patches=(patch,))
