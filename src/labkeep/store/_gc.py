"""Store garbage collection: blobs that nothing names any more, removed after a grace period.

A blob is named by the rows of ``blob_refs`` (``store/_refs.py``): artifacts, a snapshot's
code files, manifest, package list and diff, and whatever later registers there (models,
media, artifact versions). Every run that is not purged keeps its blobs, the ones in the
trash too. What may still be named though no row names it yet:

- a blob put moments ago by a run whose record naming it is still on its way (the journal is
  ingested every half second; a REST client that lost its server keeps both in an outbox);
- a blob put long ago and put *again* just now by a run re-using the same content: the put
  found it there and did not send it, so its age says nothing. Every such put refreshes the
  blob's last-put time (``ArtifactStore.touch``).

So a blob goes only when it is unnamed and was last put before the cutoff: ``grace`` ago,
or earlier still, before the start of the oldest run that is running and live (a heartbeat
within the grace period): a live run names only blobs it put after it started. The names
are read again, in the transaction that drops the blobs' rows, and the last-put times listed
again, just before the removal, so a record or a put that arrives during the scan keeps its
blob. What interrupted uploads left (temporary files, unfinished multipart uploads) older
than the cutoff goes too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from labkeep.entities import RunInfo
from labkeep.store._artifacts import ArtifactStore, Leftover, StoredBlob

#: A running run whose heartbeat is older than this is dead (as ``Client`` judges it).
STALE_AFTER_S = 600.0


@dataclass(frozen=True, slots=True)
class GarbageReport:
    """What ``labkeep gc`` removed (or, with ``dry_run``, would remove)."""

    blobs: list[StoredBlob] = field(default_factory=list)
    leftovers: list[Leftover] = field(default_factory=list)
    #: Unnamed blobs put after the cutoff, kept for now.
    recent: int = 0
    cutoff: float = 0.0
    dry_run: bool = False

    @property
    def size(self) -> int:
        return sum(b.size for b in self.blobs) + sum(item.size for item in self.leftovers)


def live_cutoff(now: float, grace_s: float, running: Iterable[RunInfo]) -> float:
    """Blobs last put before this may go: ``grace_s`` ago, or the start of the oldest live
    running run if earlier. A run whose heartbeat stopped more than ``STALE_AFTER_S`` ago is
    not live (its process died without saying so; the client marks such runs killed)."""
    cutoff = now - grace_s
    for run in running:
        beat = run.heartbeat if run.heartbeat is not None else run.start_time
        if beat >= now - max(grace_s, STALE_AFTER_S):
            cutoff = min(cutoff, run.start_time)
    return cutoff


def collect_garbage(
    store: ArtifactStore,
    referenced: set[str],
    cutoff: float,
    still_named: Callable[[list[str]], set[str]],
    *,
    dry_run: bool,
) -> GarbageReport:
    """Remove from ``store`` the blobs not in ``referenced`` last put before ``cutoff``.

    ``still_named(candidates)`` reads the names again and drops the rows of the others, in
    one transaction; it returns the candidates named meanwhile."""
    unnamed = [blob for blob in store.scan() if blob.sha256 not in referenced]
    old = sorted(
        (b for b in unnamed if b.last_put + store.time_resolution <= cutoff),
        key=lambda b: b.sha256,
    )
    leftovers = store.leftovers(cutoff)
    report = GarbageReport(old, leftovers, len(unnamed) - len(old), cutoff, dry_run)
    if dry_run or not (old or leftovers):
        return report
    named = still_named([b.sha256 for b in old]) if old else set()
    fresh = {b.sha256: b.last_put for b in store.scan()} if old else {}
    doomed = [
        b
        for b in old
        if b.sha256 not in named
        and b.sha256 in fresh
        and fresh[b.sha256] + store.time_resolution <= cutoff
    ]
    store.delete([b.sha256 for b in doomed])
    store.delete_leftovers(leftovers)
    return GarbageReport(doomed, leftovers, report.recent, cutoff, dry_run)


def garbage_report_to_json(report: GarbageReport) -> dict[str, object]:
    """The report as the server sends it."""
    return {
        "blobs": [[b.sha256, b.size, b.last_put] for b in report.blobs],
        "leftovers": [[item.name, item.size, item.started] for item in report.leftovers],
        "recent": report.recent,
        "cutoff": report.cutoff,
        "dry_run": report.dry_run,
    }


def report_from_json(data: dict[str, Any]) -> GarbageReport:
    """The report the server sent."""
    return GarbageReport(
        [StoredBlob(str(s), int(n), float(t)) for s, n, t in data.get("blobs") or []],
        [Leftover(str(s), int(n), float(t)) for s, n, t in data.get("leftovers") or []],
        int(data.get("recent", 0)),
        float(data.get("cutoff", 0.0)),
        bool(data.get("dry_run", False)),
    )
