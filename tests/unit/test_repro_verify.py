import math

import pytest

from labkeep.entities import Artifact, MetricSummary, RunInfo, RunRecord, RunStatus
from labkeep.repro._verify import compare_runs, compare_with_children, values_match


def record(
    metrics: dict[str, float],
    artifacts: tuple[Artifact, ...] = (),
    status: RunStatus = RunStatus.COMPLETED,
) -> RunRecord:
    info = RunInfo(1, "u", "e", "n", status, 0.0)
    return RunRecord(
        info,
        metrics={k: MetricSummary(k, v, 3, 0.0, v, v, 4) for k, v in metrics.items()},
        artifacts=artifacts,
    )


def test_identical_runs_reproduce() -> None:
    a = record({"loss": 0.25, "acc": 0.9}, (Artifact("model.pt", "a" * 64, 10),))
    verdict = compare_runs(
        a, record({"loss": 0.25, "acc": 0.9}, (Artifact("model.pt", "a" * 64, 10),))
    )
    assert verdict.reproduced
    assert [(i.kind, i.name) for i in verdict.items] == [
        ("status", "status"),
        ("metric", "acc"),
        ("metric", "loss"),
        ("output", "model.pt"),
    ]


def test_default_is_exact_and_tolerances_loosen() -> None:
    a, b = record({"loss": 1.0}), record({"loss": 1.0 + 1e-9})
    exact = compare_runs(a, b)
    assert not exact.reproduced
    item = exact.differing[0]
    assert (item.name, item.original, item.new) == ("loss", "1.0", repr(1.0 + 1e-9))
    assert "differs by" in item.why
    assert compare_runs(a, b, rtol=1e-6).reproduced
    assert compare_runs(a, b, atol=1e-6).reproduced
    assert not compare_runs(a, record({"loss": 1.1}), rtol=1e-6).reproduced


def test_missing_metric_and_nan() -> None:
    verdict = compare_runs(record({"loss": 1.0, "x": math.nan}), record({"x": math.nan}))
    assert [(i.name, i.reproduced, i.why) for i in verdict.items if i.kind == "metric"] == [
        ("loss", False, "only in the original"),
        ("x", True, ""),
    ]


def test_system_metrics_are_ignored() -> None:
    assert compare_runs(record({"sys/cpu": 10.0}), record({"sys/cpu": 80.0})).reproduced


def test_outputs_by_hash_and_inputs_by_fingerprint() -> None:
    a = record({}, (Artifact("out.txt", "a" * 64, 1), Artifact("in.csv", "c" * 64, 1, "input")))
    b = record({}, (Artifact("out.txt", "b" * 64, 2),))
    verdict = compare_runs(
        a,
        b,
        original_inputs=[{"path": "/d", "sha256": "1" * 64}],
        new_inputs=[{"path": "/d", "sha256": "2" * 64}],
    )
    kinds = {(i.kind, i.name): i for i in verdict.items}
    assert not kinds[("output", "out.txt")].reproduced
    assert ("output", "in.csv") not in kinds  # only outputs are compared
    assert not kinds[("input", "/d")].reproduced


def test_status_difference() -> None:
    verdict = compare_runs(record({}), record({}, status=RunStatus.FAILED))
    assert not verdict.reproduced
    assert verdict.differing[0].kind == "status"


def test_values_match_edges() -> None:
    assert values_match(math.inf, math.inf)
    assert not values_match(math.inf, -math.inf, atol=1e9)
    assert not values_match(math.nan, 0.0)
    with pytest.raises(ValueError):
        compare_runs(record({}), record({}), rtol=-1)


def child(number: int, params: dict[str, object], acc: float, experiment: str = "e") -> RunRecord:
    info = RunInfo(number, f"u{number}", experiment, "n", RunStatus.COMPLETED, 0.0)
    return RunRecord(
        info,
        params=params,  # type: ignore[arg-type]
        metrics={"acc": MetricSummary("acc", acc, 3, 0.0, acc, acc, 2)},
    )


def test_child_runs_are_compared_pairwise_and_the_verdict_names_the_one_that_differed() -> None:
    parent_a, parent_b = record({"x": 1.0}), record({"x": 1.0})
    old = [child(2, {"a": 1}, 0.1), child(3, {"a": 2}, 0.2), child(4, {"a": 3}, 0.3)]
    new = [child(6, {"a": 1}, 0.1), child(7, {"a": 2}, 0.25), child(8, {"a": 3}, 0.3)]
    verdict = compare_with_children(parent_a, parent_b, old, new)
    assert not verdict.reproduced
    assert [i.child for i in verdict.differing] == ["child 2 (run 3 → 7, e)"]
    assert verdict.differing_children == ["child 2 (run 3 → 7, e)"]
    assert {i.child for i in verdict.items} == {
        "",
        "child 1 (run 2 → 6, e)",
        "child 2 (run 3 → 7, e)",
        "child 3 (run 4 → 8, e)",
    }
    assert compare_with_children(parent_a, parent_b, old, old).reproduced


def test_children_pair_by_experiment_and_config_before_order() -> None:
    old = [child(2, {"a": 1}, 0.1), child(3, {"a": 2}, 0.2, "other")]
    new = [child(6, {"a": 2}, 0.2, "other"), child(7, {"a": 1}, 0.1)]
    verdict = compare_with_children(record({}), record({}), old, new)
    assert verdict.reproduced
    assert "child 1 (run 2 → 7, e)" in {i.child for i in verdict.items}


def test_a_child_missing_on_one_side_differs() -> None:
    old = [child(2, {"a": 1}, 0.1), child(3, {"a": 2}, 0.2)]
    verdict = compare_with_children(record({}), record({}), old, old[:1])
    assert not verdict.reproduced
    (item,) = verdict.differing
    assert (item.kind, item.original, item.new) == ("run", "run 3", None)
    assert item.why == "only in the original"
    extra = compare_with_children(record({}), record({}), old[:1], old)
    assert extra.differing[0].why == "only in the rerun"


def test_no_children_in_the_original_leaves_the_reruns_children_out() -> None:
    """A script run without `labkeep run` made independent runs: nothing links them to
    the original, so the rerun's child runs have nothing to be compared with."""
    verdict = compare_with_children(record({}), record({}), [], [child(6, {"a": 1}, 0.1)])
    assert verdict.reproduced
    assert {i.child for i in verdict.items} == {""}
