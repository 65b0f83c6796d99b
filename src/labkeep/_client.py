"""One object that talks to a store: starts runs, recovers crashed writers, reads runs."""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import os
import socket
import sys
import time
import uuid as uuid_mod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkeep import _journal as j
from labkeep._log_handler import install_stderr_handler
from labkeep._values import check_key, check_text, short_repr
from labkeep.entities import JOURNAL_DAMAGE_KEY, RunInfo, RunStatus
from labkeep.errors import (
    AmbiguousRefError,
    NotFoundError,
    ReadOnlyStoreError,
    RunStateError,
    StoreError,
)
from labkeep.store._uri import StoreLocation, locate_store, open_store

if TYPE_CHECKING:
    from labkeep._journal_decoder import JournalDecoder
    from labkeep._run import Run
    from labkeep._views import RunList, RunView
    from labkeep.store._base import RunStart, Store

#: A running run on another host whose heartbeat is older than this is taken as killed.
STALE_AFTER_S = 600.0

_log = logging.getLogger(__name__)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Client:
    """The store a process works with. Constructing it does no I/O."""

    def __init__(
        self,
        store: str | os.PathLike[str] | None = None,
        *,
        cwd: Path | None = None,
        artifacts: str | None = None,
    ) -> None:
        install_stderr_handler()
        self.location: StoreLocation = locate_store(store, cwd, artifacts=artifacts)
        self.store: Store = open_store(self.location)
        self._recovered = False

    # -- runs being written ---------------------------------------------------------------
    def start_run(
        self,
        *,
        experiment: str,
        name: str = "",
        config: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        notes: str = "",
        attach_uuid: str | None = None,
        parent_uuid: str | None = None,
        reproduces_uuid: str | None = None,
        capture: bool = True,
        code: bool = True,
        inputs: list[str] | None = None,
        system_metrics: float | None = 10.0,
        argv: list[str] | None = None,
        entry_point: str | None = None,
        cwd: Path | None = None,
        run_class: type[Run] | None = None,
        group: str | None = None,
        job_type: str | None = None,
        resume: RunInfo | None = None,
        new_uuid: str | None = None,
    ) -> Run:
        """Start a run (or attach a new writer to ``attach_uuid``, resuming it): the one way a
        :class:`Run` is made. It opens the run's journal and ingester and hands them to the
        run, which owns them from then on and drains them in ``finish()``.

        ``capture`` records the snapshot in the background; ``system_metrics`` is the
        sampling interval in seconds (None: off). Attached writers capture nothing: the run's
        owner does. ``run_class`` is a subclass of :class:`Run` to make (a sweep's trial).
        ``resume`` (from :meth:`find_resumable`) takes that run over: it runs again, owned by
        this process, and its steps go on after its last logged step."""
        from labkeep._ingest import Ingester
        from labkeep._run import Run

        first_step = first_system_step = 0
        if resume is not None:
            attach_uuid = resume.uuid
            experiment, name = resume.experiment, resume.name
            first_step, first_system_step = self._next_steps(resume)
        check_key(experiment, "experiment name")
        if name:
            check_key(name, "run name")
        for value, what in ((group, "group"), (job_type, "job_type")):
            if value is not None:
                check_key(value, what)
        read_only = self.store.read_only_reason()
        if read_only is not None:
            raise ReadOnlyStoreError(read_only)
        check_text(notes, "notes")
        run_uuid = attach_uuid or new_uuid or str(uuid_mod.uuid4())
        journal = j.JournalWriter(
            self.location.journal_dir / f"{run_uuid}.{uuid_mod.uuid4().hex[:12]}"
        )
        journal.open()
        if resume is not None:
            taken = {"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()}
            journal.append_json(j.T_ATTACH, {"uuid": resume.uuid, "resume": taken})
        elif attach_uuid:
            journal.append_json(j.T_ATTACH, {"uuid": attach_uuid})
        else:
            record = _start_record(run_uuid, experiment, name, parent_uuid, notes, reproduces_uuid)
            record.update(group=group, job_type=job_type)
            journal.append_json(j.T_START, record)
        ingester = Ingester(journal, self.store)
        run = (run_class or Run)(
            self,
            journal,
            ingester,
            uuid=run_uuid,
            experiment=experiment,
            name=name,
            attached=attach_uuid is not None and resume is None,
            notes=notes,
            first_step=first_step,
            first_system_step=first_system_step,
        )
        if config:
            run.config.update(config)
        if tags:
            run.tags.add(*tags)
        ingester.start()
        ingester.wake()
        if system_metrics and resume is not None:
            run.monitor_system(system_metrics)
        if capture and not attach_uuid:
            argv = list(sys.argv) if argv is None else argv
            if entry_point is None and argv and argv[0] not in ("", "-c", "-m"):
                entry_point = argv[0]
            run.capture_snapshot(
                cwd=cwd or Path.cwd(), argv=argv, entry_point=entry_point, code=code, inputs=inputs
            )
        if system_metrics and not attach_uuid:
            run.monitor_system(system_metrics)
        return run

    def find_resumable(
        self, ref: str | int, *, experiment: str, by_name: bool = False
    ) -> RunInfo | None:
        """The run ``init(id=ref, resume=…)`` (or ``name=ref``, in ``experiment``) continues,
        None when there is none. Journals of writers that died are ingested first, so their
        points count and their run is no longer running. A run another process still writes
        cannot be taken over: RunStateError."""
        self.recover()
        try:
            if by_name:
                numbers = self.store.search_numbers(
                    f"name == {str(ref)!r}", experiment=experiment, limit=2
                )
                if len(numbers) > 1:
                    raise AmbiguousRefError(
                        f"{len(numbers)} runs of experiment {experiment!r} are named {ref!r}: "
                        "resume one by id"
                    )
                info = self.store.resolve_run(numbers[0]) if numbers else None
            else:
                info = self.store.resolve_run(ref)
        except NotFoundError:
            return None
        if info is not None and info.status is RunStatus.RUNNING:
            raise RunStateError(
                f"run {info.number} is still running (pid {info.pid} on {info.host or '?'}): "
                "resume it once it has ended or died"
            )
        return info

    def _next_steps(self, info: RunInfo) -> tuple[int, int]:
        """The step after the last one the run logged, and the same for its system metrics
        (``sys/…``, which keep a step counter of their own): a resumed run goes on after
        both, so no point of the earlier process is overwritten or interleaved."""
        last = last_system = -1
        for record in self.store.get_records([info.number]):
            for key, summary in record.metrics.items():
                if not summary.count:
                    continue
                if key.startswith("sys/"):
                    last_system = max(last_system, summary.last_step)
                else:
                    last = max(last, summary.last_step)
        return last + 1, last_system + 1

    def start_child_run(
        self,
        parent: Run,
        *,
        name: str = "",
        config: dict[str, Any] | None = None,
        run_class: type[Run] | None = None,
    ) -> Run:
        """Start a child run of ``parent`` (in its experiment) whose records go to the
        parent's journal and ingester: a sweep's in-process trial. It is an ordinary run in
        the store, and what it logs survives a SIGKILL as the parent's does, without a
        journal file and a thread of its own to make and remove per run. Captures no
        snapshot and no system metrics. Its ``finish()`` waits until its records are in the
        store; the parent must stay unfinished until then.

        >>> trial = client.start_child_run(sweep_run, config={"lr": 0.1})  # doctest: +SKIP
        """
        from labkeep._run import Run

        if name:
            check_key(name, "run name")
        if parent.status is not RunStatus.RUNNING:
            raise RunStateError(
                f"run {parent.uuid} is {parent.status.value}: start child runs while it runs"
            )
        run_uuid = str(uuid_mod.uuid4())
        ingester = parent._ingester.share(run_uuid)
        journal = parent._journal.share(run_uuid)
        journal.append_json(
            j.T_START, _start_record(run_uuid, parent.experiment, name, parent.uuid, "", None)
        )
        run = (run_class or Run)(
            self,
            journal,
            ingester,
            uuid=run_uuid,
            experiment=parent.experiment,
            name=name,
            attached=False,
        )
        if config:
            run.config.update(config)
        return run

    # -- recovery -----------------------------------------------------------------------
    def recover(self, force: bool = False) -> list[int]:
        """Ingest journals whose writer died and mark runs whose process vanished as killed.

        Runs once per client unless ``force``; returns the numbers of runs marked killed.
        """
        if self._recovered and not force:
            return []
        self._recovered = True
        journal_root = self.location.journal_dir
        if not self.store.exists() and not _has_journals(journal_root):
            return []  # nothing stored and nothing left behind
        # A writer killed before its first ingest leaves only its journal: recovering it
        # creates the database, as that writer would have.
        if self.store.read_only_reason() is not None:
            return []  # a read-only store is read as it is: recovery would have to write
        killed: dict[int, float] = {}
        if journal_root.is_dir():
            # Journals that start their run before those that attach to one (the script
            # under `labkeep run`), so an attached writer finds its run in the store.
            directories = [d for d in journal_root.iterdir() if d.is_dir()]
            for directory in sorted(directories, key=lambda d: (not _journal_owner(d), d.name)):
                try:
                    result = self._recover_journal(directory)
                except StoreError:
                    raise  # the store itself is unreachable: every read would fail
                except Exception as exc:
                    # One journal the store refuses (a bad record, a constraint) must not
                    # block every read: keep it for `labkeep sync` and say so.
                    _log.warning(
                        "journal %s could not be ingested (%s); it is kept", directory.name, exc
                    )
                    continue
                killed.update(result)
        host = socket.gethostname()
        now = time.time()
        for info in self.store.running_runs():
            if info.number in killed:
                continue
            dead_here = info.host == host and info.pid is not None and not _pid_alive(info.pid)
            stale = info.heartbeat is not None and info.heartbeat < now - STALE_AFTER_S
            if dead_here or stale:
                killed[info.number] = info.heartbeat or info.start_time
        if killed:
            try:
                self.store.mark_killed(list(killed), list(killed.values()))
            except Exception as exc:
                from labkeep._ingest import disk_full

                if not disk_full(exc, journal_root if journal_root.is_dir() else None):
                    raise
                # Reads go on; the runs are marked the next time there is space.
                _log.warning(
                    "no space left to mark runs %s as killed (%s); they still show as running",
                    ", ".join(map(str, sorted(killed))),
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                )
                return []
        return sorted(killed)

    def _recover_journal(self, directory: Path) -> list[tuple[int, float]]:
        from labkeep._ingest import ingest_all
        from labkeep._journal_decoder import JournalDecoder, journal_damage
        from labkeep.store._base import RunStart

        with j.recovery_lock(directory) as ours:
            if not ours:
                return []  # its writer is alive, or another reader recovered it meanwhile
            decoder = JournalDecoder(directory)
            decoder.seek(self.store.journal_position(decoder.writer))
            owner = _journal_owner(directory)
            run_uuid = j.writer_run_uuid(directory)
            placeholder = None
            try:
                self.store.resolve_run(run_uuid)
            except NotFoundError:
                # Used only if the run's start record is damaged: the run is still made.
                placeholder = RunStart(
                    uuid=run_uuid, experiment="default", name="", start_time=_created(directory)
                )
                decoder.placeholder_start = placeholder
            try:
                number = ingest_all(decoder, self.store)
            except NotFoundError:
                return []  # attached to a run that is not in this store (yet)
            damage = journal_damage(decoder)
            if damage is not None:
                # Marked first: a journal is moved only once its run says what it lacks.
                quarantine = self.location.journal_dir.parent / "quarantine"
                kept = j.quarantine_path(directory, quarantine)
                number, made = self._record_damage(decoder, damage, kept, placeholder)
                quarantine.mkdir(parents=True, exist_ok=True)
                directory.rename(kept)
                owner = owner or made or decoder.start_lost
            else:
                if number is None and decoder.run_uuid is not None:
                    number = self.store.resolve_run(decoder.run_uuid).number
                j.remove_journal(directory)
            ended = decoder.last_time or time.time()
            left: dict[int, float] = {}
            if owner and number is not None and not decoder.finished:
                left[number] = ended
            # And the child runs it created and left running (a sweep's in-process trials).
            for child_uuid, created in decoder.open_runs.items():
                if created:
                    with contextlib.suppress(NotFoundError):
                        left[self.store.resolve_run(child_uuid).number] = ended
            return list(left.items())

    def _record_damage(
        self, decoder: JournalDecoder, damage: str, kept: Path, placeholder: RunStart | None
    ) -> tuple[int, bool]:
        """Mark the run of a damaged journal incomplete and say what was lost; return its
        number and whether it had to be made here (nothing of its start could be read)."""
        from labkeep.store._base import WriteBatch

        run_uuid = decoder.run_uuid or j.writer_run_uuid(decoder.directory)
        try:
            self.store.resolve_run(run_uuid)
            placeholder = None
        except NotFoundError:
            pass
        number = self.store.apply(
            WriteBatch(
                run_uuid=run_uuid,
                # A writer of its own: the mark is applied once, whatever the journal's position.
                writer=f"{decoder.writer}.damage",
                position=1,
                start=placeholder,
                summary={JOURNAL_DAMAGE_KEY: f"{damage}; the journal is kept in {kept}"},
            )
        )
        _log.warning(
            "the journal of run %s (%s) was damaged: %s. Everything intact was "
            "ingested; the damaged journal is kept in %s",
            number,
            run_uuid[:8],
            damage,
            kept,
        )
        return number, placeholder is not None

    # -- reading ------------------------------------------------------------------------
    def _see_own_writes(self) -> None:
        from labkeep._run import flush_own_runs

        flush_own_runs(self.location.uri)

    def get_run(self, ref: str | int) -> RunView:
        from labkeep._views import RunView

        self.recover()
        self._see_own_writes()
        if not self.store.exists():
            shown = ref if isinstance(ref, str) else short_repr(ref)
            raise NotFoundError(
                f"no run {shown!r}: the store at {self.location.uri} has no runs yet"
            )
        info = self.store.resolve_run(ref)
        return RunView(self.store, self.store.get_records([info.number])[0])

    def runs(self, experiment: str | None = None, **kwargs: Any) -> RunList:
        from labkeep._views import RunList

        self.recover()
        self._see_own_writes()
        return RunList(self.store, experiment=experiment, **kwargs)

    def close(self) -> None:
        self.store.close()


def _created(directory: Path) -> float:
    """When a journal's writer started (its lock file is made first and never written)."""
    try:
        return (directory / "lock").stat().st_mtime
    except OSError:
        return time.time()


def _has_journals(journal_root: Path) -> bool:
    return journal_root.is_dir() and any(d.is_dir() for d in journal_root.iterdir())


def _journal_owner(directory: Path) -> bool:
    """Whether the journal created its run or took it over (``resume``), rather than
    attaching to one."""
    for rtype, _end, payload in j.read_records(directory, 0):
        if rtype == j.T_START:
            return bool(json.loads(bytes(payload)))
        if rtype == j.T_ATTACH:
            return json.loads(bytes(payload)).get("resume") is not None
        return False
    return False


def _start_record(
    run_uuid: str,
    experiment: str,
    name: str,
    parent_uuid: str | None,
    notes: str,
    reproduces_uuid: str | None,
) -> dict[str, Any]:
    """The journal's ``T_START`` record of a new run made by this process."""
    return {
        "uuid": run_uuid,
        "experiment": experiment,
        "name": name,
        "start_time": time.time(),
        "user": _user(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "parent_uuid": parent_uuid,
        "notes": notes,
        "reproduces_uuid": reproduces_uuid,
    }


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return ""
