"""Journal → store: decoding records into WriteBatches, the background ingester of a live
run, and recovery of journals whose writer died.

A journal may hold several runs' records (a sweep's in-process trials on the sweep run's
writer): a batch never spans two runs, so the store's exactly-once rule per (writer,
position) holds unchanged, and the ingester tells each run its number (``share``)."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from array import array
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkeep import _journal as j
from labkeep.entities import Artifact
from labkeep.errors import LabkeepError, NotFoundError
from labkeep.store._base import MetricColumns, RunFinish, RunStart, WriteBatch

if TYPE_CHECKING:
    from labkeep.store._base import Store

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

    def read(self, limit: int | None = None, *, trusted: bool = False) -> WriteBatch | None:
        """The next batch of records up to ``limit``, or None when there is nothing new.

        ``trusted`` skips checksums: the live writer's own records below its position are
        complete, and long runs of same-shaped metric records are then decoded with numpy.
        """
        batch: WriteBatch | None = None
        columns: dict[int, MetricColumns] = {}
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
                        consumed, n_points = _bulk_decode(data, pos, end - pos, columns)
                        if consumed:
                            self.last_time = j.METRICS_HEAD.unpack_from(
                                data, pos + consumed - (end - pos) + j.HEADER.size
                            )[0]
                            pos += consumed
                            points += n_points
                            position = base + pos
                            continue
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
                    points += _decode_column(data, pos + j.HEADER.size, columns)
                    self.last_time = j.COLUMN_HEAD.unpack_from(data, pos + j.HEADER.size)[0]
                elif rtype == j.T_KEY:
                    payload = data[pos + j.HEADER.size : body_end]
                    keys[j.KEY_ID.unpack_from(payload)[0]] = bytes(payload[4:]).decode()
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
        batch.metrics = {self._key_name(kid): cols for kid, cols in columns.items()}
        self.position = position
        return batch


_BULK_MIN_RECORDS = 64


def _bulk_decode(
    data: memoryview, pos: int, size: int, columns: dict[int, MetricColumns]
) -> tuple[int, int]:
    """Decode the run of same-sized metric records starting at ``pos`` with numpy.

    Returns (bytes consumed, points); (0, 0) when the run is too short to be worth it.
    """
    count = (len(data) - pos) // size
    if count < _BULK_MIN_RECORDS:
        return 0, 0
    import numpy as np

    n = (size - j.OVERHEAD - j.METRICS_HEAD.size) // j.PAIR.size
    raw = np.frombuffer(data, dtype=np.uint8, count=count * size, offset=pos).reshape(count, size)
    same = (raw[:, : j.HEADER.size] == raw[0, : j.HEADER.size]).all(axis=1)
    if not same.all():
        count = int(np.argmin(same))
        if count < _BULK_MIN_RECORDS:
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
    for col in range(n):
        col_keys = key_ids[:, col]
        first = int(col_keys[0])
        if (col_keys == first).all():
            _extend(columns, first, steps, values[:, col], times)
        else:
            for kid in np.unique(col_keys):
                mask = col_keys == kid
                _extend(columns, int(kid), steps[mask], values[:, col][mask], times[mask])
    return count * size, count * n


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
    elif rtype == j.T_SNAPSHOT:
        batch.snapshot = data
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


def ingest_all(decoder: JournalDecoder, store: Store, limit: int | None = None) -> int | None:
    """Apply every batch up to ``limit``; return the run number (None if nothing was read)."""
    number = None
    while True:
        batch = decoder.read(limit)
        if batch is None:
            return number
        number = store.apply(batch)


def disk_full(exc: BaseException, directory: Path | None = None) -> bool:
    """Whether ``exc`` says the disk is full (SQLite, PostgreSQL or a file write), or came
    while ``directory``'s file system has (almost) no space left: SQLite then often says
    only "disk I/O error" (it could not size its shared-memory file). Retrying soon will not
    help, and the journal keeps everything meanwhile."""
    if isinstance(exc, OSError) and exc.errno in j.NO_SPACE:
        return True
    if getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL:
        return True
    if getattr(exc, "sqlstate", None) == _PG_DISK_FULL:
        return True
    if directory is None:
        return False
    try:
        fs = os.statvfs(directory)
    except OSError:
        return False
    return fs.f_bavail * fs.f_frsize < _NEARLY_FULL


_SQLITE_FULL = 13
_PG_DISK_FULL = "53100"
_NEARLY_FULL = 1 << 20


class Ingester:
    """Background thread that moves a live writer's journal into the store.

    It never raises into the training code: a failing store is reported once on stderr and
    retried; everything stays in the journal meanwhile, so nothing is lost.
    """

    def __init__(
        self,
        journal: j.JournalWriter,
        store: Store,
        *,
        interval: float = 0.5,
        heartbeat_every: float = 30.0,
    ) -> None:
        self.journal = journal
        self.store = store
        self.decoder = JournalDecoder(journal.directory)
        self.interval = interval
        self.heartbeat_every = heartbeat_every
        #: The number of the writer's own run (the journal's first), once the store has it.
        self.number: int | None = None
        self.registered = threading.Event()
        self.error: BaseException | None = None
        self._own_run: str | None = None
        #: Runs sharing this writer (``share``) that the store has not numbered yet.
        self._shares: dict[str, IngesterShare] = {}
        self._wake = threading.Event()
        #: Held while ingesting, by the thread or by a shared run ending (``ingest_now``).
        self._ingesting = threading.Lock()
        self._stop = False
        self._caught_up = threading.Condition()
        self._thread: threading.Thread | None = None
        self._last_heartbeat = 0.0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="labkeep-ingest", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        delay = self.interval
        while True:
            self._wake.wait(delay)
            self._wake.clear()
            stopping = self._stop
            try:
                with self._ingesting:
                    self._ingest_once()
                delay = self.interval
                self.error = None
            except Exception as exc:  # the store is down or broken: retry, keep the journal
                if self.error is None or type(exc) is not type(self.error):
                    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    print(
                        f"labkeep: cannot write to the store yet ({msg}); retrying", file=sys.stderr
                    )
                self.error = exc
                delay = min(max(delay * 2, 0.2), 10.0)
                if stopping and (
                    isinstance(exc, NotFoundError | LabkeepError)
                    or disk_full(exc, self.journal.directory)
                ):
                    return  # what is left stays in the journal for the next reader
            with self._caught_up:
                self._caught_up.notify_all()
            if stopping and self.error is None:
                return

    def share(self, run_uuid: str) -> IngesterShare:
        """``run_uuid``'s part of this ingester, for a run whose records go to this writer
        (``JournalWriter.share``); made before the run's first record is written."""
        share = IngesterShare(self, run_uuid)
        self._shares[run_uuid] = share
        return share

    def _ingest_once(self) -> None:
        limit = self.journal.position
        beaten: set[str] = set()
        while self.decoder.position < limit:
            start = self.decoder.position
            batch = self.decoder.read(limit, trusted=True)
            if batch is None:
                break
            now = time.time()
            if now - self._last_heartbeat >= self.heartbeat_every:
                batch.heartbeat = now
            try:
                number = self.store.apply(batch)
            except BaseException:
                self.decoder.position = start  # not in the store: read it again next time
                raise
            if batch.heartbeat is not None:
                self._last_heartbeat = now
                beaten.add(batch.run_uuid)
            self._registered(batch.run_uuid, number)
        due = self.number is not None and time.time() - self._last_heartbeat >= self.heartbeat_every
        if due or beaten:
            # Every run still writing here beats, not only the one whose records came last.
            runs = [run for run in self.decoder.open_runs if run not in beaten]
            if due and not runs and not beaten:
                runs = [self.decoder.run_uuid or ""]
            now = time.time()
            for run in runs:
                self.store.apply(
                    WriteBatch(
                        run_uuid=run,
                        writer=self.decoder.writer,
                        position=self.decoder.position,
                        heartbeat=now,
                    )
                )
            self._last_heartbeat = now

    def _registered(self, run_uuid: str, number: int) -> None:
        if self._own_run is None:
            self._own_run = run_uuid  # a journal begins with its writer's own run
        if run_uuid == self._own_run:
            self.number = number
            self.registered.set()
            return
        share = self._shares.pop(run_uuid, None)
        if share is not None:
            share.number = number
            share.registered.set()

    def caught_up(self) -> bool:
        return self.decoder.position >= self.journal.position

    def ingest_now(self, timeout: float | None = None) -> bool:
        """Move everything journalled so far into the store on the calling thread: what a
        shared run's end waits for, without handing over to the ingester's thread and back
        (two thread switches cost more than the write on a loaded machine). When the store
        refuses it, the thread retries it as ever and this waits as ``flush`` does."""
        if not self._ingesting.acquire(timeout=-1 if timeout is None else timeout):
            return False
        try:
            self._ingest_once()
            self.error = None
        except Exception:
            self._wake.set()  # the thread reports the error and retries
        else:
            with self._caught_up:
                self._caught_up.notify_all()
            return True
        finally:
            self._ingesting.release()
        return self.flush(timeout)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything journalled so far is in the store; False on timeout."""
        target = self.journal.position
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._caught_up:
            while self.decoder.position < target:
                if self._thread is None or not self._thread.is_alive():
                    return False
                self._wake.set()
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._caught_up.wait(0.05 if remaining is None else min(remaining, 0.05))
        return True

    def stop(self, timeout: float | None = None) -> bool:
        """Ingest what is left, then end the thread; False if it could not finish in time."""
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive() and self.caught_up()
        return self.caught_up()


class IngesterShare:
    """One run's part of another run's ingester (``Ingester.share``): a sweep's in-process
    trial, whose records go to the sweep run's journal. What a run asks of its ingester
    (its number, to be flushed at its end) without a thread or a journal of its own."""

    def __init__(self, ingester: Ingester, run_uuid: str) -> None:
        self.ingester = ingester
        self.run_uuid = run_uuid
        self.number: int | None = None
        self.registered = threading.Event()

    @property
    def error(self) -> BaseException | None:
        return self.ingester.error

    def share(self, run_uuid: str) -> IngesterShare:
        return self.ingester.share(run_uuid)

    def wake(self) -> None:
        self.ingester.wake()

    def caught_up(self) -> bool:
        return self.ingester.caught_up()

    def stop(self, timeout: float | None = None) -> bool:
        """The run has ended: put its records in the store now (the ingester goes on for
        the others); False if they are not there within ``timeout``."""
        return self.ingester.ingest_now(timeout)


#: What a live run's records are ingested by: an ingester of its own, or a share of another's.
RunIngester = Ingester | IngesterShare
