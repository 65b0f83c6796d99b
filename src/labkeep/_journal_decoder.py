"""Journal → WriteBatches: the reading half of the journal format written by ``_journal``.

:class:`JournalDecoder` reads one writer's journal from a position and turns its records into
:class:`~labkeep._write_batch.WriteBatch` objects (what ``Store.apply`` takes), remembering
key ids between reads; :func:`journal_damage` says in words what a checksummed read had to
skip. It sits with the writer below the stores and imports nothing from ``store/`` or
above: the live ingester (``_ingest``), crash recovery (``_client``), ``labkeep sync``
(``_spool``) and the HTTP store's offline spool (``store/rest``) all decode through it.
"""

from __future__ import annotations

import json
import struct
import sys
from array import array
from itertools import pairwise, repeat
from pathlib import Path
from typing import Any

from labkeep import _journal as j
from labkeep._write_batch import (
    MetricBlock,
    MetricColumns,
    RunFinish,
    RunResume,
    RunStart,
    WriteBatch,
)
from labkeep.entities import Artifact, MediaEntry

#: The most metric points one batch holds (a batch is one store transaction).
MAX_BATCH_POINTS = 1_000_000


class JournalDecoder:
    """Reads one writer's journal into WriteBatches, remembering key ids between reads.

    Reading with checksums (recovery), it skips damaged records and notes them in
    ``damage``; ``placeholder_start`` then creates the run if its start record was lost.
    A ``T_START`` or ``T_ATTACH`` record naming another run ends a batch: the next batch is
    that run's, with its own key ids.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.writer = directory.name
        self.keys: dict[int, str] = {}
        self.run_uuid: str | None = None
        self.position = 0
        self.finished = False  # the run of the records read last has ended
        self.started = False  # this writer's journal created its run
        #: The runs whose records began in this journal and have not ended, in order:
        #: True for those it created (``T_START``), False for those it attached to.
        self.open_runs: dict[str, bool] = {}
        self._run_keys: dict[str, dict[int, str]] = {}
        self.last_time: float | None = None
        #: Damaged byte ranges (global positions) met so far, with the size of the record
        #: read before each (what estimates how many records a range held).
        self.damage: list[tuple[int, int, int]] = []
        #: Where a segment file was cut short (truncated or emptied).
        self.cut_short: list[int] = []
        #: Key ids whose name record was damaged; their points are kept under ``unnamed_key_<id>``.
        self.unnamed_keys: set[int] = set()
        self.start_lost = False
        self.placeholder_start: RunStart | None = None
        self._record_size = 0

    def seek(self, position: int) -> None:
        """Continue after ``position`` (already in the store), learning keys and the run on the way."""
        for rtype, _end, payload in j.read_records(self.directory, 0, position):
            if rtype == j.T_KEY:
                self.keys[j.KEY_ID.unpack_from(payload)[0]] = bytes(payload[4:]).decode()
            elif rtype == j.T_KEYS:
                _read_keys(payload, self.keys)
            elif rtype in (j.T_START, j.T_ATTACH):
                self._begin(json.loads(bytes(payload))["uuid"], rtype == j.T_START)
            elif rtype == j.T_FINISH:
                self._end()
        self.position = position

    def _begin(self, run_uuid: str, started: bool) -> None:
        """The records that follow are ``run_uuid``'s."""
        previous = self.run_uuid
        if previous == run_uuid:
            if started:
                self.started = True
                self.open_runs[run_uuid] = True
            return
        if previous is not None and previous not in self.open_runs:
            self._run_keys.pop(previous, None)  # an ended run logs nothing more
        self.run_uuid = run_uuid
        self.started = started
        self.finished = False
        self.keys = self._run_keys.setdefault(run_uuid, {})
        if started or run_uuid not in self.open_runs:
            self.open_runs[run_uuid] = started

    def _end(self) -> None:
        self.finished = True
        if self.run_uuid is not None:
            self.open_runs.pop(self.run_uuid, None)

    def _key_name(self, kid: int) -> str:
        name = self.keys.get(kid)
        if name is None:
            self.unnamed_keys.add(kid)
            name = f"unnamed_key_{kid}"
        return name

    def _note_damage(self, base: int, data: memoryview, pos: int) -> int | None:
        """Where reading resumes after the bad record at ``pos``; None when no valid record
        follows in this segment (the position then stays before the damage). Damage is
        noted once."""
        span = j.damaged_span(data, pos)
        if span is None:
            return None
        start, end = base + span[0], base + span[1]
        if not self.damage or self.damage[-1][0] != start:
            self.damage.append((start, end, self._record_size))
        return span[1] if j.next_record(data, span[1]) is not None else None

    def read(
        self, limit: int | None = None, *, trusted: bool = False, blocks: bool = False
    ) -> WriteBatch | None:
        """The next batch of records up to ``limit``, or None when there is nothing new.

        ``trusted`` skips checksums: the live writer's own records below its position are
        complete, and long runs of same-shaped metric records are then decoded with numpy.
        ``blocks`` (with ``trusted``): a batch whose metrics all come from such runs, every
        record logging the same keys in the same order (a wide run), gets them as one
        ``metric_block`` instead of an object a key.
        """
        batch: WriteBatch | None = None
        columns: dict[int, MetricColumns] = {}
        #: Runs of same-keyed records not yet in ``columns`` (kept whole while they are all
        #: the batch's metrics); None once they cannot make a block.
        rows: _Rows | None = _Rows() if blocks and trusted else None
        points = 0
        keys = self.keys
        head = j.METRICS_HEAD
        pair = j.PAIR
        position = self.position
        verify = not trusted
        another_run = False
        for base, data in j.read_segments(self.directory, self.position, limit):
            pos = 0
            while points < MAX_BATCH_POINTS:
                found = j.next_record(data, pos, verify)
                if found is None:
                    if verify and (resume := self._note_damage(base, data, pos)) is not None:
                        pos = resume
                        position = base + pos
                        continue
                    break
                rtype, body_end, end = found
                self._record_size = end - pos
                if rtype == j.T_START or rtype == j.T_ATTACH:
                    run_uuid = json.loads(bytes(data[pos + j.HEADER.size : body_end]))["uuid"]
                    if batch is not None and run_uuid != batch.run_uuid:
                        another_run = True  # its records make the next batch
                        break
                    self._begin(run_uuid, rtype == j.T_START)
                    keys = self.keys
                if batch is None:
                    run_uuid = self.run_uuid
                    if run_uuid is None:
                        if not self.damage:
                            return None  # a journal begins with its run
                        # Its first record was damaged: the directory still names the run.
                        run_uuid = j.writer_run_uuid(self.directory)
                        self._begin(run_uuid, True)
                        keys = self.keys
                        self.start_lost = True
                    batch = WriteBatch(run_uuid=run_uuid, writer=self.writer, position=base + end)
                    if self.start_lost and self.placeholder_start is not None:
                        batch.start, self.placeholder_start = self.placeholder_start, None
                if rtype == j.T_METRICS:
                    if trusted:
                        consumed, n_points = _bulk_decode(data, pos, end - pos, columns, rows)
                        if consumed:
                            self.last_time = j.METRICS_HEAD.unpack_from(
                                data, pos + consumed - (end - pos) + j.HEADER.size
                            )[0]
                            pos += consumed
                            points += n_points
                            position = base + pos
                            continue
                    if rows is not None:
                        rows.flush(columns)
                        rows = None
                    t, step, n = head.unpack_from(data, pos + j.HEADER.size)
                    self.last_time = t
                    for kid, value in pair.iter_unpack(
                        data[pos + j.HEADER.size + head.size : body_end]
                    ):
                        cols = columns.get(kid)
                        if cols is None:
                            cols = columns[kid] = MetricColumns()
                        cols.steps.append(step)
                        cols.values.append(value)
                        cols.times.append(t)
                    points += n
                elif rtype == j.T_COLUMN:
                    if rows is not None:
                        rows.flush(columns)
                        rows = None
                    points += _decode_column(data, pos + j.HEADER.size, columns)
                    self.last_time = j.COLUMN_HEAD.unpack_from(data, pos + j.HEADER.size)[0]
                elif rtype == j.T_KEY:
                    payload = data[pos + j.HEADER.size : body_end]
                    keys[j.KEY_ID.unpack_from(payload)[0]] = bytes(payload[4:]).decode()
                    if trusted:
                        end = _decode_keys(data, end, keys)
                elif rtype == j.T_KEYS:
                    _read_keys(data[pos + j.HEADER.size : body_end], keys)
                else:
                    record = json.loads(bytes(data[pos + j.HEADER.size : body_end]))
                    _apply_json_record(batch, rtype, record)
                    if rtype == j.T_FINISH:
                        self._end()
                        self.last_time = record.get("end_time", self.last_time)
                pos = end
                position = base + pos
            if points >= MAX_BATCH_POINTS or another_run:
                break
            if verify:
                cut = j.segment_cut_short(self.directory, base)
                if cut is not None and cut not in self.cut_short:
                    self.cut_short.append(cut)
            elif pos + j.HEADER.size <= len(data) and j.HEADER.unpack_from(data, pos)[0] != 0:
                break  # a record being written: the live writer's limit ends here
        if batch is None:
            return None
        batch.position = position
        if rows is not None and rows.parts:
            if not columns:
                batch.metric_block = rows.block(self)
                self.position = position
                return batch
            rows.flush(columns)
        try:
            batch.metrics = dict(
                zip(map(self.keys.__getitem__, columns), columns.values(), strict=True)
            )
        except KeyError:  # a key whose name record was damaged
            batch.metrics = {self._key_name(kid): cols for kid, cols in columns.items()}
        self.position = position
        return batch


