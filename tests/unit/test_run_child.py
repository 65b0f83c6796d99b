"""The output handoff between the pipe reader and the recorder (``runner._child``)."""

from __future__ import annotations

import threading

from labkeep.runner._child import _ChunkQueue, _coalesce


def test_coalesce_joins_runs_of_one_stream_up_to_the_limit_and_keeps_the_order() -> None:
    items: list[tuple[str, bytes] | None] = [
        ("stdout", b"aa"),
        ("stdout", b"bb"),
        ("stdout", b"cc"),
        ("stderr", b"E"),
        ("stdout", b"dddddd"),
        ("stdout", b"e"),
        None,
        ("stdout", b"after the end"),
    ]
    assert _coalesce(items, 4) == [
        ("stdout", b"aabb"),
        ("stdout", b"cc"),
        ("stderr", b"E"),
        ("stdout", b"dddddd"),  # a chunk bigger than the limit stays whole
        ("stdout", b"e"),
        None,
    ]
    assert _coalesce([("stdout", b"x")], 4) == [("stdout", b"x")]
    assert _coalesce([], 4) == []


def test_chunk_queue_hands_over_everything_and_waits_only_past_its_limit() -> None:
    queue = _ChunkQueue(limit=10)
    assert queue.take(timeout=0.01) == []
    queue.put(("stdout", b"12345"))
    queue.put(("stderr", b"67890"))  # 10 bytes queued: the next put waits
    done = threading.Event()

    def put_more() -> None:
        queue.put(("stdout", b"more"))
        queue.put(None)
        done.set()

    writer = threading.Thread(target=put_more)
    writer.start()
    assert not done.wait(0.1)
    assert queue.take(timeout=1) == [("stdout", b"12345"), ("stderr", b"67890")]
    writer.join(5)
    assert done.is_set()
    assert queue.take(timeout=1) == [("stdout", b"more"), None]
