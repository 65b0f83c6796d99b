"""A per-writer, append-only journal of checksummed records in memory-mapped segment files.

``Run.log()`` hands its points to the journal by copying a packed record into a shared
memory map: no system call, no database round trip. The kernel owns the mapped pages, so
what was copied survives a SIGKILL of the process and is ingested into the store by the
process's background ingester, or, after a crash, by whoever opens the store next.

Layout: ``<journal_dir>/<writer>/<index:06d>.seg`` files of ``SEGMENT_SIZE`` bytes (sparse:
only what was written takes disk space), plus ``lock``, held with ``flock`` by the live
writer. A record is ``<u32 payload length><u8 type><payload><u32 crc32 of all before it>``;
a zero length ends a segment. A torn record (process killed mid-copy) fails its checksum and
ends the journal there. Positions are global: ``index * SEGMENT_SIZE + offset``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import mmap
import os
import struct
import sys
import threading
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zlib import crc32

SEGMENT_SIZE = 64 << 20
HEADER = struct.Struct("<IB")
CRC = struct.Struct("<I")
OVERHEAD = HEADER.size + CRC.size

# Record types.
T_START = 1  # JSON: a new run (RunStart fields)
T_ATTACH = 2  # JSON: {"uuid": …} this writer logs to an existing run
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

METRICS_HEAD = struct.Struct("<dqH")
COLUMN_HEAD = struct.Struct("<dII")
_BIG_ENDIAN = sys.byteorder == "big"
PAIR = struct.Struct("<Id")
KEY_ID = struct.Struct("<I")


def _segment_path(directory: Path, index: int) -> Path:
    return directory / f"{index:06d}.seg"


def _json_default(obj: object) -> object:
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


class JournalWriter:
    """Appends records for one writer. Thread-safe; ``append_*`` never blocks on I/O."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._mm: mmap.mmap | None = None
        self._view = memoryview(b"")
        self._index = 0
        self._offset = 0
        self._lock_fd: int | None = None
        self._structs: dict[int, struct.Struct] = {}

    # -- lifecycle -------------------------------------------------------------------
    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._lock_fd = fd
        self._map_segment(0)

    def _map_segment(self, index: int) -> None:
        path = _segment_path(self.directory, index)
        with open(path, "a+b") as fh:
            fh.truncate(SEGMENT_SIZE)
            self._mm = mmap.mmap(fh.fileno(), SEGMENT_SIZE)
        self._view = memoryview(self._mm)
        self._index = index
        self._offset = 0

    @property
    def position(self) -> int:
        """Global position just past the last complete record."""
        return self._index * SEGMENT_SIZE + self._offset

    def close(self, remove: bool = False) -> None:
        with self._lock:
            if self._mm is not None:
                self._view.release()
                self._mm.close()
                self._mm = None
            if remove:
                remove_journal(self.directory)
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    # -- appending -------------------------------------------------------------------
    def _reserve(self, size: int) -> int:
        """Offset where a record of ``size`` bytes fits, moving to a new segment if needed.

        Called with the lock held.
        """
        if self._mm is None:
            raise ValueError("journal is closed")
        if self._offset + size + HEADER.size <= SEGMENT_SIZE:
            return self._offset
        if size + HEADER.size > SEGMENT_SIZE:
            raise ValueError("record larger than a journal segment")
        self._view.release()
        self._mm.close()
        self._map_segment(self._index + 1)
        return 0

    def _write(self, rtype: int, payload: bytes) -> None:
        size = len(payload) + OVERHEAD
        with self._lock:
            off = self._reserve(size)
            mm = self._mm
            assert mm is not None
            HEADER.pack_into(mm, off, len(payload), rtype)
            mm[off + HEADER.size : off + HEADER.size + len(payload)] = payload
            end = off + size - CRC.size
            CRC.pack_into(mm, end, crc32(self._view[off:end]))
            self._offset = off + size

    def append_json(self, rtype: int, obj: Any) -> None:
        self._write(rtype, json.dumps(obj, default=_json_default, allow_nan=True).encode())

    def append_key(self, key_id: int, key: str) -> None:
        self._write(T_KEY, KEY_ID.pack(key_id) + key.encode())

    def append_metrics(self, time: float, step: int, flat: list[Any]) -> None:
        """``flat`` alternates key ids and float values. The hot path of ``Run.log()``."""
        n = len(flat) >> 1
        st = self._structs.get(n)
        if st is None:
            st = self._structs[n] = struct.Struct("<IBdqH" + "Id" * n)
        size = st.size
        with self._lock:
            off = self._offset
            if off + size + OVERHEAD > SEGMENT_SIZE:
                off = self._reserve(size + CRC.size)
            mm = self._mm
            if mm is None:
                raise ValueError("journal is closed")
            st.pack_into(mm, off, size - HEADER.size, T_METRICS, time, step, n, *flat)
            end = off + size
            _pack_crc(mm, end, crc32(self._view[off:end]))
            self._offset = end + CRC.size

    def append_metric(self, time: float, step: int, key_id: int, value: float) -> None:
        """One key's value: ``append_metrics`` without building a list."""
        size = _ONE.size
        with self._lock:
            off = self._offset
            if off + size + OVERHEAD > SEGMENT_SIZE:
                off = self._reserve(size + CRC.size)
            mm = self._mm
            if mm is None:
                raise ValueError("journal is closed")
            _ONE.pack_into(mm, off, size - HEADER.size, T_METRICS, time, step, 1, key_id, value)
            end = off + size
            _pack_crc(mm, end, crc32(self._view[off:end]))
            self._offset = end + CRC.size

    def append_metric_column(
        self, time: float, key_id: int, steps: array[int], values: array[float]
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
        )


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
        if limit is not None and limit // SEGMENT_SIZE == index:
            end_of_segment = limit % SEGMENT_SIZE
        try:
            with open(_segment_path(directory, index), "rb") as fh:
                if limit is None:
                    end_of_segment = _written_end(fh.fileno(), offset, end_of_segment)
                fh.seek(offset)
                data = memoryview(fh.read(max(0, end_of_segment - offset)))
        except FileNotFoundError:
            return
        yield index * SEGMENT_SIZE + offset, data
        if not _segment_path(directory, index + 1).exists():
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
    written part, or at a torn record when ``verify``."""
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


def read_records(
    directory: Path, start: int, limit: int | None = None
) -> Iterator[tuple[int, int, memoryview]]:
    """Yield ``(type, position after the record, payload)`` for valid records from ``start``.

    Stops at ``limit``, after the last segment, or at the first torn record.
    """
    for base, data in read_segments(directory, start, limit):
        pos = 0
        while (found := next_record(data, pos)) is not None:
            rtype, body_end, end = found
            yield rtype, base + end, data[pos + HEADER.size : body_end]
            pos = end
        if pos + HEADER.size <= len(data) and HEADER.unpack_from(data, pos)[0] != 0:
            return  # torn record: nothing after it is trusted
