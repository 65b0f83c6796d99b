"""Import an MLflow tracking store: a file store (``mlruns/``), a SQL store
(``sqlite:///mlflow.db``, ``postgresql://…``) or a tracking server (``http://host:5000``).

Opened with MLflow's own ``MlflowClient`` (which refuses a store of another MLflow version); a
SQL store's tables are then read directly (:mod:`._mlflow_sql`), a file store or server
through the client: experiments (deleted ones too), runs, params, the full
history of every metric (steps and timestamps), tags, artifacts, status and times. MLflow's
tags map to labkeep as: ``mlflow.runName`` → the run's name, ``mlflow.user`` → its user,
``mlflow.note.content`` → its notes, ``mlflow.parentRunId`` → its parent; other ``mlflow.*``
tags are kept in the summary under their own key, and user tags become labkeep tags
``key=value`` (``key`` alone when the value is empty). Deleted runs go to labkeep's trash.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import sqlite3
import tempfile
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkeep.entities import RunStatus
from labkeep.integrations._importing import RunReadError, SourceError, SourceRun, series
from labkeep.integrations._mlflow_sql import MlflowTables, RunData, RunRow

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

_STATUS = {
    "FINISHED": RunStatus.COMPLETED,
    "FAILED": RunStatus.FAILED,
    "KILLED": RunStatus.INTERRUPTED,
    # A run MLflow still calls running (or scheduled) is not followed by labkeep: what was
    # recorded is imported as a run that stopped without saying so.
    "RUNNING": RunStatus.KILLED,
    "SCHEDULED": RunStatus.KILLED,
}
_READ_AHEAD = 500
#: The first window's runs: read while the caller looks for runs it imported before.
_READ_FIRST = 100
#: Windows read at once, each by a thread.
_READERS = 2
_ATTRIBUTE_TAGS = ("mlflow.runName", "mlflow.user", "mlflow.note.content", "mlflow.parentRunId")


def tracking_uri(location: str) -> str:
    """The MLflow tracking URI for what a user typed: a directory, a ``.db`` file or a URI.

    Raises SourceError for a path that holds no MLflow store: MLflow itself would create an
    empty store there (or its tables inside a foreign database)."""
    if "://" in location:
        scheme = location.split("://", 1)[0].lower()
        if scheme == "sqlite":
            _check_sqlite(Path(location.split(":///", 1)[-1]), location)
        elif scheme == "file":
            _check_file_store(Path(location[len("file://") :]))
        elif scheme in ("http", "https"):
            _check_server(location)
        return location
    path = Path(location).expanduser()
    if path.is_file():
        _check_sqlite(path, location)
        return f"sqlite:///{path.resolve()}"
    _check_file_store(path)
    return path.resolve().as_uri()


def _check_file_store(path: Path) -> None:
    if not path.is_dir():
        raise SourceError(f"no MLflow store at {path}: it is not a directory or .db file")
    if not any((d / "meta.yaml").is_file() for d in path.iterdir() if d.is_dir()):
        raise SourceError(
            f"{path} is not an MLflow file store: no experiment directory with a meta.yaml in it"
        )


def _check_sqlite(path: Path, location: str) -> None:
    if not path.is_file():
        raise SourceError(f"no MLflow database at {location}: {path} does not exist")
    try:
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise SourceError(f"{path} is not an SQLite database MLflow wrote ({exc})") from None
    missing = {"experiments", "runs", "metrics", "params", "alembic_version"} - tables
    if missing:
        raise SourceError(
            f"{path} is not an MLflow database: it has no {', '.join(sorted(missing))} table"
        )


def _check_server(uri: str) -> None:
    """A quick look before MLflow's client, which retries an unreachable server for minutes."""
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=10) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise SourceError(
            f"{uri} answered HTTP {exc.code}: is it an MLflow tracking server?"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SourceError(f"cannot reach the MLflow server at {uri} ({reason})") from None


class MlflowSource:
    """An MLflow tracking store opened with ``MlflowClient``."""

    tool = "mlflow"

    def __init__(self, location: str) -> None:
        self.location = location
        self.uri = tracking_uri(location)
        # Reading a file store is allowed (MLflow 3 refuses to *use* one by default), and
        # a server that stops answering fails in seconds, not after minutes of retries.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise SourceError(
                "importing from MLflow needs the mlflow package: pip install 'labkeep[interop]'"
            ) from None
        import mlflow
        from mlflow.exceptions import MlflowException

        # A SQLite store is opened read-only: an MLflow newer than the one that wrote it
        # would otherwise upgrade the user's database while "reading" it.
        read_only = _read_only(self.uri)
        self._stray = _stray_directory(read_only)
        try:
            self._client = MlflowClient(tracking_uri=read_only)
        except MlflowException as exc:
            _remove_stray(self._stray)
            sentence = _first_line(exc).split(". ")[0].rstrip(".")
            raise SourceError(
                f"mlflow {mlflow.__version__} cannot open {location}: {sentence} (a store "
                "written by another MLflow version: import it with that version, or with a "
                "copy upgraded by `mlflow db upgrade`)"
            ) from None
        except Exception as exc:
            _remove_stray(self._stray)
            if "readonly" not in str(exc):
                raise SourceError(
                    f"mlflow {mlflow.__version__} cannot open {location}: {_first_line(exc)}"
                ) from None
            raise SourceError(
                f"mlflow {mlflow.__version__} would have to upgrade {location} to read it (a "
                "store of an older MLflow): import it with the version that wrote it, or "
                "from a copy upgraded by `mlflow db upgrade`"
            ) from None
        self._experiments: dict[str, str] = {}
        self._rows: dict[str, RunRow] = {}
        #: Run id -> its position in the import order, for reading the next runs ahead.
        self._position: dict[str, int] = {}
        self._order: list[str] = []
        #: Params, tags and metric histories of the runs read ahead (SQL stores), or of
        #: every run (the client's search gives them; histories are asked for per key).
        self._data: dict[str, RunData] = {}
        #: The runs of the window being handed out (SQL stores), files aside.
        self._window: dict[str, SourceRun | Exception] = {}
        #: A SQL store's tables, read directly (see _mlflow_sql); None: the client's calls.
        self._tables = MlflowTables.of(self._client)
        #: The next window's read, in a thread of its own: (its first and end positions,
        #: its future).
        self._ahead: deque[tuple[int, int, Future[dict[str, SourceRun | Exception]]]] = deque()
        self._reader: ThreadPoolExecutor | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="labkeep-import-")

    def run_ids(self) -> Sequence[str]:
        from mlflow.exceptions import MlflowException

        try:
            if self._tables is not None:
                self._experiments = self._tables.experiments()
                rows = self._tables.runs()
            else:
                rows = self._search()
        except MlflowException as exc:
            raise SourceError(
                f"MLflow could not read {self.location}: {_first_line(exc)}"
            ) from None
        except Exception as exc:  # a driver or HTTP error below MLflow's own
            raise SourceError(
                f"MLflow could not read {self.location}: {type(exc).__name__}: {_first_line(exc)}"
            ) from None
        # Oldest first, and a parent before its children, so numbers follow MLflow's order.
        rows.sort(key=lambda r: (r.start_time or 0, r.run_id))
        self._rows = {r.run_id: r for r in rows}
        ordered: list[str] = []
        placed: set[str] = set()

        def place(run_id: str, depth: int = 0) -> None:
            if run_id in placed:
                return
            parent = self._rows[run_id].parent_id
            if parent is not None and parent in self._rows and depth < 100:
                place(parent, depth + 1)
            placed.add(run_id)
            ordered.append(run_id)

        for row in rows:
            place(row.run_id)
        self._order = ordered
        self._position = {run_id: i for i, run_id in enumerate(ordered)}
        # The first runs are read meanwhile (a small window: the writing starts sooner).
        self._read_ahead(0, _READ_FIRST)
        return ordered

    def _search(self) -> list[RunRow]:
        """Every run through the client's search (file stores, tracking servers)."""
        from mlflow.entities import ViewType

        experiments = self._client.search_experiments(view_type=ViewType.ALL)
        self._experiments = {e.experiment_id: e.name for e in experiments}
        rows: list[RunRow] = []
        ids = list(self._experiments)
        for i in range(0, len(ids), 100):
            token = None
            while True:
                page = self._client.search_runs(
                    ids[i : i + 100],
                    run_view_type=ViewType.ALL,
                    max_results=10_000,
                    page_token=token,
                )
                for run in page:
                    info, data = run.info, run.data
                    tags = dict(data.tags)
                    rows.append(
                        RunRow(
                            run_id=info.run_id,
                            experiment_id=info.experiment_id,
                            name=info.run_name or "",
                            user_id=info.user_id or "",
                            status=info.status,
                            start_time=info.start_time,
                            end_time=info.end_time,
                            lifecycle_stage=info.lifecycle_stage,
                            artifact_uri=info.artifact_uri,
                            parent_id=tags.get("mlflow.parentRunId"),
                        )
                    )
                    self._data[info.run_id] = RunData(
                        params=dict(data.params), tags=tags, metric_keys=sorted(data.metrics)
                    )
                token = page.token
                if not token:
                    break
        return rows

    def read_run(self, run_id: str) -> SourceRun:
        from mlflow.exceptions import MlflowException

        try:
            run = self._prepared(run_id)
            # On this thread: a run's files are fetched into one directory, emptied for
            # the next run's once the caller has stored them.
            run.artifacts = self._artifacts(run_id, self._rows[run_id].artifact_uri)
            return run
        except MlflowException as exc:
            raise RunReadError(f"MLflow run {run_id}: {_first_line(exc)}") from None
        except OSError as exc:
            raise RunReadError(f"MLflow run {run_id}: {exc}") from None

    def _prepared(self, run_id: str) -> SourceRun:
        """The run without its files: from a SQL store's tables, read a window of runs at
        a time by threads, the next windows while this one's runs are written."""
        if self._tables is None:
            return self._read(self._rows[run_id], self._data.pop(run_id, RunData()))
        found = self._window.pop(run_id, None)
        if found is None:
            at = self._position[run_id]
            while self._ahead and self._ahead[0][1] <= at:  # windows of runs skipped
                self._ahead.popleft()[2].cancel()
            if self._ahead and self._ahead[0][0] <= at:
                _, end, future = self._ahead.popleft()
                self._window = future.result()
            else:
                for _, _, future in self._ahead:
                    future.cancel()
                self._ahead.clear()
                end = at + _READ_AHEAD
                self._window = self._read_window(self._order[at:end])
            self._read_ahead(end)
            found = self._window.pop(run_id)
        if isinstance(found, Exception):
            raise found
        return found

    def _read_ahead(self, at: int, first: int | None = None) -> None:
        """Keep :data:`_READERS` windows being read, each by a thread of its own, while
        this one writes: the reading is mostly in C (SQLite, ADBC, numpy) and lets the
        writer have the GIL; making each run's record is done there too. The next window
        starts where those queued end, else at ``at`` (of ``first`` runs, when given)."""
        if self._tables is None:
            return
        if self._reader is None:
            from concurrent.futures import ThreadPoolExecutor

            self._reader = ThreadPoolExecutor(_READERS, thread_name_prefix="labkeep-import-read")
        if self._ahead:
            at, first = self._ahead[-1][1], None
        while len(self._ahead) < _READERS and at < len(self._order):
            end = min(at + (first or _READ_AHEAD), len(self._order))
            future = self._reader.submit(self._read_window, self._order[at:end])
            self._ahead.append((at, end, future))
            at, first = end, None

    def _read_window(self, ids: list[str]) -> dict[str, SourceRun | Exception]:
        """The runs ``ids`` (files aside), or what reading one of them raised."""
        assert self._tables is not None
        data = self._tables.data(ids)
        window: dict[str, SourceRun | Exception] = {}
        for run_id in ids:
            try:
                window[run_id] = self._read(self._rows[run_id], data[run_id])
            except Exception as exc:  # raised again when the caller reads that run
                window[run_id] = exc
        return window

    def _read(self, info: RunRow, data: RunData) -> SourceRun:
        tags = data.tags
        metrics = data.metrics
        if metrics is None:
            metrics = {}
            for key in data.metric_keys:
                found = self._client.get_metric_history(info.run_id, key)
                points = sorted((m.timestamp, m.step, m.value) for m in found)
                metrics[key] = series((step, value, ms / 1000.0) for ms, step, value in points)
        summary: dict[str, Any] = {
            key: value
            for key, value in tags.items()
            if key.startswith("mlflow.") and key not in _ATTRIBUTE_TAGS
        }
        summary["mlflow.experiment_id"] = info.experiment_id
        summary["mlflow.status"] = info.status
        if info.lifecycle_stage != "active":
            summary["mlflow.lifecycle_stage"] = info.lifecycle_stage
        user_tags = [
            f"{key}={value}" if value else key
            for key, value in sorted(tags.items())
            if not key.startswith("mlflow.")
        ]
        return SourceRun(
            source=self.tool,
            source_id=info.run_id,
            experiment=self._experiments.get(info.experiment_id, info.experiment_id),
            name=tags.get("mlflow.runName") or info.name or "",
            start_time=(info.start_time or 0) / 1000.0,
            end_time=None if info.end_time is None else info.end_time / 1000.0,
            status=_STATUS.get(info.status, RunStatus.KILLED),
            params={key: _param_value(value) for key, value in data.params.items()},
            metrics=metrics,
            summary=summary,
            tags=user_tags,
            user=tags.get("mlflow.user", info.user_id or ""),
            notes=tags.get("mlflow.note.content", ""),
            parent_id=info.parent_id,
            deleted=info.lifecycle_stage == "deleted",
        )

    def _artifacts(self, run_id: str, artifact_uri: str) -> list[tuple[str, Path]]:
        from mlflow.artifacts import download_artifacts, list_artifacts

        local = _local_path(artifact_uri)
        if local is not None and not (local.is_dir() and any(local.iterdir())):
            return []  # most runs log no files: no need to ask MLflow (a query per run)
        if not list_artifacts(artifact_uri=artifact_uri, tracking_uri=self.uri):
            return []
        # One run's files at a time: the previous run's are in the store by now.
        for previous in Path(self._tmp.name).iterdir():
            shutil.rmtree(previous, ignore_errors=True)
        target = Path(self._tmp.name) / run_id
        target.mkdir()
        fetched = Path(
            download_artifacts(
                artifact_uri=artifact_uri, dst_path=str(target), tracking_uri=self.uri
            )
        )
        files = sorted(p for p in fetched.rglob("*") if p.is_file())
        return [(p.relative_to(fetched).as_posix(), p) for p in files]

    def close(self) -> None:
        _remove_stray(self._stray)
        if self._reader is not None:
            self._reader.shutdown(wait=True, cancel_futures=True)
            self._reader = None
        self._ahead.clear()
        self._tmp.cleanup()


