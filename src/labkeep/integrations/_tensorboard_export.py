"""Export runs as TensorBoard event files: ``labkeep tensorboard``.

One directory per run, named ``<number>-<name>`` (``<number>`` for a run without a name), holds
one event file: every metric point as a scalar at its step and wall time, and the HParams plugin's session (params as hparams, the run's
status as the session's end). The log directory itself holds the HParams experiment: every
param and every metric key of the runs exported, as Guild's ``guild tensorboard`` writes it
for TensorBoard's parallel-coordinates view. Written with TensorBoard's own event writer and
protos (``tensorboard.summary.writer``, ``tensorboard.plugins.hparams.summary_v2``), which
need only the ``tensorboard`` package, not TensorFlow. Values are float32 scalar tensors, as
``tensorboard.summary.Writer`` writes them: TensorBoard's fast loader (``tensorboard-data-server``,
its default where installed) leaves float64 scalars out of its charts (seen with 2.21).

Each run directory keeps a small marker (``.labkeep-export.json``: the run's uuid, the last
step and time per metric, a fingerprint of what was written); exporting again rewrites only
runs whose fingerprint changed, moves a renamed run's directory, and removes the directories
of runs no longer selected (only directories holding that marker: nothing else is touched).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkeep._views import RunView
from labkeep.entities import RunRecord, RunStatus
from labkeep.errors import InvalidInputError

if TYPE_CHECKING:
    from labkeep.store._base import Store

MARKER = ".labkeep-export.json"
_EVENT_GLOB = "events.out.tfevents.*"
_UNSAFE = re.compile(r"[^\w.+=-]+")
_SYSTEM_PREFIX = "sys/"


class TensorboardMissingError(InvalidInputError):
    """The tensorboard package is not installed."""


@dataclass
class ExportReport:
    """What one export did: run directories written, left as they were, and removed."""

    logdir: Path
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def require_tensorboard() -> None:
    """Raise a one-line error naming the extra when tensorboard cannot be imported."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise TensorboardMissingError(
            "labkeep tensorboard needs the tensorboard package: pip install 'labkeep[interop]'"
        ) from None


def run_dirname(number: int, name: str) -> str:
    """The directory a run is exported to: ``12-bold-fox`` (unsafe characters as ``_``)."""
    cleaned = _UNSAFE.sub("_", name).strip("._")
    return f"{number}-{cleaned}" if cleaned else str(number)


def export_runs(store: Store, numbers: Sequence[int], logdir: Path) -> ExportReport:
    """Write these runs under ``logdir`` as TensorBoard reads them; only changed runs are
    rewritten.

    >>> export_runs(client.store, [3, 4], Path("tb"))  # doctest: +SKIP
    """
    require_tensorboard()
    logdir = logdir.expanduser().resolve()
    logdir.mkdir(parents=True, exist_ok=True)
    report = ExportReport(logdir)
    existing = _existing_exports(logdir)
    records = store.get_records(list(numbers))
    for record in records:
        info = record.info
        dirname = run_dirname(info.number, info.name or "")
        fingerprint = _fingerprint(record)
        old = existing.get(info.uuid)
        if old is not None and old[0] != dirname:
            shutil.rmtree(logdir / old[0])
            report.removed.append(old[0])
            old = None
        if old is not None and old[1] == fingerprint:
            report.unchanged.append(dirname)
            continue
        _write_run(store, record, logdir / dirname, fingerprint)
        report.written.append(dirname)
    selected = {r.info.uuid for r in records}
    for uuid, (dirname, _) in sorted(existing.items(), key=lambda item: item[1]):
        if uuid not in selected and dirname not in report.written:
            # The log directory shows the runs selected, as the HParams experiment lists them.
            shutil.rmtree(logdir / dirname)
            report.removed.append(dirname)
    if report.written or report.removed or not list(logdir.glob(_EVENT_GLOB)):
        _write_experiment(records, logdir)
    return report


