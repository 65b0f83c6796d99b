import json
from typing import Any

from labkeep.entities import Artifact, MetricSummary, RunInfo, RunRecord, RunStatus
from labkeep.repro._output_verdict import (
    OutputFilter,
    notebook_cells,
    notebook_difference,
    volatile_names,
)
from labkeep.repro._verify import compare_runs


def executed(*cells: tuple[str, list[dict[str, Any]]], stamp: str = "2026-01-01") -> bytes:
    """An executed notebook with nbclient-style volatile metadata stamped with ``stamp``."""
    return json.dumps(
        {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3"}, "papermill": {"start": stamp}},
            "cells": [
                {
                    "cell_type": "code",
                    "id": f"{stamp}-{i}",
                    "execution_count": i + 1,
                    "metadata": {"execution": {"iopub.execute_input": stamp}},
                    "source": source,
                    "outputs": outputs,
                }
                for i, (source, outputs) in enumerate(cells)
            ],
        }
    ).encode()


def stream(text: str) -> dict[str, Any]:
    return {"output_type": "stream", "name": "stdout", "text": text}


def result(value: str, count: int) -> dict[str, Any]:
    return {
        "output_type": "execute_result",
        "execution_count": count,
        "metadata": {},
        "data": {"text/plain": [value]},
    }


def test_notebooks_differing_in_metadata_only_match() -> None:
    a = executed(("print(1)", [stream("1\n")]), ("x", [result("2", 2)]), stamp="monday")
    b = executed(("print(1)", [stream("1\n")]), ("x", [result("2", 7)]), stamp="tuesday")
    assert a != b
    assert notebook_difference(a, b) is None


def test_split_stream_messages_match_one_message() -> None:
    a = executed(("for i in range(2): print(i)", [stream("0\n1\n")]))
    b = executed(("for i in range(2): print(i)", [stream("0\n"), stream("1\n")]))
    assert notebook_difference(a, b) is None


def test_different_outputs_sources_and_cell_counts_differ() -> None:
    base = executed(("print(1)", [stream("1\n")]), ("y", []))
    assert notebook_difference(base, executed(("print(1)", [stream("2\n")]), ("y", []))) == (
        "cell 1's outputs differ"
    )
    assert notebook_difference(base, executed(("print(1)", [stream("1\n")]), ("z", []))) == (
        "cell 2's source differs"
    )
    assert notebook_difference(base, executed(("print(1)", [stream("1\n")]))) == "2 cells vs 1"


def test_widget_model_ids_are_not_compared() -> None:
    def widget(model: str) -> dict[str, Any]:
        return {
            "output_type": "display_data",
            "metadata": {},
            "data": {
                "application/vnd.jupyter.widget-view+json": {"model_id": model},
                "text/plain": "IntProgress(value=3)",
            },
        }

    a, b = executed(("w", [widget("a1")])), executed(("w", [widget("b2")]))
    assert notebook_difference(a, b) is None
    assert notebook_cells(b"not json") is None


def record(*artifacts: Artifact) -> RunRecord:
    info = RunInfo(1, "u", "e", "n", RunStatus.COMPLETED, 0.0)
    return RunRecord(info, metrics={"m": MetricSummary("m", 1.0, 1, 0.0, 1.0, 1.0, 1)},
                     artifacts=artifacts)  # fmt: skip


def test_notebook_outputs_compared_by_cells_when_blobs_are_readable() -> None:
    blobs = {
        "a" * 64: executed(("print(1)", [stream("1\n")]), stamp="monday"),
        "b" * 64: executed(("print(1)", [stream("1\n")]), stamp="tuesday"),
        "c" * 64: executed(("print(1)", [stream("9\n")]), stamp="tuesday"),
    }
    original = record(Artifact("notebook/t.ipynb", "a" * 64, 10))
    same = record(Artifact("notebook/t.ipynb", "b" * 64, 10))
    other = record(Artifact("notebook/t.ipynb", "c" * 64, 10))
    assert not compare_runs(original, same).reproduced  # bytes only without read_blob
    assert compare_runs(original, same, read_blob=blobs.__getitem__).reproduced
    verdict = compare_runs(original, other, read_blob=blobs.__getitem__)
    assert [(i.name, i.why) for i in verdict.differing] == [
        ("notebook/t.ipynb", "cell 1's outputs differ")
    ]


def test_volatile_ignored_and_other_trackers_are_left_out() -> None:
    def arts(sha: str, stamp: str) -> tuple[Artifact, ...]:
        names = [
            "model.pt",
            "stamp.txt",
            "logs/a.txt",
            "debug.log",
            "mlflow.db",
            "mlruns/0/x/meta.yaml",
            "out/wandb/run-1/files/config.yaml",
            "lightning_logs/version_0/hparams.yaml",
            f"runs/x/events.out.tfevents.{stamp}.host",
        ]
        return tuple(Artifact(n, (sha if n != "model.pt" else "m") * 64, 1) for n in names)

    original, new = record(*arts("a", "1")), record(*arts("b", "2"))
    assert not compare_runs(original, new).reproduced
    verdict = compare_runs(
        original, new, ignore=["*.log"], volatile=["stamp.txt", "logs/"]
    )  # fmt: skip
    assert verdict.reproduced, verdict.differing
    assert [i.name for i in verdict.items if i.kind == "output"] == ["model.pt"]
    reasons = dict(verdict.skipped)
    assert reasons["stamp.txt"] == reasons["logs/a.txt"] == "volatile"
    assert reasons["debug.log"] == "ignored"
    assert reasons["mlflow.db"] == reasons["runs/x/events.out.tfevents.2.host"] == "other tracker"
    assert reasons["out/wandb/run-1/files/config.yaml"] == "other tracker"


def test_output_filter_and_volatile_names() -> None:
    rules = OutputFilter(["notebook/*.html"], ["a[1].txt"])
    assert rules.reason("a[1].txt") == "volatile"  # names are names, not patterns
    assert rules.reason("a1.txt") is None
    assert rules.reason("notebook/t.html") == "ignored"
    assert rules.reason("runs/model.pt") is None  # runs/ itself is the user's
    assert volatile_names({"volatile": ["x", 3]}) == ["x", "3"]
    assert volatile_names(None) == volatile_names({"volatile": "x"}) == []
