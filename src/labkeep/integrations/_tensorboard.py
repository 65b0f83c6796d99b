"""Import TensorBoard event directories: every directory holding ``events.out.tfevents.*``
files is one run, as TensorBoard itself shows them.

Read with TensorBoard's own ``event_accumulator``: scalars (``simple_value`` summaries as
``SummaryWriter`` writes them, and scalar tensors as ``tf.summary``/``tensorboard.summary``
write them) with their steps and wall times, and the HParams plugin's session data
(hyperparameters become params, the session's end status the run's status). A directory
that holds only an HParams session and sits inside a run (what ``add_hparams`` of PyTorch's
and tensorboardX's ``SummaryWriter`` write) belongs to that run. A run is known by its
directory's absolute path: logs moved elsewhere are imported again as new runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkeep.entities import RunStatus
from labkeep.integrations._importing import RunReadError, SourceError, SourceRun, series

_EVENT_GLOB = "*tfevents*"
# HParams' Status enum (plugins/hparams/api.proto): UNKNOWN 0, SUCCESS 1, FAILURE 2, RUNNING 3.
_HPARAMS_STATUS = {1: RunStatus.COMPLETED, 2: RunStatus.FAILED, 3: RunStatus.KILLED}


@dataclass
class EventData:
    """What one directory's event files hold."""

    metrics: dict[str, list[tuple[int, float, float]]] = field(default_factory=dict)
    hparams: dict[str, Any] = field(default_factory=dict)
    has_session: bool = False
    status: RunStatus | None = None
    first_time: float | None = None
    last_time: float | None = None


def event_dirs(root: Path) -> list[Path]:
    """Directories under ``root`` (itself included) that hold event files, sorted."""
    found = {p.parent for p in root.rglob(_EVENT_GLOB) if p.is_file()}
    return sorted(found)


def tensorboard_without_tensorflow() -> None:
    """TensorBoard's event reader and writer on its own TensorFlow-free stub, unless the
    process has loaded TensorFlow already: event files need nothing of TensorFlow, whose import
    takes seconds and prints its CPU notices to stderr. ``tensorboard.compat.notf`` is
    TensorBoard's own switch for that (its builds without TensorFlow): present while
    ``tensorboard.compat.tf`` is first resolved, which it then stays for the process (a
    script's own ``import tensorflow`` is unaffected)."""
    import sys
    import types

    if "tensorflow" in sys.modules:
        return
    import tensorboard.compat as compat

    switch = "tensorboard.compat.notf"
    placed = switch not in sys.modules
    if placed:
        sys.modules[switch] = types.ModuleType(switch)
    try:
        getattr(compat.tf, "__version__", None)  # resolves the lazy module once
    finally:
        if placed:
            del sys.modules[switch]


def read_event_dir(directory: Path) -> EventData:
    """The scalars and HParams of one directory's event files (not its subdirectories)."""
    tensorboard_without_tensorflow()
    from tensorboard.backend.event_processing import event_accumulator as ea

    accumulator = ea.EventAccumulator(str(directory), size_guidance={ea.SCALARS: 0, ea.TENSORS: 0})
    try:
        accumulator.Reload()
    except Exception as exc:
        raise RunReadError(f"TensorBoard event files in {directory}: {exc}") from None
    version = accumulator.file_version
    if version is None:
        # Every event file begins with its version: none read means none TensorBoard reads.
        names = ", ".join(sorted(p.name for p in directory.glob(_EVENT_GLOB)))
        raise RunReadError(
            f"TensorBoard cannot read the event files in {directory} ({names}): "
            "damaged, or not event files"
        )
    if version and version not in (1.0, 2.0):
        raise RunReadError(
            f"TensorBoard event files in {directory} are of version {version}; "
            "this importer reads versions 1 and 2"
        )
    data = EventData()
    tags = accumulator.Tags()
    for tag in tags.get("scalars", []):
        data.metrics[tag] = [(e.step, e.value, e.wall_time) for e in accumulator.Scalars(tag)]
    for tag in tags.get("tensors", []):
        metadata = accumulator.SummaryMetadata(tag)
        if metadata.plugin_data.plugin_name != "scalars":
            continue
        from tensorboard.util import tensor_util

        points = []
        for event in accumulator.Tensors(tag):
            value = tensor_util.make_ndarray(event.tensor_proto)
            if value.size == 1:
                points.append((event.step, float(value.reshape(())), event.wall_time))
        data.metrics[tag] = points
    _read_hparams(accumulator, data)
    times = [t for points in data.metrics.values() for _s, _v, t in points]
    if times:
        data.first_time, data.last_time = min(times), max(times)
    return data


