"""The per-writer journal (``labkeep._journal``) and its decoder (``labkeep._journal_decoder``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from labkeep import _journal as j
from labkeep._journal_decoder import JournalDecoder, journal_damage
from labkeep._write_batch import WriteBatch


def _writer(tmp_path: Path, name: str = "run-uuid.w1") -> j.JournalWriter:
    writer = j.JournalWriter(tmp_path / "journals" / name)
    writer.open()
    return writer


def _start(writer: j.JournalWriter, uuid: str = "run-uuid") -> None:
    writer.append_json(
        j.T_START, {"uuid": uuid, "experiment": "e", "name": "", "start_time": 1.0, "pid": 1}
    )


def test_records_round_trip(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    _start(writer)
    writer.append_key(0, "loss")
    writer.append_metrics(10.0, 5, [0, 0.25])
    writer.append_json(j.T_PARAMS, {"lr": 0.1})
    records = list(j.read_records(writer.directory, 0))
    assert [r[0] for r in records] == [j.T_START, j.T_KEY, j.T_METRICS, j.T_PARAMS]
    assert records[-1][1] == writer.position
    assert json.loads(bytes(records[-1][2])) == {"lr": 0.1}
    writer.close()


def test_journal_is_locked_while_its_writer_lives(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    assert j.try_lock(writer.directory) is None
    writer.close()
    fd = j.try_lock(writer.directory)
    assert fd is not None
    import os

    os.close(fd)


def test_closed_writer_refuses_records(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.close()
    with pytest.raises(ValueError):
        writer.append_metrics(1.0, 0, [0, 1.0])


def test_close_with_remove_deletes_the_journal(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    _start(writer)
    writer.close(remove=True)
    assert not writer.directory.exists()


def test_decoder_builds_a_write_batch(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    _start(writer)
    writer.append_key(0, "loss")
    writer.append_key(1, "acc")
    writer.append_metrics(10.0, 0, [0, 1.0, 1, 0.5])
    writer.append_metrics(11.0, 7, [0, float("nan")])
    writer.append_metrics(12.0, 3, [0, float("-inf")])
    writer.append_json(j.T_PARAMS, {"lr": 0.1, "layers": [1, 2]})
    writer.append_json(j.T_SUMMARY, {"best": 0.5})
    writer.append_json(j.T_TAGS, {"add": ["a", "b"]})
    writer.append_json(j.T_TAGS, {"remove": ["a"]})
    writer.append_json(j.T_NOTES, "hello")
    writer.append_json(j.T_FINISH, {"status": "completed", "end_time": 13.0})
    decoder = JournalDecoder(writer.directory)
    batch = decoder.read()
    assert batch is not None
    assert batch.run_uuid == "run-uuid"
    assert batch.writer == "run-uuid.w1"
    assert batch.position == writer.position
    assert batch.start is not None and batch.start.experiment == "e"
    loss = batch.metrics["loss"]
    assert list(loss.steps) == [0, 7, 3]
    assert loss.values[0] == 1.0 and math.isnan(loss.values[1]) and loss.values[2] == -math.inf
    assert list(loss.times) == [10.0, 11.0, 12.0]
    assert list(batch.metrics["acc"].values) == [0.5]
    assert batch.params == {"lr": 0.1, "layers": [1, 2]}
    assert batch.summary == {"best": 0.5}
    assert batch.tags_added == ["b"] and batch.tags_removed == ["a"]
    assert batch.notes == "hello"
    assert batch.finish is not None and batch.finish.status == "completed"
    assert decoder.finished
    assert decoder.read() is None
    writer.close()


def test_decoder_continues_after_a_position_and_remembers_keys(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    _start(writer)
    writer.append_key(0, "loss")
    writer.append_metrics(1.0, 0, [0, 1.0])
    middle = writer.position
    writer.append_metrics(2.0, 1, [0, 2.0])
    fresh = JournalDecoder(writer.directory)
    fresh.seek(middle)
    assert fresh.run_uuid == "run-uuid"
    batch = fresh.read()
    assert batch is not None
    assert batch.start is None
    assert list(batch.metrics["loss"].values) == [2.0]
    writer.close()


def _two_runs_on_one_writer(tmp_path: Path) -> tuple[j.JournalWriter, list[int]]:
    """The writer's own run and a child run sharing it, their records interleaved, each
    numbering its keys from 0; returns the writer and the position after each record."""
    writer = _writer(tmp_path)
    child = writer.share("child-uuid")
    marks = []
    _start(writer)
    writer.append_key(0, "loss")
    marks.append(writer.position)
    child.append_json(j.T_START, {"uuid": "child-uuid", "experiment": "e", "name": "",
                                  "start_time": 2.0, "parent_uuid": "run-uuid"})  # fmt: skip
    child.append_key(0, "acc")
    child.append_metric(3.0, 0, 0, 0.5)
    marks.append(writer.position)
    writer.append_metric(4.0, 0, 0, 1.0)
    marks.append(writer.position)
    child.append_metrics(5.0, 1, [0, 0.75])
    child.append_json(j.T_FINISH, {"status": "completed", "end_time": 6.0})
    marks.append(writer.position)
    writer.append_json(j.T_SUMMARY, {"best": 0.75})
    marks.append(writer.position)
    return writer, marks


def test_runs_sharing_a_writer_decode_into_batches_of_one_run_each(tmp_path: Path) -> None:
    writer, marks = _two_runs_on_one_writer(tmp_path)
    decoder = JournalDecoder(writer.directory)
    batches = []
    while (batch := decoder.read()) is not None:
        batches.append(batch)
    assert [b.run_uuid for b in batches] == [
        "run-uuid", "child-uuid", "run-uuid", "child-uuid", "run-uuid",
    ]  # fmt: skip
    assert [b.position for b in batches] == marks  # each batch ends where the next run begins
    own_start, child_start, own_loss, child_end, own_summary = batches
    assert own_start.start is not None and own_start.start.uuid == "run-uuid"
    assert child_start.start is not None and child_start.start.parent_uuid == "run-uuid"
    assert {k: list(c.values) for k, c in child_start.metrics.items()} == {"acc": [0.5]}
    assert {k: list(c.values) for k, c in own_loss.metrics.items()} == {"loss": [1.0]}
    assert {k: list(c.steps) for k, c in child_end.metrics.items()} == {"acc": [1]}
    assert child_end.finish is not None and own_summary.summary == {"best": 0.75}
    assert decoder.open_runs == {"run-uuid": True}  # the child ended; the writer's run goes on
    writer.close()


def test_a_decoder_resuming_in_a_shared_journal_knows_each_runs_keys(tmp_path: Path) -> None:
    writer, marks = _two_runs_on_one_writer(tmp_path)
    decoder = JournalDecoder(writer.directory)
    decoder.seek(marks[2])  # in the store up to the writer's own point
    assert decoder.run_uuid == "run-uuid"
    assert decoder.open_runs == {"run-uuid": True, "child-uuid": True}
    batch = decoder.read()
    assert batch is not None and batch.run_uuid == "child-uuid" and batch.start is None
    assert list(batch.metrics) == ["acc"]
    writer.close()


def test_a_shared_writer_switches_runs_only_when_they_change(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    child = writer.share("child-uuid")
    _start(writer)
    child.append_json(j.T_START, {"uuid": "child-uuid", "experiment": "e", "name": "",
                                  "start_time": 2.0})  # fmt: skip
    child.append_json(j.T_PARAMS, {"x": 1})
    child.append_json(j.T_SUMMARY, {"y": 2})
    writer.append_json(j.T_SUMMARY, {"z": 3})
    types = [rtype for rtype, _end, _payload in j.read_records(writer.directory, 0)]
    assert types == [j.T_START, j.T_START, j.T_PARAMS, j.T_SUMMARY, j.T_ATTACH, j.T_SUMMARY]
    writer.close()


def test_decoder_reads_up_to_a_limit(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    _start(writer)
    writer.append_key(0, "x")
    writer.append_metrics(1.0, 0, [0, 1.0])
    limit = writer.position
    writer.append_metrics(2.0, 1, [0, 2.0])
    decoder = JournalDecoder(writer.directory)
    first = decoder.read(limit)
    assert first is not None and list(first.metrics["x"].values) == [1.0]
    second = decoder.read()
    assert second is not None and list(second.metrics["x"].values) == [2.0]
    writer.close()


def _segment(writer: j.JournalWriter, index: int = 0) -> Path:
    return writer.directory / f"{index:06d}.seg"


def _three_points(tmp_path: Path) -> tuple[j.JournalWriter, int]:
    writer = _writer(tmp_path)
    _start(writer)
    writer.append_key(0, "x")
    for step in range(3):
        writer.append_metrics(1.0 + step, step, [0, float(step)])
    return writer, writer.position


def test_garbled_tail_record_is_ignored(tmp_path: Path) -> None:
    writer, end = _three_points(tmp_path)
    writer.close()
    with open(_segment(writer), "r+b") as fh:
        fh.seek(end - j.CRC.size - 3)  # inside the last record's value
        fh.write(b"\xff\xfe\xfd")
    decoder = JournalDecoder(writer.directory)
    batch = decoder.read()
    assert batch is not None
    assert list(batch.metrics["x"].values) == [0.0, 1.0]
    assert batch.position < end
    assert [(start, stop) for start, stop, _size in decoder.damage] == [(batch.position, end)]


def test_truncated_tail_record_is_ignored(tmp_path: Path) -> None:
    writer, end = _three_points(tmp_path)
    writer.close()
    with open(_segment(writer), "r+b") as fh:
        fh.truncate(end - 5)
    decoder = JournalDecoder(writer.directory)
    batch = decoder.read()
    assert batch is not None
    assert list(batch.metrics["x"].steps) == [0, 1]
    assert decoder.cut_short == [end - 5]
    report = journal_damage(decoder)
    assert report is not None
    assert report.startswith(f"segment 0 bytes {batch.position}-")
    assert report.endswith(f"segment 0 is cut short at byte {end - 5}: what followed is lost")


def test_records_continue_in_a_new_segment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(j, "SEGMENT_SIZE", 256)
    writer = _writer(tmp_path)
    _start(writer)
    writer.append_key(0, "x")
    for step in range(40):
        writer.append_metrics(float(step), step, [0, float(step)])
    assert _segment(writer, 3).exists()
    batch = JournalDecoder(writer.directory).read()
    assert batch is not None
    assert list(batch.metrics["x"].steps) == list(range(40))
    assert batch.position == writer.position
    writer.close()


def test_record_larger_than_a_segment_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(j, "SEGMENT_SIZE", 256)
    writer = _writer(tmp_path)
    with pytest.raises(ValueError, match="larger than a journal segment"):
        writer.append_json(j.T_NOTES, "x" * 1000)
    writer.close()


def test_journal_without_its_run_yields_nothing(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.append_key(0, "x")  # no START/ATTACH record first
    assert JournalDecoder(writer.directory).read() is None
    writer.close()


def test_metric_columns_round_trip_with_other_records(tmp_path: Path) -> None:
    from array import array

    writer = _writer(tmp_path)
    _start(writer)
    writer.append_key(0, "loss")
    writer.append_metrics(1.0, 0, [0, 9.0])
    writer.append_metric_column(2.0, 0, array("q", [1, 2, -5]), array("d", [0.5, math.inf, 0.25]))
    writer.append_metric_column(3.0, 0, array("q"), array("d"))  # nothing to add
    writer.append_metrics(4.0, 7, [0, 1.5])
    batch = JournalDecoder(writer.directory).read()
    assert batch is not None
    loss = batch.metrics["loss"]
    assert list(loss.steps) == [0, 1, 2, -5, 7]
    assert list(loss.values) == [9.0, 0.5, math.inf, 0.25, 1.5]
    assert list(loss.times) == [1.0, 2.0, 2.0, 2.0, 4.0]
    assert batch.position == writer.position
    writer.close()


def test_grouped_console_lines_and_the_earlier_list_form_both_decode(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    _start(writer)
    writer.append_json(j.T_OUTPUT, [["stdout", 1.0, "old form"]])
    writer.append_json(
        j.T_OUTPUT, {"groups": [["stdout", 2.0, ["a", "b"]], ["stderr", 2.5, ["oops"]]]}
    )
    batch = JournalDecoder(writer.directory).read()
    assert batch is not None
    assert batch.output == [
        ("stdout", 1.0, "old form"),
        ("stdout", 2.0, "a"),
        ("stdout", 2.0, "b"),
        ("stderr", 2.5, "oops"),
    ]
    writer.close()


def _hundred_points(tmp_path: Path) -> tuple[j.JournalWriter, list[int]]:
    """A closed journal of a start, a key and 100 points; where each record begins."""
    writer = _writer(tmp_path)
    _start(writer)
    starts = [writer.position]
    writer.append_key(0, "x")
    for step in range(100):
        starts.append(writer.position)
        writer.append_metrics(1.0, step, [0, float(step)])
    starts.append(writer.position)
    writer.close()
    return writer, starts


def _overwrite(writer: j.JournalWriter, offset: int, data: bytes) -> None:
    with open(_segment(writer), "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def test_a_damaged_record_costs_that_record_only(tmp_path: Path) -> None:
    writer, starts = _hundred_points(tmp_path)
    bad = starts[51]  # the point of step 50
    _overwrite(writer, bad + 10, b"\x13\x37")
    decoder = JournalDecoder(writer.directory)
    batch = decoder.read()
    assert batch is not None
    assert list(batch.metrics["x"].steps) == [s for s in range(100) if s != 50]
    assert [(a, b) for a, b, _size in decoder.damage] == [(bad, starts[52])]
    assert batch.position == starts[-1]
    assert journal_damage(decoder) == (
        f"segment 0 bytes {bad}-{starts[52]} unreadable ({starts[52] - bad} bytes, about 1 record)"
    )


def test_an_erased_header_is_damage_not_the_end_of_the_journal(tmp_path: Path) -> None:
    writer, starts = _hundred_points(tmp_path)
    _overwrite(writer, starts[31], bytes(j.HEADER.size))  # step 30's length reads 0
    decoder = JournalDecoder(writer.directory)
    batch = decoder.read()
    assert batch is not None
    assert len(batch.metrics["x"].steps) == 99
    assert len(decoder.damage) == 1


def test_points_whose_key_name_was_damaged_are_kept_under_a_placeholder(tmp_path: Path) -> None:
    writer, starts = _hundred_points(tmp_path)
    _overwrite(writer, starts[0] + 6, b"\xff")  # inside the key record
    decoder = JournalDecoder(writer.directory)
    batch = decoder.read()
    assert batch is not None
    assert len(batch.metrics["unnamed_key_0"].steps) == 100
    report = journal_damage(decoder)
    assert report is not None and "kept as unnamed_key_0" in report


def test_a_damaged_start_record_leaves_the_run_named_by_the_directory(tmp_path: Path) -> None:
    writer, _starts = _hundred_points(tmp_path)
    _overwrite(writer, 8, b"\x00\xff\x00\xff")
    decoder = JournalDecoder(writer.directory)
    batch = decoder.read()
    assert batch is not None
    assert batch.run_uuid == "run-uuid" and batch.start is None
    assert decoder.start_lost
    assert len(batch.metrics["x"].steps) == 100


def test_resync_finds_the_next_valid_record(tmp_path: Path) -> None:
    writer, starts = _hundred_points(tmp_path)
    data = memoryview(_segment(writer).read_bytes()[: starts[-1] + 64])
    assert j.resync(data, starts[10]) == starts[11]
    assert j.resync(data, starts[-2]) == len(data)  # nothing valid after the last record


def test_a_long_damaged_region_is_crossed_quickly(tmp_path: Path) -> None:
    """Random bytes hold many headers of plausible type and length; their payload shape is
    checked before a checksum of up to megabytes (8 MiB of them took some 20 s before)."""
    import os
    import time

    writer, starts = _hundred_points(tmp_path)
    garbage = os.urandom(8 << 20)
    _overwrite(writer, starts[-1], garbage)
    started = time.monotonic()
    decoder = JournalDecoder(writer.directory)
    batch = decoder.read()
    assert time.monotonic() - started < 15
    assert batch is not None and len(batch.metrics["x"].steps) == 100
    assert [(a, b) for a, b, _size in decoder.damage] == [
        (starts[-1], starts[-1] + len(garbage.rstrip(b"\0")))
    ]


def test_damage_at_the_end_of_a_segment_does_not_lose_the_next_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(j, "SEGMENT_SIZE", 512)
    writer = _writer(tmp_path)
    _start(writer)
    writer.append_key(0, "x")
    ends = []
    for step in range(40):
        writer.append_metrics(float(step), step, [0, float(step)])
        ends.append(writer.position)
    writer.close()
    assert _segment(writer, 2).exists()
    last_in_first = max(e for e in ends if e < 512)
    _overwrite(writer, last_in_first - 6, b"\xff\xff")  # the first segment's last record
    decoder = JournalDecoder(writer.directory)
    batch = decoder.read()
    assert batch is not None
    steps = list(batch.metrics["x"].steps)
    assert len(steps) == 39 and steps[-1] == 39
    assert len(decoder.damage) == 1


def test_live_decoding_of_wide_records_matches_the_checksummed_reading(tmp_path: Path) -> None:
    """The ingester's numpy decoding (a few records of many keys each, the same keys in
    the same order or not, keys named between them) gives what recovery's reading does."""
    writer = _writer(tmp_path)
    _start(writer)
    for kid in range(40):
        writer.append_key(kid, f"k{kid}")
    for step in range(3):
        writer.append_metrics(
            float(step), step, [x for kid in range(40) for x in (kid, step + kid / 100)]
        )
    for step in range(3, 5):  # the same keys, another order
        writer.append_metrics(
            float(step), step, [x for kid in reversed(range(40)) for x in (kid, -step)]
        )
    writer.append_key(40, "late")
    for step in range(5, 8):
        writer.append_metrics(
            float(step), step, [x for kid in range(1, 41) for x in (kid, step * 2.0)]
        )
    live = JournalDecoder(writer.directory).read(writer.position, trusted=True)
    checked = JournalDecoder(writer.directory).read(writer.position)
    assert live is not None and checked is not None
    assert (
        sorted(live.metrics)
        == sorted(checked.metrics)
        == sorted([*(f"k{i}" for i in range(40)), "late"])
    )
    for key, cols in checked.metrics.items():
        got = live.metrics[key]
        assert (list(got.steps), list(got.values), list(got.times)) == (
            list(cols.steps),
            list(cols.values),
            list(cols.times),
        ), key
    assert list(live.metrics["k0"].steps) == [0, 1, 2, 3, 4]
    assert list(live.metrics["k7"].values) == [0.07, 1.07, 2.07, -3, -4, 10.0, 12.0, 14.0]
    writer.close()


