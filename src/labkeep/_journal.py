"""A per-writer, append-only journal of checksummed records in memory-mapped segment files.

``Run.log()`` hands its points to the journal by copying a packed record into a shared
memory map: no system call, no database round trip. The kernel owns the mapped pages, so
what was copied survives a SIGKILL of the process and is ingested into the store by the
process's background ingester, or, after a crash, by whoever opens the store next.

Layout: ``<journal_dir>/<writer>/<index:06d>.seg`` files of ``SEGMENT_SIZE`` bytes (sparse:
space is allocated ``ALLOC_CHUNK`` at a time, ahead of the records), plus ``lock``, held
with ``flock`` by the live writer. Writing a mapped page the file system cannot back kills
the process with SIGBUS, so pages are allocated with ``posix_fallocate`` before they are
written; on a full disk the writer degrades instead (see ``JournalWriter``): the program it
tracks goes on. A record is ``<u32 payload length><u8 type><payload><u32 crc32 of all before it>``;
a zero length ends a segment. Positions are global: ``index * SEGMENT_SIZE + offset``.

A record whose checksum fails is one of two things. A torn record (the process was killed
while copying it) has no checksum yet and only zeros after it: the writer never returned from
that ``log()``, so nothing is lost. Anything else is damage (flipped bits, a truncated or
emptied file): a reader resynchronises on the next valid record (a plausible header whose
checksum matches, see ``resync``) and reports the damaged byte range, so one bad record
costs that record and not the rest of the journal.

This module writes the format and reads raw records; ``_journal_decoder`` turns them into the
``WriteBatch`` objects stores apply. Both sit below ``store/`` and import nothing from it.

One writer may carry the records of several runs (a sweep's in-process trials share the sweep
run's writer: see ``SharedJournal``). A ``T_START`` or ``T_ATTACH`` record begins the records
of the run it names: the writer puts a ``T_ATTACH`` before a record whenever the run changes,
so a reader assigns every record to its run, and key ids are numbered per run.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import mmap
import os
import struct
import sys
import threading
import time
from array import array
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zlib import crc32

from labkeep.entities import DROPPED_POINTS_KEY

SEGMENT_SIZE = 64 << 20
#: Journal space is allocated for real this much at a time before its mapped pages are
#: written: on a full disk the allocation fails (ENOSPC) where a write to a sparse page
#: would kill the process with SIGBUS. One ``posix_fallocate`` per MiB costs nothing.
ALLOC_CHUNK = 1 << 20
#: Kept free at the end of the allocated space for what ends a run (the count of dropped
#: points, the finish record) when no more space can be had.
END_RESERVE = 64 << 10
#: What waits in memory while the disk is full, at most, before points are dropped.
BUFFER_BYTES = 16 << 20
#: How often a degraded writer looks for space again.
RETRY_EVERY_S = 0.1
#: The errors that mean "no space" (a full disk, a quota).
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_log = logging.getLogger(__name__)
HEADER = struct.Struct("<IB")
CRC = struct.Struct("<I")
OVERHEAD = HEADER.size + CRC.size

# Record types.
T_START = 1  # JSON: a new run (RunStart fields); the records that follow are its
T_ATTACH = 2  # JSON: {"uuid": …} the records that follow are this existing run's
T_KEY = 3  # <u32 key id><utf-8 key>
T_METRICS = 4  # <f64 time><i64 step><u16 n> then n times <u32 key id><f64 value>
T_PARAMS = 5  # JSON dict
T_SUMMARY = 6  # JSON dict
T_TAGS = 7  # JSON {"add": […], "remove": […]}
T_NOTES = 8  # JSON string
T_ARTIFACT = 9  # JSON Artifact fields
T_FINISH = 10  # JSON RunFinish fields
T_SNAPSHOT = 11  # JSON snapshot
T_OUTPUT = 12  # JSON console lines: {"groups": [[stream, time, [text, ...]], ...]}
#                (journals of earlier versions: [[stream, time, text], ...])
T_COLUMN = 13  # <f64 time><u32 key id><u32 n> then n <i64 step>, then n <f64 value>
T_SNAPSHOT_ADD = 14  # JSON {"inputs": [...], "seeds": [...]} from a writer without the snapshot
T_MEDIA = 15  # JSON {"key", "step", "time", "items": [{"kind", "sha256", "size", "meta"}, ...]}
#               media logged under one key at one step, their content already in the blob store
T_KEYS = 16  # <u32 first key id><u32 n> then the n keys in utf-8, NUL between them: keys
#              first … first + n - 1 at once (a wide log() call's new keys; T_KEY still read)

METRICS_HEAD = struct.Struct("<dqH")
COLUMN_HEAD = struct.Struct("<dII")
_BIG_ENDIAN = sys.byteorder == "big"
PAIR = struct.Struct("<Id")
KEY_ID = struct.Struct("<I")
KEYS_HEAD = struct.Struct("<II")
#: The most keys one T_KEYS record defines (keys hold no NUL and at most 250 characters,
#: so a record stays near 1 MiB at most); more keys take more records.
KEYS_PER_RECORD = 1024


def _segment_path(directory: Path, index: int) -> Path:
    return directory / f"{index:06d}.seg"


def _json_default(obj: object) -> object:
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


class JournalWriter:
    """Appends records for one writer. Thread-safe; ``append_*`` never blocks on I/O.

    Space is allocated (``posix_fallocate``) ``ALLOC_CHUNK`` at a time before mapped pages
    are written, so a full disk fails an allocation instead of killing the process with
    SIGBUS. Without space the writer is ``degraded``: it says so once (a logging warning),
    keeps records in memory up to ``buffer_bytes``, writes them as soon as space returns, and
    beyond that drops points and counts them (``dropped_points``), recording the count as the
    run's ``DROPPED_POINTS_KEY`` summary value.
    """

    def __init__(self, directory: Path, *, buffer_bytes: int | None = None) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._mm: mmap.mmap | None = None
        self._view = memoryview(b"")
        self._fd: int | None = None
        self._index = 0
        self._offset = 0
        #: Where the current segment's allocated space ends, and where the hot path must
        #: take the slow one (0 while degraded: every record goes through ``_room_for``).
        self._allocated = 0
        self._limit = 0
        self._lock_fd: int | None = None
        self._closed = False
        self._structs: dict[int, struct.Struct] = {}
        self.buffer_bytes = BUFFER_BYTES if buffer_bytes is None else buffer_bytes
        self._buffer: deque[tuple[bytes, int]] = deque()
        self._buffered = 0
        self.degraded = False
        self._warned = False
        self._retry_at = 0.0
        #: Points (and records of any kind) lost because neither the disk nor the buffer
        #: had room; ``_dropped_recorded`` is the count the journal holds so far.
        self.dropped_points = 0
        self.dropped_records = 0
        self._dropped_recorded = 0
        #: The run of the last record written, when another run's records came last: None
        #: for the writer's own run (see ``SharedJournal``).
        self._current: str | None = None
        self._own_uuid = writer_run_uuid(directory)

    def share(self, run_uuid: str) -> SharedJournal:
        """A writer for ``run_uuid``'s records on this one (a sweep's in-process trial on
        the sweep run's journal): no file of its own to create, and nothing to remove."""
        return SharedJournal(self, run_uuid)

    # -- lifecycle -------------------------------------------------------------------
    def open(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if exc.errno not in NO_SPACE:
                raise
            self._no_space(exc)  # everything waits in memory until the directory can be made
            return
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._lock_fd = fd
        self._map()

    def _map(self) -> bool:
        """Map segment ``_index`` with its first chunk allocated; False (degraded) when the
        disk has no room for it."""
        try:
            if self._lock_fd is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o644)
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._lock_fd = fd
            path = _segment_path(self.directory, self._index)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if exc.errno not in NO_SPACE:
                raise
            self._no_space(exc)
            return False
        try:
            os.ftruncate(fd, SEGMENT_SIZE)  # sparse: only allocated chunks take space
            self._mm = mmap.mmap(fd, SEGMENT_SIZE)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._view = memoryview(self._mm)
        self._offset = 0
        self._allocated = 0
        self._limit = 0
        return self._allocate(HEADER.size + _end_reserve() + 1)

    def _unmap(self) -> None:
        if self._mm is not None:
            self._view.release()
            self._mm.close()
            self._mm = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._limit = 0

    def _allocate(self, need: int) -> bool:
        """Allocate the current segment up to at least ``need`` bytes (whole chunks)."""
        if self._fd is None:
            return False
        end = min(SEGMENT_SIZE, -(-need // ALLOC_CHUNK) * ALLOC_CHUNK)
        if end <= self._allocated:
            return need <= self._allocated
        try:
            os.posix_fallocate(self._fd, self._allocated, end - self._allocated)
        except OSError as exc:
            # A nearly full disk may still hold what this record needs.
            end = min(end, -(-need // mmap.PAGESIZE) * mmap.PAGESIZE)
            try:
                os.posix_fallocate(self._fd, self._allocated, end - self._allocated)
            except OSError:
                self._no_space(exc)
                return False
        self._allocated = end
        self._retry_at = 0.0
        self._update_limit()
        return True

    def _update_limit(self) -> None:
        healthy = self._mm is not None and not self._buffer and not self._closed
        self._limit = self._allocated - _end_reserve() if healthy else 0

    def _no_space(self, exc: OSError) -> None:
        self.degraded = True
        self._limit = 0
        self._retry_at = time.monotonic() + RETRY_EVERY_S
        if not self._warned:
            self._warned = True
            _log.warning(
                "logging is degraded: no space for the journal in %s (%s). Your "
                "program goes on; up to %s of logged data waits in memory and is written "
                "when space returns, and points beyond that are dropped and counted on the run.",
                self.directory,
                exc.strerror or exc,
                _size_text(self.buffer_bytes),
            )

    @property
    def position(self) -> int:
        """Global position just past the last complete record."""
        return self._index * SEGMENT_SIZE + self._offset

    def close(self, remove: bool = False) -> None:
        with self._lock:
            if not self._closed and (self._buffer or self.dropped_points > self._dropped_recorded):
                self._end_degraded()
            self._closed = True
            self._unmap()
            if remove:
                remove_journal(self.directory)
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    # -- room, and the buffer while there is none ------------------------------------
    def _room(self, size: int, *, ending: bool = False, force: bool = False) -> bool:
        """Make room for a record of ``size`` bytes at ``_offset``, moving to a new segment
        or allocating more when needed. ``ending`` records may use the end reserve; while
        degraded, space is sought again at most every ``RETRY_EVERY_S`` unless ``force``."""
        reserve = 0 if ending else _end_reserve()
        if size + HEADER.size + reserve > SEGMENT_SIZE:
            raise ValueError("record larger than a journal segment")
        if self._mm is None or self._offset + size + HEADER.size + reserve > SEGMENT_SIZE:
            if not force and time.monotonic() < self._retry_at:
                return False
            if self._mm is not None:
                self._unmap()
                self._index += 1
                self._offset = 0
            if not self._map():
                return False
        need = self._offset + size + HEADER.size + reserve
        if need <= self._allocated:
            return True
        if not force and time.monotonic() < self._retry_at:
            return False
        return self._allocate(need)

    def _room_for(self, size: int, *, ending: bool = False) -> bool:
        """Whether a record of ``size`` bytes may be written at ``_offset`` now (after what
        the buffer holds); False: keep it with ``_keep``. Called with the lock held."""
        if self._closed:
            raise ValueError("journal is closed")
        if self._buffer and not self._drain(force=ending):
            return False
        if not self._room(size, ending=ending, force=ending):
            return False
        if self.degraded and not ending:
            self._recovered(size)
        return True

    def _keep(self, record: bytes, points: int, droppable: bool) -> None:
        """Hold a record that found no space: in the buffer while it has room (records
        other than points and console lines always), else dropped and counted."""
        if droppable and self._buffered + len(record) > self.buffer_bytes:
            # Before dropping a point, look for space now rather than at the next retry.
            if self._drain(force=True) and self._room(len(record), force=True):
                if self.degraded:
                    self._recovered(len(record))
                self._put(record)
                return
            self.dropped_points += points
            self.dropped_records += 1
            return
        self._buffer.append((record, points))
        self._buffered += len(record)
        self._limit = 0

    def _put(self, record: bytes) -> None:
        assert self._mm is not None
        end = self._offset + len(record)
        self._mm[self._offset : end] = record
        self._offset = end

    def _drain(self, *, force: bool = False) -> bool:
        """Write the buffer into the journal; False if space ran out again first."""
        while self._buffer:
            record, _points = self._buffer[0]
            if not self._room(len(record), force=force):
                return False
            self._put(record)
            self._buffer.popleft()
            self._buffered -= len(record)
        return True

    def _record_dropped(self, pending: int = 0, *, ending: bool = False) -> None:
        """Write the count of dropped points as the run's summary value (leaving room for a
        ``pending`` record to follow), if it changed and fits."""
        if self.dropped_points <= self._dropped_recorded:
            return
        record = _record(T_SUMMARY, json.dumps({DROPPED_POINTS_KEY: self.dropped_points}).encode())
        if self._current is not None:  # the count is the writer's own run's
            record = _attach(self._own_uuid) + record + _attach(self._current)
        if self._room(len(record) + pending, ending=ending, force=True):
            self._put(record)
            self._dropped_recorded = self.dropped_points

    def _recovered(self, pending: int) -> None:
        """Space is back and the buffer written: record what was dropped meanwhile and say
        that logging goes on."""
        self._record_dropped(pending)
        if self.degraded:
            self.degraded = False
            _log.warning(
                "the journal in %s has space again: logging goes on (%d points "
                "were dropped meanwhile)",
                self.directory,
                self.dropped_points,
            )
        self._update_limit()

    def _end_degraded(self) -> None:
        """Before the run ends: write what the buffer holds if space allows, else count it
        as dropped, and record the count in the end reserve."""
        if self._buffer and not self._drain(force=True):
            for _record_bytes, points in self._buffer:
                self.dropped_points += points
                self.dropped_records += 1
            self._buffer.clear()
            self._buffered = 0
        self._record_dropped(ending=True)
        if self.dropped_points:
            where = (
                "recorded in the run's journal"
                if self._dropped_recorded == self.dropped_points
                else "not even this count could be written"
            )
            _log.warning(
                "%d points logged while the disk was full were dropped (%s)",
                self.dropped_points,
                where,
            )

    # -- appending -------------------------------------------------------------------
    def _write(self, rtype: int, payload: bytes, run: str | None = None) -> None:
        with self._lock:
            if run is not self._current:
                self._switch(run, rtype)
            # A shared run's end is not the writer's: its own run's records stay in order.
            self._write_locked(rtype, payload, ending=rtype == T_FINISH and run is None)

    def _write_locked(self, rtype: int, payload: bytes, *, ending: bool = False) -> None:
        record = _record(rtype, payload)
        if ending and (self._buffer or self.dropped_points > self._dropped_recorded):
            self._end_degraded()
        if self._offset + len(record) + HEADER.size > self._limit and not self._room_for(
            len(record), ending=ending
        ):
            points = _column_points(payload) if rtype == T_COLUMN else 0
            self._keep(record, points, droppable=rtype in (T_COLUMN, T_OUTPUT))
            return
        self._put(record)

    def _switch(self, run: str | None, rtype: int) -> None:
        """Begin ``run``'s records (None: the writer's own run) before a record of type
        ``rtype``; a run's start record begins them itself. Called with the lock held."""
        if rtype != T_START:
            uuid = self._own_uuid if run is None else run
            self._write_locked(T_ATTACH, json.dumps({"uuid": uuid}).encode())
        self._current = run

    def append_json(self, rtype: int, obj: Any, run: str | None = None) -> None:
        self._write(rtype, json.dumps(obj, default=_json_default, allow_nan=True).encode(), run)

    def append_key(self, key_id: int, key: str, run: str | None = None) -> None:
        """Define one key (``append_keys`` defines many in one record)."""
        self._write(T_KEY, KEY_ID.pack(key_id) + key.encode(), run)

    def append_keys(self, first_id: int, keys: list[str], run: str | None = None) -> None:
        """Define ``keys`` (none holding a NUL) as ids ``first_id`` onwards, up to
        ``KEYS_PER_RECORD`` a record: one record for a wide call's keys, not one a key."""
        for lo in range(0, len(keys), KEYS_PER_RECORD):
            part = keys[lo : lo + KEYS_PER_RECORD]
            joined = "\0".join(part)
            if joined.count("\0") != len(part) - 1:
                raise ValueError("a key holds a NUL character")
            self._write(T_KEYS, KEYS_HEAD.pack(first_id + lo, len(part)) + joined.encode(), run)

    def append_metrics(
        self, time: float, step: int, flat: list[Any], run: str | None = None
    ) -> None:
        """``flat`` alternates key ids and float values. The hot path of ``Run.log()``."""
        n = len(flat) >> 1
        st = self._structs.get(n)
        if st is None:
            st = self._structs[n] = struct.Struct("<IBdqH" + "Id" * n)
        size = st.size
        with self._lock:
            if run is not self._current:
                self._switch(run, T_METRICS)
            off = self._offset
            if off + size + OVERHEAD > self._limit:
                if not self._room_for(size + CRC.size):
                    record = bytearray(size + CRC.size)
                    st.pack_into(record, 0, size - HEADER.size, T_METRICS, time, step, n, *flat)
                    _pack_crc(record, size, crc32(memoryview(record)[:size]))
                    self._keep(bytes(record), n, droppable=True)
                    return
                off = self._offset
            mm = self._mm
            if mm is None:
                raise ValueError("journal is closed")
            st.pack_into(mm, off, size - HEADER.size, T_METRICS, time, step, n, *flat)
            end = off + size
            _pack_crc(mm, end, crc32(self._view[off:end]))
            self._offset = end + CRC.size

    def append_metric(
        self, time: float, step: int, key_id: int, value: float, run: str | None = None
    ) -> None:
        """One key's value: ``append_metrics`` without building a list."""
        size = _ONE.size
        with self._lock:
            if run is not self._current:
                self._switch(run, T_METRICS)
            off = self._offset
            if off + size + OVERHEAD > self._limit:
                if not self._room_for(size + CRC.size):
                    record = bytearray(size + CRC.size)
                    _ONE.pack_into(
                        record, 0, size - HEADER.size, T_METRICS, time, step, 1, key_id, value
                    )
                    _pack_crc(record, size, crc32(memoryview(record)[:size]))
                    self._keep(bytes(record), 1, droppable=True)
                    return
                off = self._offset
            mm = self._mm
            if mm is None:
                raise ValueError("journal is closed")
            _ONE.pack_into(mm, off, size - HEADER.size, T_METRICS, time, step, 1, key_id, value)
            end = off + size
            _pack_crc(mm, end, crc32(self._view[off:end]))
            self._offset = end + CRC.size

    def append_metric_column(
        self,
        time: float,
        key_id: int,
        steps: array[int],
        values: array[float],
        run: str | None = None,
    ) -> None:
        """One key's points at many steps as one record (a script's output scalars): the
        cost is per key and call, not per point."""
        if _BIG_ENDIAN:
            steps, values = array("q", steps), array("d", values)
            steps.byteswap()
            values.byteswap()
        self._write(
            T_COLUMN,
            COLUMN_HEAD.pack(time, key_id, len(steps)) + steps.tobytes() + values.tobytes(),
            run,
        )


class SharedJournal:
    """One run's records on a writer another run owns (``JournalWriter.share``): what a
    sweep's in-process trial logs goes into the sweep run's journal, which survives a SIGKILL
    as any journal does, at none of the cost of making and removing a journal per trial.
    Records keep the order they were appended in; the writer marks where each run's begin."""

    def __init__(self, writer: JournalWriter, run_uuid: str) -> None:
        self.writer = writer
        self.run_uuid = run_uuid
        self.directory = writer.directory

    @property
    def position(self) -> int:
        return self.writer.position

    def share(self, run_uuid: str) -> SharedJournal:
        return SharedJournal(self.writer, run_uuid)

    def close(self, remove: bool = False) -> None:
        """Nothing to close: the writer is its owner's, removed when that run ends."""

    def append_json(self, rtype: int, obj: Any) -> None:
        self.writer.append_json(rtype, obj, self.run_uuid)

    def append_key(self, key_id: int, key: str) -> None:
        self.writer.append_key(key_id, key, self.run_uuid)

    def append_keys(self, first_id: int, keys: list[str]) -> None:
        self.writer.append_keys(first_id, keys, self.run_uuid)

    def append_metrics(self, time: float, step: int, flat: list[Any]) -> None:
        self.writer.append_metrics(time, step, flat, self.run_uuid)

    def append_metric(self, time: float, step: int, key_id: int, value: float) -> None:
        self.writer.append_metric(time, step, key_id, value, self.run_uuid)

    def append_metric_column(
        self, time: float, key_id: int, steps: array[int], values: array[float]
    ) -> None:
        self.writer.append_metric_column(time, key_id, steps, values, self.run_uuid)


#: What a live run writes its records through: a journal of its own, or a share of another's.
RunJournal = JournalWriter | SharedJournal


def _size_text(size: int) -> str:
    return f"{size >> 20} MiB" if size >= 1 << 20 else f"{size >> 10} KiB"


def _end_reserve() -> int:
    return min(END_RESERVE, SEGMENT_SIZE // 8)


def _record(rtype: int, payload: bytes) -> bytes:
    body = HEADER.pack(len(payload), rtype) + payload
    return body + CRC.pack(crc32(body))


def _attach(run_uuid: str) -> bytes:
    return _record(T_ATTACH, json.dumps({"uuid": run_uuid}).encode())


def _column_points(payload: bytes) -> int:
    n: int = COLUMN_HEAD.unpack_from(payload)[2]
    return n


_pack_crc = CRC.pack_into
_ONE = struct.Struct("<IBdqHId")


def remove_journal(directory: Path) -> None:
    """Delete a journal. Two readers may recover one dead journal at once: the loser of the
    lock can re-create ``lock`` while the winner deletes, so a vanished or re-filled
    directory is left to whoever holds it now."""
    try:
        for child in directory.iterdir():
            child.unlink(missing_ok=True)
        directory.rmdir()
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno != errno.ENOTEMPTY:
            raise


def try_lock(directory: Path) -> int | None:
    """Take a dead writer's journal lock; None when its writer is still alive."""
    try:
        fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


@contextlib.contextmanager
def recovery_lock(directory: Path) -> Iterator[bool]:
    """Hold a dead writer's journal while recovering it: True when this process may, False
    when its writer is alive (or the journal is gone).

    A live writer and a recovering reader both hold ``lock``; readers also hold
    ``recover.lock``, so a second reader waits there until the first is done instead of
    taking the journal for a live writer's and reading its run half ingested.
    """
    try:
        guard = os.open(directory / "recover.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield False
        return
    try:
        fcntl.flock(guard, fcntl.LOCK_EX)
        fd = try_lock(directory)
        if fd is None:
            yield False
            return
        try:
            yield True
        finally:
            os.close(fd)
    finally:
        os.close(guard)


def read_segments(
    directory: Path, start: int, limit: int | None = None
) -> Iterator[tuple[int, memoryview]]:
    """Yield ``(position of the first byte, bytes)`` of each segment's unread part from
    ``start`` up to ``limit`` (each read with one system call)."""
    index, offset = divmod(start, SEGMENT_SIZE)
    while limit is None or index * SEGMENT_SIZE + offset < limit:
        end_of_segment = SEGMENT_SIZE
        last = False
        if limit is not None and limit // SEGMENT_SIZE == index:
            end_of_segment = limit % SEGMENT_SIZE
            last = True
        try:
            # os.pread, not open(): a live run's end reads a few records, and the file
            # object's layers cost five times the system calls.
            fd = os.open(_segment_path(directory, index), os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            if limit is None:
                end_of_segment = _written_end(fd, offset, end_of_segment)
            data = memoryview(os.pread(fd, max(0, end_of_segment - offset), offset))
        finally:
            os.close(fd)
        yield index * SEGMENT_SIZE + offset, data
        if last or not _segment_path(directory, index + 1).exists():
            return
        index += 1
        offset = 0


def _written_end(fd: int, offset: int, size: int) -> int:
    """Where a segment's written part ends at most: records are written from its start, and
    the rest is a hole of the sparse file (so a recovery does not read 64 MiB of zeros)."""
    try:
        return min(size, os.lseek(fd, offset, os.SEEK_HOLE))
    except OSError:  # no hole support: read it all
        return size


def next_record(data: memoryview, pos: int, verify: bool = True) -> tuple[int, int, int] | None:
    """``(type, payload end, record end)`` of the record at ``pos``; None at the end of the
    written part, or at a torn or damaged record when ``verify``."""
    if pos + HEADER.size > len(data):
        return None
    length, rtype = HEADER.unpack_from(data, pos)
    if length == 0:
        return None
    body_end = pos + HEADER.size + length
    end = body_end + CRC.size
    if end > len(data):
        return None
    if verify and CRC.unpack_from(data, body_end)[0] != crc32(data[pos:body_end]):
        return None
    return rtype, body_end, end


#: Record types a resynchronising reader accepts as the start of a record.
RECORD_TYPES = range(T_START, T_KEYS + 1)
_RESYNC_CHUNK = 64 << 10


def resync(data: memoryview, pos: int) -> int:
    """Offset of the first valid record after ``pos`` (``len(data)`` when none follows).

    A candidate needs a known type, a length that fits and a matching crc32: numpy picks
    the plausible headers of each 64 KiB, and only those are checksummed, so a damaged region
    costs little more than reading it. A false match needs a 32-bit checksum collision.
    """
    import numpy as np

    size = len(data)
    raw = np.frombuffer(data, dtype=np.uint8)
    first = pos + 1
    last = size - OVERHEAD - 1  # the last place a record of one payload byte can start
    while first <= last:
        stop = min(last, first + _RESYNC_CHUNK - 1)
        n = stop - first + 1
        at = np.arange(first, stop + 1, dtype=np.int64)
        length = raw[first : first + n].astype(np.int64)
        for shift, k in ((8, 1), (16, 2), (24, 3)):
            length |= raw[first + k : first + k + n].astype(np.int64) << shift
        rtype = raw[first + 4 : first + 4 + n]
        plausible = (
            (rtype >= RECORD_TYPES.start)
            & (rtype < RECORD_TYPES.stop)
            & (length > 0)
            & (length <= size - OVERHEAD - at)
        )
        for offset in np.flatnonzero(plausible).tolist():
            start = first + offset
            if _plausible_payload(data, start) and next_record(data, start) is not None:
                return start
        first = stop + 1
    return size


_JSON_OPEN = b'{["'
_JSON_CLOSE = b'}]"'


def _plausible_payload(data: memoryview, pos: int) -> bool:
    """Whether the record header at ``pos`` fits its payload's own shape (a metric record's
    length matches its count, JSON is bracketed): checked before a checksum, so garbage
    whose length field is huge does not cost a crc32 of megabytes."""
    length: int
    rtype: int
    length, rtype = HEADER.unpack_from(data, pos)
    body = pos + HEADER.size
    if rtype == T_METRICS:
        if length < METRICS_HEAD.size:
            return False
        return bool(
            length == METRICS_HEAD.size + PAIR.size * METRICS_HEAD.unpack_from(data, body)[2]
        )
    if rtype == T_COLUMN:
        if length < COLUMN_HEAD.size:
            return False
        return bool(length == COLUMN_HEAD.size + 16 * COLUMN_HEAD.unpack_from(data, body)[2])
    if rtype == T_KEY:
        return KEY_ID.size < length <= 4096
    if rtype == T_KEYS:
        return KEYS_HEAD.size < length <= KEYS_HEAD.size + KEYS_PER_RECORD * 1001
    first: int = data[body]
    last: int = data[body + length - 1]
    return first in _JSON_OPEN and last in _JSON_CLOSE


def damaged_span(data: memoryview, pos: int) -> tuple[int, int] | None:
    """Where ``next_record`` found no valid record at ``pos``: None at the clean end of the
    written part (only zeros follow) or at a torn last record; else ``(pos, where reading
    resumes)``, which is past the last non-zero byte when no valid record follows."""
    import numpy as np

    if not np.frombuffer(data, dtype=np.uint8)[pos:].any():
        return None
    resume = resync(data, pos)
    if resume < len(data):
        return pos, resume
    written_end = pos + len(bytes(data[pos:]).rstrip(b"\0"))
    if _torn(data, pos, written_end):
        return None
    return pos, written_end


def _torn(data: memoryview, pos: int, written_end: int) -> bool:
    """Whether the bad record at ``pos`` is one whose copy was interrupted: it lies within
    the data, its checksum is still zero, and nothing was written after it."""
    if pos + HEADER.size > len(data):
        return False
    length, _rtype = HEADER.unpack_from(data, pos)
    end = pos + HEADER.size + length + CRC.size
    if length == 0 or end > len(data):
        return False
    checksum: int = CRC.unpack_from(data, end - CRC.size)[0]
    return checksum == 0 and written_end <= end


def segment_cut_short(directory: Path, position: int) -> int | None:
    """The global position where the segment holding ``position`` ends, when its file is
    shorter than a segment (truncated or emptied: the writer always sizes it in full);
    None when it is whole. An empty segment after the first one is a writer killed while
    starting it, not damage."""
    index = position // SEGMENT_SIZE
    try:
        size = _segment_path(directory, index).stat().st_size
    except FileNotFoundError:
        return None
    if size >= SEGMENT_SIZE or (size == 0 and index > 0):
        return None
    return index * SEGMENT_SIZE + size


def read_records(
    directory: Path, start: int, limit: int | None = None
) -> Iterator[tuple[int, int, memoryview]]:
    """Yield ``(type, position after the record, payload)`` for valid records from ``start``.

    Stops at ``limit``, after the last segment, or at a torn last record; damaged records
    are skipped (``JournalDecoder`` reports them).
    """
    for base, data in read_segments(directory, start, limit):
        pos = 0
        while True:
            found = next_record(data, pos)
            if found is None:
                span = damaged_span(data, pos) if limit is None or pos < len(data) else None
                if span is None or span[1] >= len(data):
                    break
                pos = span[1]
                continue
            rtype, body_end, end = found
            yield rtype, base + end, data[pos + HEADER.size : body_end]
            pos = end


def writer_run_uuid(directory: Path) -> str:
    """The run a journal belongs to, from its directory's name (``<run uuid>.<writer>``):
    what identifies the run when the journal's first record is damaged."""
    return directory.name.rpartition(".")[0] or directory.name


def quarantine_path(directory: Path, quarantine: Path) -> Path:
    """Where a damaged journal is kept in ``quarantine`` (for inspection, never ingested
    again): its own name, made unique."""
    target = quarantine / directory.name
    suffix = 1
    while target.exists():
        target = quarantine / f"{directory.name}.{suffix}"
        suffix += 1
    return target
