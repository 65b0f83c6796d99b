"""The store protocol's batch bodies: both forms round-trip, malformed ones are refused."""

from __future__ import annotations

import math
from array import array

import pytest

from labkeep.entities import Artifact
from labkeep.errors import InvalidInputError
from labkeep.store._base import MetricColumns, RunFinish, RunStart, WriteBatch
from labkeep.store.rest._codec import (
    BATCH_MEDIA_TYPE,
    decode_batch,
    encode_batch,
    encode_batch_json,
    split_history,
)


def _batch() -> WriteBatch:
    return WriteBatch(
        run_uuid="u",
        writer="u.w",
        position=123,
        start=RunStart("u", "exp", "name", 1.5, "ann", "host", 9, None, "notes", None),
        params={"lr": 0.1, "big": 2**70, "nan": math.nan, "list": [1, "x", None]},
        summary={"inf": -math.inf},
        tags_added=["a"],
        tags_removed=["b"],
        notes="n",
        metrics={
            "loss": MetricColumns(
                array("q", [0, 5, -2]),
                array("d", [1.0, math.nan, math.inf]),
                array("d", [1.0, 2.0, 3.0]),
            ),
            "sys/cpu": MetricColumns(),
        },
        artifacts=[Artifact("m.bin", "0" * 64, 10, "output", 2.0)],
        finish=RunFinish("completed", 9.0, None, 0),
        heartbeat=8.0,
        snapshot={"seed": 1},
        output=[("stdout", 1.0, "hi")],
    )


def _same(a: WriteBatch, b: WriteBatch) -> None:
    assert a.params.keys() == b.params.keys() and math.isnan(b.params["nan"])
    assert {k: v for k, v in a.params.items() if k != "nan"} == {
        k: v for k, v in b.params.items() if k != "nan"
    }
    for key, cols in a.metrics.items():
        other = b.metrics[key]
        assert (cols.steps.tobytes(), cols.values.tobytes(), cols.times.tobytes()) == (
            other.steps.tobytes(),
            other.values.tobytes(),
            other.times.tobytes(),
        )
    rest = ("run_uuid", "writer", "position", "start", "summary", "tags_added", "tags_removed")
    rest += ("notes", "artifacts", "finish", "heartbeat", "snapshot", "output")
    assert [getattr(a, f) for f in rest] == [getattr(b, f) for f in rest]


def test_binary_and_json_forms_round_trip() -> None:
    batch = _batch()
    _same(batch, decode_batch(encode_batch(batch), BATCH_MEDIA_TYPE))
    _same(batch, decode_batch(encode_batch_json(batch), "application/json"))


@pytest.mark.parametrize(
    ("body", "media_type", "message"),
    [
        (encode_batch(_batch())[:-5], BATCH_MEDIA_TYPE, "truncated"),
        (encode_batch(_batch()) + b"x", BATCH_MEDIA_TYPE, "trailing"),
        (b"\xff\xff", BATCH_MEDIA_TYPE, "malformed"),
        (b"{}", "application/json", "malformed"),
        (b"{}", "text/plain", "not text/plain"),
    ],
)
def test_malformed_bodies_are_one_line_errors(body: bytes, media_type: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as info:
        decode_batch(body, media_type)
    assert "\n" not in str(info.value)


def test_history_body_splits_in_thirds() -> None:
    assert split_history(b"a" * 24) == (b"a" * 8, b"a" * 8, b"a" * 8)
    with pytest.raises(InvalidInputError):
        split_history(b"a" * 25)
