"""Plain frozen records that cross layer boundaries. ORM rows never leave the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

#: A param, summary or config value: typed, never silently stringified.
Value = Any

#: Summary keys labkeep reserves to record that a run's data is incomplete: what recovery
#: could not read from a damaged journal (text), and how many points were dropped while the
#: journal had no disk space (an int). ``show`` reports them.
JOURNAL_DAMAGE_KEY = "labkeep.journal_damage"
DROPPED_POINTS_KEY = "labkeep.dropped_points"
#: On a sweep's trial: the sweep's number and the trial's index. A trial shares its process
#: with others (the sweep's controller, a Dask worker), so ``labkeep stop`` asks for it to
#: stop through the store, with ``STOP_REQUEST_KEY`` (the time asked), instead of a signal.
SWEEP_KEY = "labkeep.sweep"
TRIAL_KEY = "labkeep.trial"
STOP_REQUEST_KEY = "labkeep.stop_requested"
#: The summary key holding a sweep run's spec: what makes a run a sweep.
SWEEP_SPEC_KEY = "labkeep.sweep_spec"


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    KILLED = "killed"

    @property
    def finished(self) -> bool:
        return self is not RunStatus.RUNNING


@dataclass(frozen=True, slots=True)
class MetricSummary:
    """Per-key summary of a metric series, kept current as points arrive.

    ``min``/``max`` ignore NaN (``None`` when every value was NaN); ``last`` is the most
    recently logged value, NaN included.
    """

    key: str
    last: float
    last_step: int
    last_time: float
    min: float | None
    max: float | None
    count: int


@dataclass(frozen=True, slots=True)
class Artifact:
    path: str
    sha256: str
    size: int
    kind: str = "output"
    created: float = 0.0


@dataclass(frozen=True, slots=True)
class MediaEntry:
    """One image, histogram, table or plotly figure a run logged under ``key`` at ``step``
    (``index``: its place in a list logged at once). The content is the blob ``sha256``;
    ``meta`` holds what describes it without reading it (an image's size and caption, a
    table's shape, a histogram's bins)."""

    key: str
    step: int
    index: int
    kind: str
    sha256: str
    size: int
    time: float
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunInfo:
    """The attributes of a run, without its params, metrics or artifacts."""

    number: int
    uuid: str
    experiment: str
    name: str
    status: RunStatus
    start_time: float
    end_time: float | None = None
    heartbeat: float | None = None
    user: str = ""
    host: str = ""
    pid: int | None = None
    notes: str = ""
    error: str | None = None
    exit_code: int | None = None
    parent_uuid: str | None = None
    deleted: bool = False
    reproduces_uuid: str | None = None
    #: Runs that belong together (``init(group="cv-5fold")``) and this run's part in them
    #: (``job_type="fold"``); None when not given.
    group: str | None = None
    job_type: str | None = None

    @property
    def duration(self) -> float | None:
        end = self.end_time if self.end_time is not None else self.heartbeat
        return None if end is None else max(0.0, end - self.start_time)


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run with everything the store holds about it, as one read."""

    info: RunInfo
    params: dict[str, Value] = field(default_factory=dict)
    metrics: dict[str, MetricSummary] = field(default_factory=dict)
    summary: dict[str, Value] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    artifacts: tuple[Artifact, ...] = ()


@dataclass(frozen=True, slots=True)
class OutputLine:
    """One line of a run's console output, as the user saw it."""

    id: int
    stream: str
    time: float
    text: str


@dataclass(frozen=True, slots=True)
class MetricHistory:
    """One key's points, as parallel columns in logging order."""

    key: str
    steps: list[int]
    values: list[float]
    times: list[float]

    def __len__(self) -> int:
        return len(self.steps)


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One numbered version of a registered model: a run's model (``runs:/UUID/PATH``).

    >>> labkeep.register_model("runs:/7/model", "iris-clf").version  # doctest: +SKIP
    1
    """

    name: str
    version: int
    run_uuid: str
    model_path: str
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    created: float = 0.0

    @property
    def source(self) -> str:
        """The run's model this version points at: ``runs:/RUN_UUID/PATH``."""
        return f"runs:/{self.run_uuid}/{self.model_path}"

    @property
    def uri(self) -> str:
        """``models:/NAME/VERSION``, what :func:`labkeep.load_model` takes."""
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A named model of the registry, with its versions' count and its aliases."""

    name: str
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    created: float = 0.0
    updated: float = 0.0
    latest_version: int | None = None
    #: alias → version (``{"production": 1}``).
    aliases: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ArtifactFile:
    """One file of a versioned artifact: its path inside the artifact and its blob."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class ArtifactVersion:
    """One version of a named artifact (``train-set:v1``): a set of files, identified by
    their content (``digest``): logging the same files again gives the same version.
    ``files`` is filled by :meth:`Store.get_artifact_version`, empty in listings."""

    name: str
    type: str
    version: int
    digest: str
    size: int
    file_count: int
    run_uuid: str
    created: float = 0.0
    aliases: tuple[str, ...] = ()
    files: tuple[ArtifactFile, ...] = ()

    @property
    def label(self) -> str:
        """``NAME:vN``, what :func:`labkeep.use_artifact` takes."""
        return f"{self.name}:v{self.version}"


@dataclass(frozen=True, slots=True)
class NamedArtifact:
    """A named artifact and how many versions it has."""

    name: str
    type: str
    created: float
    latest_version: int
    version_count: int


@dataclass(frozen=True, slots=True)
class ArtifactLink:
    """A run produced (logged) or used (``use_artifact``) one version of a named artifact."""

    run_uuid: str
    name: str
    version: int
    type: str
    role: str  # "produced" or "used"
    created: float = 0.0

    @property
    def label(self) -> str:
        return f"{self.name}:v{self.version}"
