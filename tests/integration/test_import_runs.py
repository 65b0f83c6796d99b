"""``import_runs``, the write path every importer shares, on a real SQLite store: original
times, statuses and steps kept, one transaction per run, idempotent, and a source that fails
midway stops with a message saying how far it got."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from labkeep.entities import RunStatus
from labkeep.integrations._importing import (
    RunReadError,
    SourceError,
    SourceRun,
    import_runs,
    imported_uuid,
)
from labkeep.store import locate_store, open_store


class ListSource:
    """A tool's store as a list: run ``broken`` cannot be read, run ``dies`` fails the source."""

    tool = "listed"
    location = "memory"

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids

    def run_ids(self) -> Sequence[str]:
        return self.ids

    def read_run(self, run_id: str) -> SourceRun:
        if run_id == "broken":
            raise RunReadError("listed run broken: its file is damaged")
        if run_id == "dies":
            raise ConnectionResetError("connection reset by peer")
        return SourceRun(
            source=self.tool,
            source_id=run_id,
            experiment="old",
            name=f"run-{run_id}",
            start_time=1_600_000_000.25,
            end_time=1_600_000_100.5,
            status=RunStatus.FAILED,
            params={"lr": 0.1, "layers": [2, 3]},
            metrics={"loss": ([5, 10], [0.5, 0.25], [1_600_000_001.0, 1_600_000_002.0])},
            tags=["legacy"],
            exit_code=3,
        )

    def close(self) -> None:
        pass


def test_runs_keep_their_history_and_import_once(tmp_path: Path) -> None:
    store = open_store(locate_store(str(tmp_path / "store")))
    report = import_runs(store, ListSource(["a", "broken", "b"]))
    assert len(report.imported) == 2
    assert report.failed == [("broken", "listed run broken: its file is damaged")]
    info = store.resolve_run(imported_uuid("listed", "a"))
    assert (info.start_time, info.end_time) == (1_600_000_000.25, 1_600_000_100.5)
    assert (info.status, info.exit_code, info.experiment) == (RunStatus.FAILED, 3, "old")
    record = store.get_records([info.number])[0]
    assert record.params == {"lr": 0.1, "layers": [2, 3]}
    assert record.tags == ("legacy",)
    assert record.summary == {"import.source": "listed", "import.id": "a"}
    history = store.get_history(info.number, "loss")
    assert (history.steps, history.values, history.times) == (
        [5, 10],
        [0.5, 0.25],
        [1_600_000_001.0, 1_600_000_002.0],
    )
    again = import_runs(store, ListSource(["a", "b"]))
    assert again.imported == []
    assert sorted(again.skipped) == sorted(report.imported)
    assert len(store.list_runs()) == 2
    store.close()


def test_a_source_failing_midway_says_how_far_it_got(tmp_path: Path) -> None:
    store = open_store(locate_store(str(tmp_path / "store")))
    with pytest.raises(SourceError) as failure:
        import_runs(store, ListSource(["a", "dies", "b"]))
    assert str(failure.value) == (
        "importing from listed memory stopped at run dies (connection reset by peer); "
        "1 of 3 run(s) were imported whole before it, and importing again goes on from there"
    )
    assert [r.name for r in store.list_runs()] == ["run-a"]
    report = import_runs(store, ListSource(["a", "b"]))
    assert (len(report.imported), len(report.skipped)) == (1, 1)
    store.close()