#: The fewest points a run of same-sized metric records must hold to be decoded with numpy
#: (below that, numpy's fixed cost is more than the per-point loop's).
_BULK_MIN_POINTS = 64


def _bulk_decode(
    data: memoryview,
    pos: int,
    size: int,
    columns: dict[int, MetricColumns],
    kept: _Rows | None = None,
) -> tuple[int, int]:
    """Decode the run of same-sized metric records starting at ``pos`` with numpy, into
    ``kept`` when every record logs its keys in the same order (and ``kept`` takes them),
    else into ``columns``.

    Returns (bytes consumed, points); (0, 0) when the run is too short to be worth it.
    """
    n = (size - j.OVERHEAD - j.METRICS_HEAD.size) // j.PAIR.size
    count = (len(data) - pos) // size
    if count < 2 or count * n < _BULK_MIN_POINTS:
        return 0, 0
    import numpy as np

    raw = np.frombuffer(data, dtype=np.uint8, count=count * size, offset=pos).reshape(count, size)
    same = (raw[:, : j.HEADER.size] == raw[0, : j.HEADER.size]).all(axis=1)
    if not same.all():
        count = int(np.argmin(same))
        if count < 2 or count * n < _BULK_MIN_POINTS:
            return 0, 0
    dtype = np.dtype(
        [
            ("length", "<u4"),
            ("type", "u1"),
            ("time", "<f8"),
            ("step", "<i8"),
            ("n", "<u2"),
            ("pairs", [("key", "<u4"), ("value", "<f8")], (n,)),
            ("crc", "<u4"),
        ]
    )
    recs = np.frombuffer(data, dtype=dtype, count=count, offset=pos)
    key_ids = recs["pairs"]["key"]
    values = recs["pairs"]["value"]
    steps = recs["step"]
    times = recs["time"]
    if (key_ids == key_ids[0]).all():
        if kept is None or not kept.add(key_ids[0], steps, values, times):
            if kept is not None:
                kept.flush(columns)
            _extend_rows(columns, key_ids[0].tolist(), steps, values, times)
        return count * size, count * n
    if kept is not None:
        kept.flush(columns)
    # The keys change places between records: group the points by key, each key's in
    # record order (a stable sort of the points taken record by record).
    flat_keys = key_ids.reshape(-1)
    order = np.argsort(flat_keys, kind="stable")
    by_key = flat_keys[order]
    flat_values = values.reshape(-1)[order]
    record = np.repeat(np.arange(count), n)[order]
    bounds = [0, *(np.flatnonzero(by_key[1:] != by_key[:-1]) + 1).tolist(), len(by_key)]
    for a, b in pairwise(bounds):
        rows = record[a:b]
        _extend(columns, int(by_key[a]), steps[rows], flat_values[a:b], times[rows])
    return count * size, count * n