def _read_hparams(accumulator: Any, data: EventData) -> None:
    from tensorboard.plugins.hparams import plugin_data_pb2

    try:
        contents = accumulator.PluginTagToContent("hparams")
    except KeyError:
        return
    for content in contents.values():
        plugin = plugin_data_pb2.HParamsPluginData.FromString(content)
        kind = plugin.WhichOneof("data")
        if kind == "session_start_info":
            data.has_session = True
            for name, value in plugin.session_start_info.hparams.items():
                data.hparams[name] = _proto_value(value)
        elif kind == "session_end_info":
            data.status = _HPARAMS_STATUS.get(plugin.session_end_info.status)


def _proto_value(value: Any) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    return None


class TensorboardSource:
    """A directory tree of TensorBoard event files."""

    tool = "tensorboard"

    def __init__(self, location: str) -> None:
        self.location = location
        self.root = Path(location).expanduser().resolve()
        if not self.root.is_dir():
            raise SourceError(f"no TensorBoard log directory at {location}")
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            raise SourceError(
                "importing TensorBoard logs needs the tensorboard package: "
                "pip install 'labkeep[interop]'"
            ) from None
        self._dirs: list[Path] = []
        self._sessions: dict[Path, list[Path]] = {}
        self._cache: dict[Path, EventData] = {}

    def run_ids(self) -> Sequence[str]:
        dirs = event_dirs(self.root)
        if not dirs:
            raise SourceError(
                f"{self.location} holds no TensorBoard event files (events.out.tfevents.*)"
            )
        runs = set(dirs)
        for directory in dirs:
            parent = directory.parent
            if parent not in runs or not self._holds(directory, session=True):
                continue
            if self._holds(parent, scalars=True) and not self._holds(parent, session=True):
                # add_hparams of PyTorch's or tensorboardX's SummaryWriter: the session
                # sits in a directory of its own inside the run it describes.
                runs.discard(directory)
                self._sessions.setdefault(parent, []).append(directory)
            elif not self._holds(parent, scalars=True):
                # tf.summary's HParams layout: the parent holds only the experiment's
                # configuration, each session below it is a run.
                runs.discard(parent)
        self._dirs = sorted(runs)
        return [str(d) for d in self._dirs]

    def read_run(self, run_id: str) -> SourceRun:
        directory = Path(run_id)
        data = self._read(directory)
        for session in self._sessions.get(directory, []):
            extra = self._read(session)
            data.hparams.update(extra.hparams)
            data.status = extra.status or data.status
            for key, points in extra.metrics.items():
                data.metrics.setdefault(key, []).extend(points)
            for when in (extra.first_time, extra.last_time):
                if when is not None:
                    data.first_time = min(data.first_time or when, when)
                    data.last_time = max(data.last_time or when, when)
        name = directory.relative_to(self.root).as_posix()
        start = data.first_time if data.first_time is not None else directory.stat().st_mtime
        return SourceRun(
            source=self.tool,
            source_id=run_id,
            experiment=self.root.name,
            name="" if name == "." else name,
            start_time=start,
            end_time=data.last_time if data.last_time is not None else start,
            status=data.status or RunStatus.COMPLETED,
            params=data.hparams,
            metrics={
                key: series(sorted(points, key=lambda p: (p[2], p[0])))
                for key, points in sorted(data.metrics.items())
                if points and all(not math.isinf(p[2]) for p in points)
            },
            summary={"tensorboard.logdir": run_id},
        )

    def close(self) -> None:
        self._cache.clear()

    def _read(self, directory: Path) -> EventData:
        data = self._cache.pop(directory, None)
        return data if data is not None else read_event_dir(directory)

    def _holds(self, directory: Path, *, session: bool = False, scalars: bool = False) -> bool:
        """Whether a directory's own events hold an HParams session, or scalars."""
        if directory not in self._cache:
            try:
                self._cache[directory] = read_event_dir(directory)
            except RunReadError:
                return False
        data = self._cache[directory]
        return (session and data.has_session) or (scalars and bool(data.metrics))
