"""What waits on this machine for the store: journals of runs whose writer ended before
the store took everything (the server was unreachable, the database was down).

``sync`` sends them (it is ``Client.recover()``, which ingests leftover journals) and says
how much went.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from labkeep import _journal as j

if TYPE_CHECKING:
    from labkeep._client import Client


@dataclass(frozen=True, slots=True)
class PendingJournal:
    """A journal no live writer holds, and how much of it the store lacks."""

    directory: Path
    writer: str
    run_uuid: str | None
    points: int


@dataclass(frozen=True, slots=True)
class SyncResult:
    runs: int
    points: int
    #: Journals that could not be sent (their run is not in the store).
    left: int
    #: Journals there were to send.
    pending: int


def pending_journals(client: Client) -> list[PendingJournal]:
    """Journals of ended writers under the client's journal directory (asks the store how
    far each got: raises StoreError when it cannot be reached)."""
    from labkeep._journal_decoder import JournalDecoder

    root = client.location.journal_dir
    if not root.is_dir():
        return []
    found = []
    for directory in sorted(root.iterdir()):
        if not directory.is_dir():
            continue
        with j.recovery_lock(directory) as ours:
            if not ours:
                continue  # its writer is alive and sends it itself
            decoder = JournalDecoder(directory)
            decoder.seek(client.store.journal_position(decoder.writer))
            points = 0
            while (batch := decoder.read()) is not None:
                points += sum(len(cols.steps) for cols in batch.metrics.values())
            found.append(PendingJournal(directory, decoder.writer, decoder.run_uuid, points))
    return found


def sync(client: Client) -> SyncResult:
    """Send every ended writer's journal to the store; report how many runs and points went."""
    before = pending_journals(client)
    if not before:
        return SyncResult(0, 0, 0, 0)
    client.recover(force=True)
    sent = [p for p in before if not p.directory.exists()]
    return SyncResult(
        runs=len({p.run_uuid for p in sent}),
        points=sum(p.points for p in sent),
        left=len(before) - len(sent),
        pending=len(before),
    )