def _existing_exports(logdir: Path) -> dict[str, tuple[str, str]]:
    """uuid -> (directory name, fingerprint) of the runs already exported under ``logdir``."""
    found: dict[str, tuple[str, str]] = {}
    for marker in logdir.glob(f"*/{MARKER}"):
        try:
            data = json.loads(marker.read_text())
            found[str(data["uuid"])] = (marker.parent.name, str(data["fingerprint"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged marker: the run is written again
    return found


def _fingerprint(record: RunRecord) -> str:
    info = record.info
    state = {
        "name": info.name,
        "status": info.status.value,
        "start": info.start_time,
        "end": info.end_time,
        "params": {k: repr(v) for k, v in sorted(record.params.items())},
        "metrics": {
            k: [m.count, m.last_step, m.last_time, repr(m.last)]
            for k, m in sorted(record.metrics.items())
        },
    }
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:32]


def hparam_value(value: Any) -> bool | int | float | str:
    """A param as HParams holds it: bool, number or string (lists and None as JSON text)."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return value
    return json.dumps(value)


def _write_run(store: Store, record: RunRecord, directory: Path, fingerprint: str) -> None:
    import numpy as np

    from labkeep.integrations._tensorboard import tensorboard_without_tensorflow

    tensorboard_without_tensorflow()
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.hparams import summary_v2 as hparams_summary
    from tensorboard.plugins.scalar import metadata as scalar_metadata
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    from tensorboard.util import tensor_util

    info = record.info
    if directory.exists():
        if not (directory / MARKER).is_file():
            raise InvalidInputError(
                f"{directory} exists and was not written by labkeep tensorboard: "
                "give another --logdir"
            )
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    writer = EventFileWriter(str(directory))
    last: dict[str, list[float]] = {}
    try:
        start = info.start_time
        session = hparams_summary.hparams_pb(
            {k: hparam_value(v) for k, v in record.params.items()},
            trial_id=directory.name,
            start_time_secs=start,
        )
        writer.add_event(event_pb2.Event(wall_time=start, step=0, summary=session))
        view = RunView(store, record)
        for key in sorted(record.metrics):
            series = view.series(key)
            metadata = scalar_metadata.create_summary_metadata(display_name=key, description="")
            for step, value, when in zip(
                series.steps.tolist(), series.values.tolist(), series.times.tolist(), strict=True
            ):
                summary = summary_pb2.Summary()
                summary.value.add(
                    tag=key,
                    metadata=metadata,
                    tensor=tensor_util.make_tensor_proto(np.float32(value)),
                )
                writer.add_event(event_pb2.Event(wall_time=when, step=step, summary=summary))
            if len(series):
                last[key] = [int(series.steps[-1]), float(series.times[-1])]
        if info.status is not RunStatus.RUNNING:
            end = info.end_time if info.end_time is not None else start
            writer.add_event(
                event_pb2.Event(wall_time=end, step=0, summary=_session_end(info.status, end))
            )
    finally:
        writer.close()
    marker = {
        "uuid": info.uuid,
        "number": info.number,
        "fingerprint": fingerprint,
        "last": last,
    }
    (directory / MARKER).write_text(json.dumps(marker, indent=1) + "\n")


def _session_end(status: RunStatus, end: float) -> Any:
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
    from tensorboard.plugins.hparams import metadata as hparams_metadata

    # A killed run's session never ended: HParams' RUNNING, which the importer reads back
    # as killed (see _tensorboard.py).
    code = {
        RunStatus.COMPLETED: api_pb2.STATUS_SUCCESS,
        RunStatus.FAILED: api_pb2.STATUS_FAILURE,
        RunStatus.INTERRUPTED: api_pb2.STATUS_FAILURE,
        RunStatus.KILLED: api_pb2.STATUS_RUNNING,
    }.get(status, api_pb2.STATUS_UNKNOWN)
    data = plugin_data_pb2.HParamsPluginData(
        session_end_info=plugin_data_pb2.SessionEndInfo(status=code, end_time_secs=end)
    )
    summary = summary_pb2.Summary()
    summary.value.add(
        tag=hparams_metadata.SESSION_END_INFO_TAG,
        metadata=hparams_metadata.create_summary_metadata(data),
        tensor=hparams_metadata.NULL_TENSOR,
    )
    return summary


def _write_experiment(records: Sequence[RunRecord], logdir: Path) -> None:
    """The HParams experiment in the log directory: each param with its domain over the runs
    exported, each metric key (system metrics aside) as an HParams metric."""
    from tensorboard.compat.proto import event_pb2
    from tensorboard.plugins.hparams import summary_v2 as hparams_summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    values: dict[str, list[Any]] = {}
    for record in records:
        for key, value in record.params.items():
            values.setdefault(key, []).append(hparam_value(value))
    hparams = [hparams_summary.HParam(key, _domain(vals)) for key, vals in sorted(values.items())]
    keys = sorted(
        {k for r in records for k in r.metrics if not k.startswith(_SYSTEM_PREFIX)},
    )
    metrics = [hparams_summary.Metric(key, display_name=key) for key in keys]
    created = min((r.info.start_time for r in records), default=0.0)
    summary = hparams_summary.hparams_config_pb(hparams, metrics, time_created_secs=created)
    for old in logdir.glob(_EVENT_GLOB):
        old.unlink()
    writer = EventFileWriter(str(logdir))
    try:
        writer.add_event(event_pb2.Event(wall_time=created, step=0, summary=summary))
    finally:
        writer.close()


def _domain(values: list[Any]) -> Any:
    """HParams' domain for a param's values: an interval of numbers, else the discrete set
    (values of mixed kinds as strings)."""
    from tensorboard.plugins.hparams import summary_v2 as hparams_summary

    if all(isinstance(v, bool) for v in values):
        return hparams_summary.Discrete(sorted(set(values)))
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(numbers) == len(values) and all(math.isfinite(v) for v in numbers):
        return hparams_summary.RealInterval(float(min(numbers)), float(max(numbers)))
    if all(isinstance(v, str) for v in values):
        return hparams_summary.Discrete(sorted(set(values)))
    return None


class PortInUseError(InvalidInputError):
    """The port asked for TensorBoard is taken."""


def check_port(port: int, host: str = "127.0.0.1") -> None:
    """Raise :class:`PortInUseError` when ``host:port`` cannot be bound."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PortInUseError(
                f"port {port} on {host} is in use ({exc.strerror}): give another with --port"
            ) from None


def start_tensorboard(logdir: Path, port: int, host: str = "127.0.0.1") -> Any:
    """Start TensorBoard on ``logdir`` in a child process; returns its ``subprocess.Popen``."""
    import subprocess
    import sys

    require_tensorboard()
    check_port(port, host)
    command = [
        sys.executable,
        "-m",
        "tensorboard.main",
        "--logdir",
        str(logdir),
        "--port",
        str(port),
        "--host",
        host,
    ]
    return subprocess.Popen(command)