class _Rows:
    """Runs of metric records that all log the same keys in the same order, kept as numpy
    arrays (a row of values per record) until the batch ends: then one ``MetricBlock``
    when they were all of its metrics, else added to the per-key columns in order."""

    def __init__(self) -> None:
        self.kids: Any = None
        self.parts: list[tuple[Any, Any, Any]] = []
        self.closed = False

    def add(self, kids: Any, steps: Any, values: Any, times: Any) -> bool:
        """Keep a run of records logging ``kids``; False when they are other keys (or
        another order) than the runs kept, or runs can no longer be kept."""
        if self.closed:
            return False
        if self.kids is None:
            self.kids = kids
        elif len(kids) != len(self.kids) or not (kids == self.kids).all():
            return False
        self.parts.append((steps, values, times))
        return True

    def flush(self, columns: dict[int, MetricColumns]) -> None:
        """Add what is kept to ``columns``; keep nothing from now on."""
        if not self.closed and self.kids is not None:
            kids = self.kids.tolist()
            for steps, values, times in self.parts:
                _extend_rows(columns, kids, steps, values, times)
        self.parts = []
        self.closed = True

    def block(self, decoder: JournalDecoder) -> MetricBlock:
        """The kept points, one column for all keys, keys sorted by name."""
        import numpy as np

        kids = self.kids.tolist()
        try:
            names = list(map(decoder.keys.__getitem__, kids))
        except KeyError:  # a key whose name record was damaged
            names = list(map(decoder._key_name, kids))
        order = sorted(range(len(names)), key=names.__getitem__)
        steps = np.concatenate([np.asarray(p[0], dtype=np.int64) for p in self.parts])
        times = np.concatenate([np.asarray(p[2], dtype=np.float64) for p in self.parts])
        values = np.concatenate([np.asarray(p[1], dtype=np.float64) for p in self.parts])
        # A row per key, in name order: each key's points end to end.
        by_key = np.ascontiguousarray(values.T[order], dtype=np.float64)
        n_keys, n_points = by_key.shape
        return MetricBlock(
            keys=[names[i] for i in order],
            lengths=[n_points] * n_keys,
            steps=np.tile(steps, n_keys).tobytes(),
            values=by_key.tobytes(),
            times=np.tile(times, n_keys).tobytes(),
        )


