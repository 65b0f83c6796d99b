"""Read views of stored runs: ``labkeep.get_run()`` and ``labkeep.runs()``."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from labkeep._values import page_bound
from labkeep.entities import Artifact, MetricSummary, RunInfo, RunRecord, RunStatus
from labkeep.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    import numpy
    import pandas

    from labkeep._media_views import MediaSeries
    from labkeep.entities import ArtifactLink, ModelVersion
    from labkeep.models import ModelInfo
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
    parent_uuid = property(lambda self: self.record.info.parent_uuid)
    group = property(lambda self: self.record.info.group)
    job_type = property(lambda self: self.record.info.job_type)

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
    def tags(self) -> RunTags:
        """The run's tags, sorted; ``add``/``remove`` on them write to the store at once, as
        they do on a live run's ``run.tags``.

        >>> labkeep.get_run(7).tags.add("baseline")  # doctest: +SKIP
        """
        return RunTags(self)

    @property
    def artifacts(self) -> list[Artifact]:
        return list(self.record.artifacts)

    @property
    def models(self) -> list[ModelInfo]:
        """The models stored with the run (``run.log_model``), in the order they were logged.

        >>> [(m.name, m.flavour) for m in labkeep.get_run(7).models]  # doctest: +SKIP
        """
        from labkeep.models import list_models

        return list_models(self)

    @property
    def registered_models(self) -> list[ModelVersion]:
        """The registry's versions whose model is one of this run's.

        >>> [(v.name, v.version) for v in labkeep.get_run(7).registered_models]  # doctest: +SKIP
        [('iris-clf', 1)]
        """
        return self._store.find_model_versions(self.uuid)

    @property
    def lineage(self) -> list[ArtifactLink]:
        """The artifact versions this run produced (``log_artifact(..., type=...)``) and used
        (``use_artifact``), oldest first.

        >>> [(a.label, a.role) for a in labkeep.get_run(7).lineage]  # doctest: +SKIP
        [('train-set:v1', 'used'), ('model-out:v0', 'produced')]
        """
        return self._store.list_artifact_links(run_uuid=self.uuid)

    @property
    def children(self) -> RunList:
        """The runs started inside this one, oldest first: each ``labkeep.init()`` of a
        script under ``labkeep run`` after the one that adopted the run.

        >>> [c.params for c in labkeep.get_run(7).children]  # doctest: +SKIP
        """
        return RunList(self._store, sort="number", parent_uuid=self.uuid)

    @property
    def media_keys(self) -> dict[str, str]:
        """The keys the run logged media under, each with its kind (``image``, ``plotly``,
        ``histogram``, ``table``).

        >>> labkeep.get_run(7).media_keys  # doctest: +SKIP
        {'preds': 'table', 'samples': 'image'}
        """
        return self._store.media_keys(self.number)

    def media(self, key: str) -> MediaSeries:
        """The images, histograms, tables or figures logged under ``key``, by step; each
        item reads its content when asked (``to_numpy()``/``to_pil()``, ``counts``/``edges``,
        ``to_pandas()``/``rows``, ``to_plotly()``).

        >>> samples = labkeep.get_run(7).media("samples")  # doctest: +SKIP
        >>> samples.steps[-1], samples.at(9)[0].to_numpy().shape  # doctest: +SKIP
        (9, (32, 32, 3))
        """
        from labkeep._media_views import MediaSeries

        return MediaSeries(self._store, key, self._store.list_media(self.number, key))

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

    def history(self, keys: str | Sequence[str], downsample: int | None = None) -> pandas.DataFrame:
        """Metrics of this run by step: columns ``step``, ``time`` and one per key, outer-joined
        on step (NaN where a key has no point at a step; a step logged twice keeps its last
        value; ``time`` is the earliest wall time of the step across the keys). A key the run
        never logged is a column of NaN (and a warning on the ``labkeep`` logger), so the same
        call works over runs that logged different keys.

        ``downsample=N`` cuts each key's steps into N equal ranges and keeps the points with
        the smallest and largest value and the last point of each, so peaks survive.

        >>> labkeep.get_run(7).history(["loss", "acc"], downsample=500)  # doctest: +SKIP
        """
        import numpy as np
        import pandas as pd

        names = [keys] if isinstance(keys, str) else list(keys)
        if not names:
            raise InvalidInputError("history needs at least one metric key, e.g. history('loss')")
        if len(set(names)) != len(names):
            raise InvalidInputError(f"history was given a key twice: {names}")
        if downsample is not None and downsample < 1:
            raise InvalidInputError(f"downsample must be 1 or more, not {downsample}")
        values: dict[str, Any] = {}
        times: list[Any] = []
        for key in names:
            try:
                series = self.series(key)
            except NotFoundError as exc:
                logging.getLogger("labkeep").warning("%s", exc)
                empty = np.empty(0, dtype=np.float64)
                series = MetricSeries(key, np.empty(0, dtype=np.int64), empty, empty)
            steps, vals, stamps = _last_per_step(series)
            if downsample is not None:
                keep = _downsample(steps, vals, downsample)
                steps, vals, stamps = steps[keep], vals[keep], stamps[keep]
            values[key] = pd.Series(vals, index=steps)
            times.append(pd.Series(stamps, index=steps))
        joined = pd.concat(values, axis=1, sort=True)
        when = pd.concat(times, axis=1, sort=True).min(axis=1)
        frame = pd.DataFrame(
            {"step": joined.index.to_numpy(dtype=np.int64), "time": when.to_numpy()}
        )
        for key in names:
            frame[key] = joined[key].to_numpy()
        return frame

    def __repr__(self) -> str:
        info = self.record.info
        return f"<labkeep.RunView {info.number} {info.name!r} {info.status.value}>"


class RunTags(Sequence[str]):
    """A stored run's tags: reads like a list (and equals one with the same tags), and
    ``add``/``remove`` change the run in the store, not a copy."""

    def __init__(self, view: RunView) -> None:
        self._view = view

    def _current(self) -> tuple[str, ...]:
        return self._view.record.tags

    def add(self, *tags: str) -> None:
        """Tag the run (tags it has already are left as they are)."""
        from labkeep._run import iter_tags

        new = [t for t in iter_tags(tags) if t not in self._current()]
        if new:
            self._view._store.set_tags(self._view.number, add=new)
            self._replace(sorted({*self._current(), *new}))

    def remove(self, *tags: str) -> None:
        """Untag the run (tags it does not have are ignored)."""
        gone = [t for t in tags if t in self._current()]
        if gone:
            self._view._store.set_tags(self._view.number, remove=gone)
            self._replace([t for t in self._current() if t not in gone])

    def _replace(self, tags: list[str]) -> None:
        from dataclasses import replace

        self._view.record = replace(self._view.record, tags=tuple(tags))

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        tags = self._current()
        return list(tags[index]) if isinstance(index, slice) else tags[index]

    def __len__(self) -> int:
        return len(self._current())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RunTags | list | tuple):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"tags({list(self._current())!r})"


def _last_per_step(series: MetricSeries) -> tuple[Any, Any, Any]:
    """The series ordered by step, one point per step (the last logged)."""
    import numpy as np

    steps = series.steps
    if len(steps) and np.all(steps[1:] > steps[:-1]):
        return steps, series.values, series.times
    # np.unique keeps the first of equal steps: search the reversed series.
    unique, first_in_reversed = np.unique(steps[::-1], return_index=True)
    at = len(steps) - 1 - first_in_reversed
    return unique, series.values[at], series.times[at]


def _downsample(steps: Any, values: Any, buckets: int) -> Any:
    """Indices of the min, the max and the last point in each of ``buckets`` equal step
    ranges of a step-ordered series (NaN is neither min nor max)."""
    import numpy as np

    if len(steps) <= 3 * buckets:
        return np.arange(len(steps))
    span = float(steps[-1] - steps[0]) + 1.0
    bucket = np.minimum(((steps - steps[0]) / span * buckets).astype(np.int64), buckets - 1)
    last = np.flatnonzero(np.r_[bucket[1:] != bucket[:-1], True])
    first = np.r_[0, last[:-1] + 1]
    low = np.where(np.isnan(values), np.inf, values)
    high = np.where(np.isnan(values), -np.inf, values)
    by_low = np.lexsort((low, bucket))  # within a bucket, smallest value first
    by_high = np.lexsort((-high, bucket))
    keep = np.concatenate([last, by_low[first], by_high[first]])
    return np.unique(keep)


class RunList(Sequence[RunView]):
    """The runs that match a query, in order, read lazily: the search runs on first use, the
    runs' records when they are first iterated or indexed, and ``to_pandas()`` reads every
    column in a few bulk queries.

    >>> runs = labkeep.runs(where="metrics.loss < 0.2", sort="metrics.loss", limit=50)  # doctest: +SKIP
    >>> runs.to_pandas()[["number", "params.lr", "metrics.loss"]]  # doctest: +SKIP
    """

    def __init__(
        self,
        store: Store,
        experiment: str | None = None,
        limit: int | None = None,
        *,
        where: str | None = None,
        sort: str | Sequence[str] | None = None,
        offset: int = 0,
        include_deleted: bool = False,
        parent_uuid: str | None = None,
    ) -> None:
        from labkeep.query import parse_query, parse_sort

        # The syntax is checked now, so that a typo fails where it was written; keys are
        # checked against the store on first use.
        if where is not None and where.strip():
            parse_query(where)
        if sort and (not isinstance(sort, str) or sort.strip()):
            parse_sort(sort if isinstance(sort, str) else [s for s in sort if s.strip()])
        self._store = store
        self._experiment = experiment
        self._limit = None if limit is None else page_bound(limit, "limit")
        self._where = where
        self._sort = sort
        self._offset = page_bound(offset, "offset")
        self._include_deleted = include_deleted
        self._parent_uuid = parent_uuid
        self._page: list[int] | None = None
        self._total: int | None = None
        self._views: list[RunView] | None = None

    def _search(self) -> list[int]:
        if self._page is None:
            self._page = self._store.search_numbers(
                self._where,
                self._sort,
                experiment=self._experiment,
                limit=self._limit,
                offset=self._offset,
                include_deleted=self._include_deleted,
                parent_uuid=self._parent_uuid,
            )
        return self._page

    @property
    def numbers(self) -> list[int]:
        """The run numbers, in order."""
        return list(self._search())

    @property
    def total(self) -> int:
        """How many runs match, beyond ``limit`` and ``offset`` too (counted on first use,
        unless the page shows it: one shorter than the limit ends the matches)."""
        if self._total is None:
            from labkeep.store._base import implied_total

            self._total = implied_total(self._search(), self._limit, self._offset)
            if self._total is None:
                self._total = self._store.count_runs(
                    self._where,
                    experiment=self._experiment,
                    include_deleted=self._include_deleted,
                    parent_uuid=self._parent_uuid,
                )
        return self._total

    def _load(self) -> list[RunView]:
        if self._views is None:
            records = self._store.get_records(self._search())
            self._views = [RunView(self._store, r) for r in records]
        return self._views

    def __iter__(self) -> Iterator[RunView]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._search())

    @overload
    def __getitem__(self, index: int) -> RunView: ...
    @overload
    def __getitem__(self, index: slice) -> list[RunView]: ...
    def __getitem__(self, index: int | slice) -> RunView | list[RunView]:
        return self._load()[index]

    def to_columns(self) -> dict[str, Any]:
        """The runs as columns (see :meth:`labkeep.store.Store.get_run_table`)."""
        return self._store.get_run_table(self._search())

    def to_records(self) -> list[dict[str, Any]]:
        """One flat dict per run, every run with the same keys: the attributes (``number``,
        ``uuid``, ``name``, ``experiment``, ``status``, ``start_time``, ``end_time``,
        ``duration``, ``user``, ``host``, ``tags``), ``params.K``, ``metrics.K`` (last),
        ``metrics.K.min``/``.max``/``.count``/``.step`` and ``summary.K``. A run without a
        key has None there, or NaN in a column of numbers."""
        columns = self.to_columns()
        lists = [(name, _as_list(values)) for name, values in columns.items()]
        return [{name: values[i] for name, values in lists} for i in range(len(self._search()))]

    def to_pandas(self) -> pandas.DataFrame:
        """A DataFrame with one row per run and the columns of :meth:`to_records`."""
        import pandas as pd

        columns = self.to_columns()
        return pd.DataFrame(columns, columns=list(columns))

    def __repr__(self) -> str:
        return f"<labkeep.RunList of {len(self)} runs>"


def _as_list(values: Any) -> list[Any]:
    """A column as plain Python values (numpy arrays become lists of floats and ints)."""
    return values.tolist() if hasattr(values, "tolist") else list(values)
