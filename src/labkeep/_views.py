"""Read views of stored runs: ``labkeep.get_run()`` and ``labkeep.runs()``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkeep.entities import Artifact, MetricSummary, RunInfo, RunRecord, RunStatus
from labkeep.errors import NotFoundError

if TYPE_CHECKING:
    import numpy
    import pandas

    from labkeep.store._base import Store


@dataclass(frozen=True, slots=True)
class MetricSeries:
    """One metric's points as numpy arrays, in logging order."""

    key: str
    steps: numpy.ndarray[Any, Any]
    values: numpy.ndarray[Any, Any]
    times: numpy.ndarray[Any, Any]

    def __len__(self) -> int:
        return len(self.steps)


class RunView:
    """A stored run, read once: attributes, params, metric summaries, summary, tags, artifacts.

    >>> run = labkeep.get_run("last")  # doctest: +SKIP
    >>> run.metrics["loss"].min        # doctest: +SKIP
    """

    def __init__(self, store: Store, record: RunRecord) -> None:
        self._store = store
        self.record = record

    @property
    def info(self) -> RunInfo:
        return self.record.info

    number = property(lambda self: self.record.info.number)
    uuid = property(lambda self: self.record.info.uuid)
    name = property(lambda self: self.record.info.name)
    experiment = property(lambda self: self.record.info.experiment)
    start_time = property(lambda self: self.record.info.start_time)
    end_time = property(lambda self: self.record.info.end_time)
    duration = property(lambda self: self.record.info.duration)
    notes = property(lambda self: self.record.info.notes)
    error = property(lambda self: self.record.info.error)

    @property
    def status(self) -> RunStatus:
        return self.record.info.status

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.record.params)

    @property
    def config(self) -> dict[str, Any]:
        return self.params

    @property
    def metrics(self) -> dict[str, MetricSummary]:
        return dict(self.record.metrics)

    @property
    def summary(self) -> dict[str, Any]:
        return dict(self.record.summary)

    @property
    def tags(self) -> list[str]:
        return list(self.record.tags)

    @property
    def artifacts(self) -> list[Artifact]:
        return list(self.record.artifacts)

    def artifact_path(self, name: str) -> Path:
        """Local path of a stored artifact's content (read-only)."""
        for art in self.record.artifacts:
            if art.path == name:
                return self._store.blob_path(art.sha256)
        names = ", ".join(a.path for a in self.record.artifacts[:10]) or "none"
        raise NotFoundError(f"run {self.number} has no artifact {name!r} (artifacts: {names})")

    def series(self, key: str) -> MetricSeries:
        """Every point of one metric as numpy arrays (steps int64, values and times float64)."""
        import numpy as np

        steps, values, times = self._store.get_history_bytes(self.number, key)
        return MetricSeries(
            key,
            np.frombuffer(steps, dtype="<i8"),
            np.frombuffer(values, dtype="<f8"),
            np.frombuffer(times, dtype="<f8"),
        )

    def __repr__(self) -> str:
        info = self.record.info
        return f"<labkeep.RunView {info.number} {info.name!r} {info.status.value}>"


class RunList(Sequence[RunView]):
    """Runs of a store, read lazily on first use; iterable, indexable, convertible."""

    def __init__(
        self, store: Store, experiment: str | None = None, limit: int | None = None
    ) -> None:
        self._store = store
        self._experiment = experiment
        self._limit = limit
        self._views: list[RunView] | None = None

    def _load(self) -> list[RunView]:
        if self._views is None:
            if not self._store.exists():
                self._views = []
            else:
                infos = self._store.list_runs(self._experiment, limit=self._limit)
                records = self._store.get_records([i.number for i in infos])
                self._views = [RunView(self._store, r) for r in records]
        return self._views

    def __iter__(self) -> Iterator[RunView]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())

    def __getitem__(self, index: Any) -> Any:
        return self._load()[index]

    def to_records(self) -> list[dict[str, Any]]:
        """One flat dict per run: attributes, ``params.*``, ``metrics.*`` (last) and summaries."""
        rows = []
        for view in self._load():
            info = view.info
            row: dict[str, Any] = {
                "number": info.number,
                "uuid": info.uuid,
                "name": info.name,
                "experiment": info.experiment,
                "status": info.status.value,
                "start_time": info.start_time,
                "end_time": info.end_time,
                "duration": info.duration,
                "user": info.user,
                "host": info.host,
                "tags": list(view.record.tags),
            }
            for key, value in view.record.params.items():
                row[f"params.{key}"] = value
            for key, m in view.record.metrics.items():
                row[f"metrics.{key}"] = m.last
                row[f"metrics.{key}.min"] = m.min
                row[f"metrics.{key}.max"] = m.max
                row[f"metrics.{key}.count"] = m.count
                row[f"metrics.{key}.step"] = m.last_step
            for key, value in view.record.summary.items():
                row[f"summary.{key}"] = value
            rows.append(row)
        return rows

    def to_pandas(self) -> pandas.DataFrame:
        import pandas as pd

        return pd.DataFrame.from_records(self.to_records())

    def __repr__(self) -> str:
        return f"<labkeep.RunList of {len(self)} runs>"