def test_a_keys_record_defines_many_keys_read_live_checksummed_and_on_seek(
    tmp_path: Path,
) -> None:
    """A ``T_KEYS`` record (a wide call's new keys at once) names its keys for every reader;
    single ``T_KEY`` records, what journals of earlier versions hold, are read beside it."""
    writer = _writer(tmp_path)
    _start(writer)
    writer.append_key(0, "old")
    names = [f"wide/é{kid}" for kid in range(1, 301)]
    writer.append_keys(1, names)
    flat = [x for kid in range(301) for x in (kid, kid / 2)]
    writer.append_metrics(1.0, 0, flat)
    middle = writer.position
    writer.append_metrics(2.0, 1, flat)
    expected = {"old": [0.0, 0.0], **{n: [k / 2, k / 2] for k, n in enumerate(names, 1)}}
    for trusted in (True, False):
        batch = JournalDecoder(writer.directory).read(writer.position, trusted=trusted)
        assert batch is not None
        assert {k: list(c.values) for k, c in batch.metrics.items()} == expected
    decoder = JournalDecoder(writer.directory)
    decoder.seek(middle)  # what was before is in the store: the keys are learnt on the way
    batch = decoder.read()
    assert batch is not None
    assert sorted(batch.metrics) == sorted(expected)
    assert [r[0] for r in j.read_records(writer.directory, 0)].count(j.T_KEYS) == 1
    writer.close()


