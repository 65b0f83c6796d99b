"""Journal → store: the background ingester of a live run, which applies the batches
``_journal_decoder`` reads from the run's journal to the store, and ``ingest_all`` for
journals whose writer died.

A journal may hold several runs' records (a sweep's in-process trials on the sweep run's
writer): a batch never spans two runs, so the store's exactly-once rule per (writer,
position) holds unchanged, and the ingester tells each run its number (``share``)."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from labkeep import _journal as j
from labkeep._journal_decoder import JournalDecoder
from labkeep.errors import LabkeepError, NotFoundError
from labkeep.store._base import WriteBatch

if TYPE_CHECKING:
    from labkeep.store._base import Store

_log = logging.getLogger(__name__)


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
                    _log.warning("cannot write to the store yet (%s); retrying", msg)
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
            batch = self.decoder.read(limit, trusted=True, blocks=self.store.takes_metric_blocks)
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
            # The decoder's position moves when a batch is read, before the store has it:
            # while an ingest is under way (the lock is held) its batch may not be in yet.
            while self.decoder.position < target or self._ingesting.locked():
                if self._thread is None or not self._thread.is_alive():
                    return self.decoder.position >= target and not self._ingesting.locked()
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

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the shared journal's records so far are in the store."""
        return self.ingester.flush(timeout)

    def stop(self, timeout: float | None = None) -> bool:
        """The run has ended: put its records in the store now (the ingester goes on for
        the others); False if they are not there within ``timeout``."""
        return self.ingester.ingest_now(timeout)


#: What a live run's records are ingested by: an ingester of its own, or a share of another's.
RunIngester = Ingester | IngesterShare
