"""Import the runs of Sacred's ``FileStorageObserver``: a directory with one subdirectory per
run (``1/``, ``2/``…) holding ``run.json``, ``config.json``, ``metrics.json``, ``cout.txt``
and the artifacts the run added.

Sacred has no reader for these files beyond ``json``; its format (0.7 and 0.8) is: times as
naive ISO strings in UTC, ``status`` one of QUEUED, RUNNING, COMPLETED, FAILED,
INTERRUPTED, TIMEOUT, metrics as ``{name: {steps, timestamps, values}}``. The config becomes
params (``seed`` included), the run's return value ``summary.result``, the experiment's name
the labkeep experiment, and ``cout.txt`` the run's console output. Sacred numbers runs per
directory, so a run is known by its directory's absolute path: moved, it imports again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from labkeep.entities import RunStatus
from labkeep.integrations._importing import (
    RunReadError,
    SourceError,
    SourceRun,
    flat_params,
    number,
    series,
)

_STATUS = {
    "COMPLETED": RunStatus.COMPLETED,
    "FAILED": RunStatus.FAILED,
    "INTERRUPTED": RunStatus.INTERRUPTED,
    "TIMEOUT": RunStatus.INTERRUPTED,
    "RUNNING": RunStatus.KILLED,
    "QUEUED": RunStatus.KILLED,
}


def _time(text: Any, what: str) -> float:
    if not isinstance(text, str):
        raise ValueError(f"{what} is {text!r}, not an ISO time")
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


class SacredSource:
    """A FileStorageObserver's base directory."""

    tool = "sacred"

    def __init__(self, location: str) -> None:
        self.location = location
        self.root = Path(location).expanduser().resolve()
        if not self.root.is_dir():
            raise SourceError(f"no Sacred run directory at {location}")

    def run_ids(self) -> Sequence[str]:
        runs = [d for d in self.root.iterdir() if d.is_dir() and (d / "run.json").is_file()]
        if not runs:
            raise SourceError(
                f"{self.location} is not a Sacred FileStorageObserver directory: "
                "no run directory with a run.json in it"
            )
        return [str(d) for d in sorted(runs, key=_run_order)]

    def read_run(self, run_id: str) -> SourceRun:
        directory = Path(run_id)
        try:
            return self._read(directory)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            reason = f"{type(exc).__name__}: {exc}" if isinstance(exc, KeyError) else str(exc)
            raise RunReadError(f"Sacred run {directory}: {reason}") from None

    def _read(self, directory: Path) -> SourceRun:
        run = json.loads((directory / "run.json").read_text())
        if not isinstance(run, dict) or "experiment" not in run or "status" not in run:
            raise ValueError("run.json is not a Sacred run (no experiment or status in it)")
        status = run["status"]
        if status not in _STATUS:
            raise ValueError(f"run.json has status {status!r}, which Sacred 0.7/0.8 never write")
        config_file = directory / "config.json"
        config = json.loads(config_file.read_text()) if config_file.is_file() else {}
        start = _time(run["start_time"], "start_time")
        stop = run.get("stop_time") or run.get("heartbeat")
        end = _time(stop, "stop_time") if stop else None
        metrics = {}
        metrics_file = directory / "metrics.json"
        if metrics_file.is_file():
            for key, columns in sorted(json.loads(metrics_file.read_text()).items()):
                points = [
                    (step, value, _time(at, f"{key} timestamp"))
                    for step, value, at in zip(
                        columns["steps"], columns["values"], columns["timestamps"], strict=True
                    )
                    if number(value) is not None
                ]
                metrics[key] = series(points)
        summary: dict[str, Any] = {"sacred.status": status, "sacred.command": run.get("command")}
        if "result" in run and run["result"] is not None:
            summary["result"] = run["result"]
        experiment = run["experiment"]
        if experiment.get("mainfile"):
            summary["sacred.mainfile"] = experiment["mainfile"]
        host = run.get("host") or {}
        output = []
        cout = directory / "cout.txt"
        if cout.is_file():
            at = end if end is not None else start
            output = [
                ("stdout", at, line) for line in cout.read_text(errors="replace").splitlines()
            ]
        artifacts = [
            (name, directory / name)
            for name in run.get("artifacts", [])
            if (directory / name).is_file()
        ]
        fail_trace = run.get("fail_trace")
        return SourceRun(
            source=self.tool,
            source_id=str(directory),
            experiment=experiment.get("name") or self.root.name,
            name=f"{experiment.get('name') or 'run'}-{directory.name}",
            start_time=start,
            end_time=end,
            status=_STATUS[status],
            params=flat_params(config),
            metrics=metrics,
            summary={k: v for k, v in summary.items() if v is not None},
            artifacts=artifacts,
            output=output,
            host=host.get("hostname", ""),
            notes=(run.get("meta") or {}).get("comment") or "",
            error="".join(fail_trace).strip() if isinstance(fail_trace, list) else None,
        )

    def close(self) -> None:
        pass


def _run_order(directory: Path) -> tuple[int, str]:
    return (int(directory.name), "") if directory.name.isdigit() else (2**62, directory.name)
