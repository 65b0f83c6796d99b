"""Output scalars (Guild AI's rules) and console-line collapsing."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkeep.errors import InvalidInputError
from labkeep.runner._console_log import ConsoleLine, ConsoleLog
from labkeep.runner._scalars import OutputScalarParser, ScalarPoint


def points(text: str, **options: object) -> list[tuple[str, float, int]]:
    parser = OutputScalarParser(**options)  # type: ignore[arg-type]
    found = parser.feed(text) + parser.close()
    return [(p.key, p.value, p.step) for p in found]


def test_key_colon_value_lines_are_scalars_at_step_zero() -> None:
    assert points("x: 1.1\ny: 1.2\nz: -3e-2\n") == [("x", 1.1, 0), ("y", 1.2, 0), ("z", -0.03, 0)]


def test_a_repeated_key_advances_the_step() -> None:
    assert points("x: 1\ny: 2\nx: 3\ny: 4\nx: 5\n") == [
        ("x", 1.0, 0),
        ("y", 2.0, 0),
        ("x", 3.0, 1),
        ("y", 4.0, 1),
        ("x", 5.0, 2),
    ]


def test_any_repeated_key_advances_the_step_like_guild() -> None:
    assert points("x: 1\ny: 2\ny: 3\ny: 4\nx: 5\ny: 6\n") == [
        ("x", 1.0, 0),
        ("y", 2.0, 0),
        ("y", 3.0, 1),
        ("y", 4.0, 2),
        ("x", 5.0, 2),
        ("y", 6.0, 3),
    ]


def test_step_key_sets_the_step_and_is_not_a_metric() -> None:
    out = "step: 1\nloss: 2.345\naccuracy: 0.123\n\nstep: 2\nloss: 1.234\naccuracy: 0.456\n"
    assert points(out) == [
        ("loss", 2.345, 1),
        ("accuracy", 0.123, 1),
        ("loss", 1.234, 2),
        ("accuracy", 0.456, 2),
    ]


def test_after_an_explicit_step_repeats_no_longer_advance() -> None:
    assert points("x: 1\nx: 2\ny: 4.4 (10)\nx: 5\ny: 6\n") == [
        ("x", 1.0, 0),
        ("x", 2.0, 1),
        ("y", 4.4, 10),
        ("x", 5.0, 10),
        ("y", 6.0, 10),
    ]


def test_step_suffix_forms() -> None:
    assert points("loss: 0.5 (step 7)\nacc: 0.25 (8)\n") == [("loss", 0.5, 7), ("acc", 0.25, 8)]


def test_key_equals_value_pairs_on_one_line_share_a_step() -> None:
    assert points("acc=0.9 loss=0.4\nacc=0.95, loss=0.3\n") == [
        ("acc", 0.9, 0),
        ("loss", 0.4, 0),
        ("acc", 0.95, 1),
        ("loss", 0.3, 1),
    ]


def test_leading_epoch_counter_is_recorded() -> None:
    assert points("epoch 3 acc=0.9 loss=0.4\nepoch 4 acc=0.95 loss=0.3\n") == [
        ("epoch", 3.0, 0),
        ("acc", 0.9, 0),
        ("loss", 0.4, 0),
        ("epoch", 4.0, 1),
        ("acc", 0.95, 1),
        ("loss", 0.3, 1),
    ]


def test_leading_step_counter_sets_the_step() -> None:
    assert points("step 5 loss=0.4\nStep 6: loss=0.3\n") == [("loss", 0.4, 5), ("loss", 0.3, 6)]


def test_step_pair_sets_the_step_wherever_it_is_on_the_line() -> None:
    assert points("loss=0.4 step=12\n") == [("loss", 0.4, 12)]


def test_keras_progress_line_and_epoch_header() -> None:
    out = (
        "Epoch 1/2\n"
        "1875/1875 [==============================] - 3s 1ms/step - loss: 0.2975 - accuracy: 0.9141\n"
        "Epoch 2/2\n"
        "1875/1875 [==============================] - 3s 1ms/step - loss: 0.1400 - accuracy: 0.9586\n"
    )
    assert points(out) == [
        ("epoch", 1.0, 0),
        ("loss", 0.2975, 0),
        ("accuracy", 0.9141, 0),
        ("epoch", 2.0, 1),
        ("loss", 0.14, 1),
        ("accuracy", 0.9586, 1),
    ]


def test_step_keys_are_configurable() -> None:
    assert points("epoch 3 loss=0.4\n", step_keys=("step", "epoch")) == [("loss", 0.4, 3)]


def test_text_that_only_looks_numeric_is_ignored() -> None:
    out = (
        "Starting at 12:30:45\n"
        "Accuracy: 95%\n"
        "see http://example.com:8080/x\n"
        "ratio=1/2 id=abc\n"
        "Processed 100 files\n"
        "  indented: 0.5 is fine as a pair\n"
    )
    assert points(out) == [("indented", 0.5, 0)]


def test_nan_and_inf_values() -> None:
    found = points("loss: nan\ngrad=inf\n")
    assert found[0][0] == "loss" and math.isnan(found[0][1])
    assert found[1] == ("grad", math.inf, 0)


def test_ignored_keys_are_not_recorded() -> None:
    assert points("lr: 0.01\nloss: 0.5\n", ignore_keys={"lr"}) == [("loss", 0.5, 0)]


def test_a_printed_list_of_values_is_no_scalar() -> None:
    # Guild's flags example echoes its flags as ``print("Flags:", i, f, b, s)``.
    assert points("Flags: 5 2.0 True world\n") == []
    assert points("sizes: 64 32\nloss: 0.5 acc: 0.9\n") == [("loss", 0.5, 0), ("acc", 0.9, 0)]
    assert points("epoch 2 loss=0.5 12/100\n") == [("epoch", 2.0, 0), ("loss", 0.5, 0)]


def test_arguments_in_parentheses_are_no_scalars() -> None:
    # MLflow's ElasticNet example echoes its configuration as a call's arguments.
    text = "Elasticnet model (alpha=0.300000, l1_ratio=0.200000):\n  RMSE: 0.79\n  R2: 0.1\n"
    assert points(text) == [("RMSE", 0.79, 0), ("R2", 0.1, 0)]
    assert points("fit(a=1) loss=0.2\n") == [("loss", 0.2, 0)]
    # Parentheses after a pair, or around a ``key: value``, do not hide it.
    assert points("loss=0.4 (best)\n") == [("loss", 0.4, 0)]
    assert points("x (loss: 0.4)\n") == [("loss", 0.4, 0)]
    # A key the user asks for is read there too.
    asked = OutputScalarParser(asked_keys={"alpha"}).feed(text)
    assert [(p.key, p.value) for p in asked] == [("alpha", 0.3), ("RMSE", 0.79), ("R2", 0.1)]


def test_keys_ignored_later_are_not_recorded_from_then_on() -> None:
    parser = OutputScalarParser()
    assert [p.key for p in parser.feed("alpha=0.3 loss=1\n")] == ["alpha", "loss"]
    parser.ignore({"alpha"})
    assert [p.key for p in parser.feed("alpha=0.3 loss=2\n")] == ["loss"]


def test_lines_split_across_chunks() -> None:
    parser = OutputScalarParser()
    assert parser.feed("lo") == []
    assert parser.feed("ss: 0.") == []
    assert parser.feed("5\nacc") == [ScalarPoint("loss", 0.5, 0)]
    assert parser.close() == []  # "acc" alone is no scalar


def test_last_line_without_newline_is_parsed_on_close() -> None:
    parser = OutputScalarParser()
    assert parser.feed("loss: 0.5") == []
    assert parser.close() == [ScalarPoint("loss", 0.5, 0)]


def test_only_the_final_state_of_a_redrawn_line_counts() -> None:
    bar = "".join(f"\r{i}%|#| loss={i / 100}" for i in range(1, 101))
    assert points(bar + "\n") == [("loss", 1.0, 0)]
    assert points("loss=0.25\r\n") == [("loss", 0.25, 0)]


def test_redraws_across_chunks() -> None:
    parser = OutputScalarParser()
    assert parser.feed("loss=0.9\r") == []
    assert parser.feed("loss=0.5") == []
    assert parser.feed("\n") == [ScalarPoint("loss", 0.5, 0)]


def test_disabled_parser_reports_nothing() -> None:
    assert points("loss: 0.5\n", enabled=False) == []


def test_user_pattern_with_named_groups_replaces_defaults() -> None:
    pattern = r"(?P<key>\w+) is (?P<value>\value)"
    assert points("loss is 0.5\nacc: 0.9\n", patterns=[pattern]) == [("loss", 0.5, 0)]


def test_user_pattern_with_two_groups_uses_guild_macros() -> None:
    assert points("foo: 1.123\n", patterns=[r"^(\key):\s+(\value)$"]) == [("foo", 1.123, 0)]


def test_user_patterns_with_fixed_keys_and_step() -> None:
    patterns = {"loss": r"train loss (\value)", "step": r"iteration (\step)"}
    out = "iteration 10\ntrain loss 0.5\niteration 20\ntrain loss 0.25\n"
    assert points(out, patterns=patterns) == [("loss", 0.5, 10), ("loss", 0.25, 20)]


def test_user_pattern_with_step_group() -> None:
    pattern = r"(?P<key>\w+)@(?P<step>\d+)=(?P<value>\value)"
    assert points("loss@5=0.5 acc@5=0.75\n", patterns=[pattern]) == [
        ("loss", 0.5, 5),
        ("acc", 0.75, 5),
    ]


@pytest.mark.parametrize(
    ("patterns", "message"),
    [
        (["(unclosed"], "bad output-scalar pattern"),
        (["no groups here"], "needs named groups 'key' and 'value'"),
        ({"loss": "a(b)(c)"}, "needs one group"),
    ],
)
def test_bad_user_patterns_are_rejected(patterns: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        OutputScalarParser(patterns)  # type: ignore[arg-type]


def test_console_log_keeps_plain_lines() -> None:
    log = ConsoleLog(clock=lambda: 5.0)
    assert log.feed("a\nb\n") == [ConsoleLine(5.0, "a"), ConsoleLine(5.0, "b")]
    assert log.close() == []


def test_console_log_collapses_ten_thousand_progress_updates_into_one_line() -> None:
    log = ConsoleLog(clock=lambda: 1.0)
    lines: list[ConsoleLine] = []
    for i in range(10_000):
        lines += log.feed(f"\r{i / 100:6.2f}%|{'#' * (i // 1000)}|")
    assert lines == []
    assert log.current.startswith(" 99.99%")
    lines += log.feed("\ntraining done\n")
    assert [line.text for line in lines] == [" 99.99%|#########|", "training done"]


def test_console_log_carriage_return_before_newline_erases_nothing() -> None:
    log = ConsoleLog(clock=lambda: 0.0)
    assert [line.text for line in log.feed("windows line\r\nnext\r")] == ["windows line"]
    assert [line.text for line in log.feed("\n")] == ["next"]
    log.feed("Downloading...\r")
    assert [line.text for line in log.feed("Done\n")] == ["Done"]


def test_console_log_timestamps_lines_when_they_end() -> None:
    now = [10.0]
    log = ConsoleLog(clock=lambda: now[0])
    assert log.feed("first half ") == []
    now[0] = 12.5
    assert log.feed("second half\n") == [ConsoleLine(12.5, "first half second half")]
    now[0] = 20.0
    log.feed("tail without newline")
    assert log.close() == [ConsoleLine(20.0, "tail without newline")]
    assert log.close() == []


def test_feed_groups_gives_each_lines_scalars_with_its_step() -> None:
    parser = OutputScalarParser(ignore_keys={"lr"})
    assert parser.feed_groups(
        "epoch 1 loss=0.5 lr=0.1\nno scalars here\nloss: 0.4\nacc=0.9 acc="
    ) == [
        (0, [("epoch", 1.0), ("loss", 0.5)]),
        (1, [("loss", 0.4)]),
    ]
    assert parser.close_groups() == [(1, [("acc", 0.9)])]  # the second "acc=" has no value
    assert parser.feed_groups("loss=1 loss=2\n") == [(2, [("loss", 1.0), ("loss", 2.0)])]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=400), max_size=6))
def test_any_split_into_chunks_gives_the_same_points(cuts: list[int]) -> None:
    text = (
        "Epoch 1/2\n - loss: 0.29 - accuracy: 0.91\nstep 5 loss=0.4\r\n"
        "plain text\n\r50%|## | loss=0.7\r100%|###| loss=0.6\nx: 1.5 (step 9)\n"
        "  indented: 0.5, b=inf\ncounter 3\nÄrger=1 x=2 köln: 3\ntail=4"
    )
    whole = OutputScalarParser()
    expected = whole.feed(text) + whole.close()
    parser = OutputScalarParser()
    found: list[ScalarPoint] = []
    start = 0
    for cut in [*sorted(c for c in cuts if c < len(text)), len(text)]:
        found += parser.feed(text[start:cut])
        start = cut
    found += parser.close()
    assert found == expected
    assert ("loss", 0.6, 5) in [(p.key, p.value, p.step) for p in expected]


def test_console_log_feed_texts_shares_one_time_per_chunk() -> None:
    log = ConsoleLog(clock=lambda: 7.0)
    assert log.feed_texts("partial") == (0.0, [])
    assert log.feed_texts(" line\nbar 1%\rbar 100%\nnext") == (7.0, ["partial line", "bar 100%"])
    assert log.close() == [ConsoleLine(7.0, "next")]