def _extend_rows(
    columns: dict[int, MetricColumns], kids: list[int], steps: Any, values: Any, times: Any
) -> None:
    """Add records that all log the keys ``kids`` in the same order: ``values`` holds one
    row per record. Every key shares the records' steps and times, so the per-key work is
    three buffer copies (a dict of 10,000 keys decoded a column at a time through numpy
    cost the ingest thread 30 µs a key)."""
    import numpy as np

    step_bytes = np.ascontiguousarray(steps, dtype=np.int64).tobytes()
    time_bytes = np.ascontiguousarray(times, dtype=np.float64).tobytes()
    by_key = np.ascontiguousarray(values.T, dtype=np.float64).tobytes()
    width = len(step_bytes)
    get = columns.get
    for i, kid in enumerate(kids):
        cols = get(kid)
        if cols is None:
            columns[kid] = MetricColumns(
                array("q", step_bytes),
                array("d", by_key[i * width : (i + 1) * width]),
                array("d", time_bytes),
            )
            continue
        cols.steps.frombytes(step_bytes)
        cols.values.frombytes(by_key[i * width : (i + 1) * width])
        cols.times.frombytes(time_bytes)


_KEY_HEAD = struct.Struct("<IBI")  # a T_KEY record's header and key id


def _decode_keys(data: memoryview, pos: int, keys: dict[int, str]) -> int:
    """Read the complete ``T_KEY`` records that follow one another from ``pos`` (a dict of
    many new keys logs one each) without checksums; return where they end. A record a
    function call each cost the ingest thread as much as a batch's metrics per key."""
    unpack = _KEY_HEAD.unpack_from
    size = len(data)
    while pos + _KEY_HEAD.size <= size:
        length, rtype, kid = unpack(data, pos)
        end = pos + j.OVERHEAD + length
        if rtype != j.T_KEY or length < j.KEY_ID.size or end > size:
            break
        keys[kid] = str(data[pos + _KEY_HEAD.size : end - j.CRC.size], "utf-8")
        pos = end
    return pos


def _read_keys(payload: memoryview, keys: dict[int, str]) -> None:
    """Add the keys a ``T_KEYS`` record defines (many keys, consecutive ids) to ``keys``."""
    first, n = j.KEYS_HEAD.unpack_from(payload)
    names = str(payload[j.KEYS_HEAD.size :], "utf-8").split("\0")
    keys.update(zip(range(first, first + n), names, strict=True))