@functools.lru_cache(maxsize=4096)  # a store repeats its values across runs (lr=0.01…)
def _param_value(text: str) -> Any:
    """MLflow keeps every param as text: numbers and booleans get their type back."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def _local_path(uri: str) -> Path | None:
    """The directory of a local artifact location (a path, ``file:///abs`` or ``file:/abs``),
    else None."""
    if uri.startswith("file:"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(uri).path))
    remote = ("mlflow-artifacts:", "dbfs:", "runs:", "models:")
    return Path(uri) if "://" not in uri and not uri.startswith(remote) else None


def _stray_directory(uri: str) -> Path | None:
    """The directory MLflow makes below the working directory for the read-only URI of a
    SQLite store, where it does not exist yet: MLflow takes what follows ``sqlite:///``
    (``file:///abs/mlflow.db?…``) for a path and creates its parent, ``./file:/abs``."""
    if not uri.startswith("sqlite:///file:"):
        return None
    top = Path(Path(uri.removeprefix("sqlite:///")).parts[0])
    return None if top.is_absolute() or top.exists() else top.absolute()


def _remove_stray(top: Path | None) -> None:
    """Remove what :func:`_stray_directory` named, if it holds nothing but empty folders."""
    if top is None or not top.is_dir():
        return
    for folder, _subfolders, files in os.walk(top, topdown=False):
        if files:
            return
        with contextlib.suppress(OSError):
            os.rmdir(folder)


def _read_only(uri: str) -> str:
    """``sqlite:///PATH`` as a URI SQLite opens read-only."""
    if not uri.startswith("sqlite:///") or "?" in uri:
        return uri
    path = Path(uri[len("sqlite:///") :]).resolve()
    return f"sqlite:///{path.as_uri()}?mode=ro&uri=true"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
