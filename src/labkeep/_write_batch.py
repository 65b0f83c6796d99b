"""What one writer's journal decodes to and what ``Store.apply`` takes: a :class:`WriteBatch`.

Plain data, below both the journal decoder (``_journal_decoder``), which makes batches, and
the stores (``store/``), which apply them; it imports nothing but ``entities``.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from labkeep.entities import Artifact, MediaEntry, Value


@dataclass(slots=True)
class RunStart:
    """What creates a run."""

    uuid: str
    experiment: str
    name: str
    start_time: float
    user: str = ""
    host: str = ""
    pid: int | None = None
    parent_uuid: str | None = None
    notes: str = ""
    reproduces_uuid: str | None = None
    group: str | None = None
    job_type: str | None = None


@dataclass(slots=True)
class RunResume:
    """A writer that takes over a run that ended or died (``init(resume=...)``): the run is
    running again, owned by ``pid`` on ``host``."""

    pid: int
    host: str
    time: float


@dataclass(slots=True)
class RunFinish:
    status: str
    end_time: float
    error: str | None = None
    exit_code: int | None = None


@dataclass(slots=True)
class MetricColumns:
    """One key's new points in logging order: int64 steps, float64 values and wall times."""

    steps: array[int] = field(default_factory=lambda: array("q"))
    values: array[float] = field(default_factory=lambda: array("d"))
    times: array[float] = field(default_factory=lambda: array("d"))


@dataclass(slots=True)
class MetricBlock:
    """Many keys' new points at once, a column each for all keys: key ``keys[i]``'s points
    (in logging order) are the ``lengths[i]`` after those of the keys before it in
    ``steps`` (int64), ``values`` and ``times`` (float64), native byte order. What the
    live ingester hands a store that takes it (``Store.takes_metric_blocks``) for a wide
    run's batch, instead of a :class:`MetricColumns` a key."""

    keys: list[str]
    lengths: list[int]
    steps: bytes
    values: bytes
    times: bytes

    def columns(self) -> dict[str, MetricColumns]:
        """The same points as a :class:`MetricColumns` a key."""
        out: dict[str, MetricColumns] = {}
        at = 0
        for key, n in zip(self.keys, self.lengths, strict=True):
            a, b = at * 8, (at + n) * 8
            out[key] = MetricColumns(
                array("q", self.steps[a:b]),
                array("d", self.values[a:b]),
                array("d", self.times[a:b]),
            )
            at += n
        return out


@dataclass(slots=True)
class WriteBatch:
    """Everything one writer logged to one run between two journal positions."""

    run_uuid: str
    writer: str
    position: int
    start: RunStart | None = None
    params: dict[str, Value] = field(default_factory=dict)
    summary: dict[str, Value] = field(default_factory=dict)
    tags_added: list[str] = field(default_factory=list)
    tags_removed: list[str] = field(default_factory=list)
    notes: str | None = None
    metrics: dict[str, MetricColumns] = field(default_factory=dict)
    #: The batch's metrics column-wise instead (``metrics`` is then empty): only from a
    #: decoder asked for it, for a store that takes it.
    metric_block: MetricBlock | None = None
    artifacts: list[Artifact] = field(default_factory=list)
    finish: RunFinish | None = None
    resume: RunResume | None = None
    heartbeat: float | None = None
    snapshot: dict[str, Value] | None = None
    #: Inputs and seeds recorded by a writer that does not own the snapshot (a script
    #: attached to a ``labkeep run`` run), added to the run's snapshot lists.
    snapshot_add: dict[str, list[Value]] = field(default_factory=dict)
    output: list[tuple[str, float, str]] = field(default_factory=list)
    #: Images, histograms, tables and figures logged, one entry per item (their blobs are
    #: stored already); a (key, step) given again replaces what it held.
    media: list[MediaEntry] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (
            self.start
            or self.params
            or self.summary
            or self.tags_added
            or self.tags_removed
            or self.notes is not None
            or self.metrics
            or self.metric_block is not None
            or self.artifacts
            or self.finish
            or self.resume
            or self.snapshot is not None
            or self.snapshot_add
            or self.output
            or self.media
        )


__all__ = ["MetricBlock", "MetricColumns", "RunFinish", "RunResume", "RunStart", "WriteBatch"]