def test_keys_beyond_a_records_size_go_into_several_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(j, "KEYS_PER_RECORD", 5)
    writer = _writer(tmp_path)
    _start(writer)
    names = [f"key-number-{kid:04d}" for kid in range(50)]
    writer.append_keys(0, names)
    writer.append_metrics(1.0, 0, [x for kid in range(50) for x in (kid, float(kid))])
    types = [r[0] for r in j.read_records(writer.directory, 0)]
    assert types.count(j.T_KEYS) == 10
    batch = JournalDecoder(writer.directory).read()
    assert batch is not None
    assert {k: list(c.values) for k, c in batch.metrics.items()} == {
        n: [float(i)] for i, n in enumerate(names)
    }
    writer.close()


def test_a_damaged_keys_record_keeps_its_points_under_placeholders(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    _start(writer)
    keys_at = writer.position
    writer.append_keys(0, ["a", "b", "c"])
    writer.append_metrics(1.0, 0, [0, 1.0, 1, 2.0, 2, 3.0])
    _overwrite(writer, keys_at + 12, b"\xff")  # inside the record's key names
    decoder = JournalDecoder(writer.directory)
    batch = decoder.read()
    assert batch is not None
    assert {k: list(c.values) for k, c in batch.metrics.items()} == {
        "unnamed_key_0": [1.0],
        "unnamed_key_1": [2.0],
        "unnamed_key_2": [3.0],
    }
    assert len(decoder.damage) == 1


def _block_or_columns(batch: WriteBatch) -> dict[str, tuple[list[Any], list[Any], list[Any]]]:
    metrics = batch.metric_block.columns() if batch.metric_block is not None else batch.metrics
    return {k: (list(c.steps), list(c.values), list(c.times)) for k, c in metrics.items()}


@pytest.mark.parametrize("shape", ["same keys", "another order", "a key added", "one-key points"])
def test_wide_records_read_column_wise_match_the_checksummed_reading(
    tmp_path: Path, shape: str
) -> None:
    """A batch of records that all log the same keys in the same order comes as one
    ``MetricBlock`` (keys sorted by name) when asked for; any other shape as columns a key;
    either way what recovery's checksummed reading gives."""
    writer = _writer(tmp_path)
    _start(writer)
    names = [f"k{kid}" for kid in range(40)]
    writer.append_keys(0, names)
    for step in range(6):
        kids = list(range(40))
        if shape == "another order" and step >= 3:
            kids.reverse()
        writer.append_metrics(float(step), step, [x for k in kids for x in (k, step + k / 100)])
        if shape == "a key added" and step == 2:
            writer.append_key(40, "late")
            for later in range(3, 6):
                writer.append_metrics(
                    float(later), later, [x for k in range(41) for x in (k, later * 2.0)]
                )
            break
        if shape == "one-key points" and step == 4:
            writer.append_metric(9.0, 99, 3, -1.0)
    live = JournalDecoder(writer.directory).read(writer.position, trusted=True, blocks=True)
    checked = JournalDecoder(writer.directory).read(writer.position)
    assert live is not None and checked is not None
    assert (live.metric_block is not None) == (shape == "same keys")
    if live.metric_block is not None:
        assert live.metric_block.keys == sorted(names) and not live.metrics
        assert not live.is_empty()
    assert _block_or_columns(live) == _block_or_columns(checked)
    writer.close()
