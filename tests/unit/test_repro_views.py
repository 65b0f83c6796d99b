"""What diff, show --snapshot and rerun say, as data: the wording lives in repro/, not the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from labkeep.repro import blocked_message, drift_rows, verdict_report
from labkeep.repro._drift import DriftItem
from labkeep.repro._snapshot_view import command_text, seed_line
from labkeep.repro._styled import Span, plain_text
from labkeep.repro._verdict_lines import skipped_line
from labkeep.repro._verify import Verdict, VerdictItem


def test_verdict_report_words_each_item_and_the_title() -> None:
    verdict = Verdict(
        (
            VerdictItem("status", "status", "completed", "completed", True),
            VerdictItem("metric", "loss", "0.5", "0.56", False, "differs by 0.06"),
            VerdictItem("output", "model.pt", "ab12", None, False, child="child 1 (run 2 → 5)"),
        ),
        skipped=(("out.txt", "ignored"), ("mlruns/x", "other tracker")),
    )
    report = verdict_report(verdict, 1, 9)
    assert not report.reproduced
    assert plain_text(report.title) == "run 9 did not reproduce run 1"
    assert report.title[1] == Span("did not reproduce", "bad")
    labels = [(r.item, r.original, r.new, r.verdict) for r in report.rows]
    assert labels == [
        ("status", "completed", "completed", Span("reproduced", "good")),
        ("metric loss", "0.5", "0.56", Span("differs by 0.06", "bad")),
        ("child 1 (run 2 → 5): output model.pt", "ab12", "-", Span("differs", "bad")),
    ]
    assert plain_text(report.children) == "child runs that did not reproduce: child 1 (run 2 → 5)"
    assert plain_text(report.skipped) == (
        "not compared: out.txt (--ignore), mlruns/x (another tracker's)"
    )


def test_a_reproduced_verdict_has_no_children_or_skipped_line() -> None:
    report = verdict_report(Verdict((VerdictItem("status", "status", "ok", "ok", True),)), 3, 4)
    assert report.reproduced and plain_text(report.title) == "run 4 reproduced run 3"
    assert report.children == () and report.skipped == ()


def test_skipped_line_counts_what_it_does_not_name() -> None:
    skipped = tuple((f"f{i}", "volatile") for i in range(14))
    line = plain_text(skipped_line(skipped, limit=2))
    assert line == "not compared: f0 (volatile), f1 (volatile) and 12 more"


def test_drift_rows_mark_severity_and_unknown_sides() -> None:
    items = [
        DriftItem("input", "data.csv", "ab", "cd", "block", "content changed"),
        DriftItem("package", "numpy", "1.0", None, "warn", "not installed now"),
        DriftItem("git", "commit", None, "ef", "note", "HEAD moved"),
    ]
    rows = drift_rows(items)
    assert [r.mark for r in rows] == [Span("✗", "bad"), Span("!", "warn"), Span("·", "dim")]
    assert rows[0].what == "input data.csv" and rows[0].then == Span("ab")
    assert rows[1].now == Span("-", "dim") and rows[2].then == Span("-", "dim")
    assert blocked_message(items[:1] * 3, 7) == (
        "input data.csv content changed since run 7 (and 2 more); "
        "pass --allow-changed-inputs to rerun anyway"
    )


def test_seed_line_says_only_what_is_known() -> None:
    by_api = seed_line({"seed": 7, "seeded": ["random", "numpy"], "pythonhashseed": 7})
    assert plain_text(by_api) == "seed 7: random, numpy (PYTHONHASHSEED 7)"
    assert by_api[0] == Span("seed", "strong") and by_api[-1].tone == "dim"
    by_run = seed_line({"seed": 7, "PYTHONHASHSEED": 7, "via": "labkeep run --seed"})
    assert plain_text(by_run) == "seed 7 (PYTHONHASHSEED 7, via labkeep run --seed)"
    assert plain_text(seed_line({"seed": 3})) == "seed 3"


def test_command_text_is_the_command_as_typed() -> None:
    command = {"target": "train.py", "overrides": {"lr": 0.01, "x": 2.0}, "extra_args": ["-v"]}
    assert command_text(command) == "labkeep run train.py lr=0.01 x=2.0 -- -v"


def test_repro_views_need_neither_rich_nor_the_cli() -> None:
    code = (
        "import sys; import labkeep.repro as r; from labkeep.repro._verify import Verdict; "
        "r.verdict_report(Verdict(()), 1, 2); "
        "print(','.join(m for m in sys.modules if m == 'rich' or m.startswith('labkeep.cli')))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