def _decode_column(data: memoryview, pos: int, columns: dict[int, MetricColumns]) -> int:
    """Add a ``T_COLUMN`` record's points (one key, many steps) to ``columns``."""
    t, kid, n = j.COLUMN_HEAD.unpack_from(data, pos)
    start = pos + j.COLUMN_HEAD.size
    cols = columns.get(kid)
    if cols is None:
        cols = columns[kid] = MetricColumns()
    steps, values = array("q"), array("d")
    steps.frombytes(data[start : start + 8 * n])
    values.frombytes(data[start + 8 * n : start + 16 * n])
    if sys.byteorder == "big":  # the journal is little-endian
        steps.byteswap()
        values.byteswap()
    cols.steps += steps
    cols.values += values
    cols.times.frombytes(array("d", (t,)).tobytes() * n)
    return int(n)


def _extend(
    columns: dict[int, MetricColumns], kid: int, steps: Any, values: Any, times: Any
) -> None:
    import numpy as np

    cols = columns.get(kid)
    if cols is None:
        cols = columns[kid] = MetricColumns()
    # frombytes takes any buffer: one copy from the strided column, none through bytes.
    cols.steps.frombytes(np.ascontiguousarray(steps, dtype="<i8").data.cast("B"))
    cols.values.frombytes(np.ascontiguousarray(values, dtype="<f8").data.cast("B"))
    cols.times.frombytes(np.ascontiguousarray(times, dtype="<f8").data.cast("B"))


def _apply_json_record(batch: WriteBatch, rtype: int, data: Any) -> None:
    if rtype == j.T_START:
        batch.start = RunStart(**data)
    elif rtype == j.T_PARAMS:
        batch.params.update(data)
    elif rtype == j.T_SUMMARY:
        batch.summary.update(data)
    elif rtype == j.T_TAGS:
        for tag in data.get("add", ()):
            if tag in batch.tags_removed:
                batch.tags_removed.remove(tag)
            batch.tags_added.append(tag)
        for tag in data.get("remove", ()):
            if tag in batch.tags_added:
                batch.tags_added.remove(tag)
            batch.tags_removed.append(tag)
    elif rtype == j.T_NOTES:
        batch.notes = data
    elif rtype == j.T_ARTIFACT:
        batch.artifacts.append(Artifact(**data))
    elif rtype == j.T_FINISH:
        batch.finish = RunFinish(**data)
    elif rtype == j.T_ATTACH:
        if data.get("resume") is not None:
            batch.resume = RunResume(**data["resume"])
    elif rtype == j.T_SNAPSHOT:
        batch.snapshot = data
    elif rtype == j.T_MEDIA:
        for index, item in enumerate(data["items"]):
            batch.media.append(
                MediaEntry(
                    key=data["key"],
                    step=data["step"],
                    index=index,
                    kind=item["kind"],
                    sha256=item["sha256"],
                    size=item["size"],
                    time=data["time"],
                    meta=item.get("meta") or {},
                )
            )
    elif rtype == j.T_SNAPSHOT_ADD:
        for name, items in data.items():
            batch.snapshot_add.setdefault(name, []).extend(items)
    elif rtype == j.T_OUTPUT:
        if isinstance(data, dict):
            for stream, t, texts in data["groups"]:
                batch.output.extend(zip(repeat(stream), repeat(t), texts))
        else:
            batch.output.extend((stream, t, text) for stream, t, text in data)


def journal_damage(decoder: JournalDecoder) -> str | None:
    """What a checksummed read of a journal could not ingest, in words; None if nothing.

    >>> journal_damage(decoder)  # doctest: +SKIP
    'segment 0 bytes 390012-390020 unreadable (8 bytes, about 1 record)'
    """
    parts = []
    for start, end, record_size in decoder.damage:
        index, offset = divmod(start, j.SEGMENT_SIZE)
        size = end - start
        about = max(1, round(size / record_size)) if record_size else None
        records = "" if about is None else f", about {about} record{'s' * (about != 1)}"
        parts.append(
            f"segment {index} bytes {offset}-{offset + size} unreadable ({size} bytes{records})"
        )
    for cut in decoder.cut_short:
        index, offset = divmod(cut, j.SEGMENT_SIZE)
        if offset == 0:
            parts.append(f"segment {index} is empty: everything it held is lost")
        else:
            parts.append(f"segment {index} is cut short at byte {offset}: what followed is lost")
    if decoder.start_lost:
        parts.append("the run's start record was lost (experiment, name and start time)")
    if decoder.unnamed_keys:
        names = ", ".join(f"unnamed_key_{kid}" for kid in sorted(decoder.unnamed_keys))
        parts.append(f"metric names lost: their points are kept as {names}")
    return "; ".join(parts) or None


__all__ = ["MAX_BATCH_POINTS", "JournalDecoder", "journal_damage"]
