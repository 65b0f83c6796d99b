"""Import Guild AI runs: a runs directory (``~/.guild/runs``) holding one directory per run,
named by its id, or one run directory itself.

Guild's layout (guild/run.py, documented under "Runs"): ``<run>/.guild/attrs/<name>`` holds
one YAML value per attribute (``flags``, ``started`` and ``stopped`` in microseconds since
the epoch, ``exit_status``, ``label``, ``tags``, ``host``, ``user``, ``cmd``…),
``<run>/.guild/opref`` names the operation (``guildfile:'…/guild.yml' 'digest' 'model'
'op'``), ``<run>/.guild/output`` is the console output, and scalars are TensorBoard event
files anywhere in the run directory (Guild writes the output scalars it parses to
``.guild/``); they are read with TensorBoard's reader. Status follows Guild's rule: exit
status 0 completed, negative terminated (labkeep: interrupted), positive error (failed), no
``stopped`` a run that never said it ended (killed). The run's other files are artifacts
(``.guild/`` itself and the source code copy Guild keeps are not).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labkeep.entities import RunStatus
from labkeep.integrations._importing import (
    RunReadError,
    SourceError,
    SourceRun,
    flat_params,
    series,
)

_MAX_ARTIFACTS = 10_000


def _attr(directory: Path, name: str) -> Any:
    import yaml

    path = directory / ".guild" / "attrs" / name
    if not path.is_file():
        return None
    return yaml.safe_load(path.read_text())


def _is_run(directory: Path) -> bool:
    return (directory / ".guild" / "attrs").is_dir() or (directory / ".guild" / "opref").is_file()


class GuildSource:
    """A Guild runs directory, or one run directory."""

    tool = "guild"

    def __init__(self, location: str) -> None:
        self.location = location
        self.root = Path(location).expanduser().resolve()
        if not self.root.is_dir():
            raise SourceError(f"no Guild runs directory at {location}")
        try:
            import yaml  # noqa: F401
        except ImportError:
            raise SourceError(
                "importing Guild runs needs PyYAML: pip install 'labkeep[interop]'"
            ) from None
        self._dirs: dict[str, Path] = {}

    def run_ids(self) -> Sequence[str]:
        if _is_run(self.root):
            dirs = [self.root]
        else:
            dirs = sorted(d for d in self.root.iterdir() if d.is_dir() and _is_run(d))
        if not dirs:
            raise SourceError(
                f"{self.location} is not a Guild runs directory: no run with a .guild/attrs "
                "directory in it"
            )
        self._dirs = {d.name: d for d in dirs}
        return sorted(self._dirs, key=lambda i: (_started(self._dirs[i]), i))

    def read_run(self, run_id: str) -> SourceRun:
        directory = self._dirs[run_id]
        try:
            return self._read(run_id, directory)
        except RunReadError:
            raise
        except Exception as exc:  # YAML errors, odd attribute types
            raise RunReadError(f"Guild run {directory}: {type(exc).__name__}: {exc}") from None

    def _read(self, run_id: str, directory: Path) -> SourceRun:
        started = _attr(directory, "started")
        if not isinstance(started, int):
            raise RunReadError(
                f"Guild run {directory}: .guild/attrs/started is {started!r}, not the "
                "microsecond timestamp Guild writes"
            )
        stopped = _attr(directory, "stopped")
        exit_status = _attr(directory, "exit_status")
        flags = _attr(directory, "flags") or {}
        if not isinstance(flags, dict):
            raise RunReadError(f"Guild run {directory}: .guild/attrs/flags is not a mapping")
        op = _op_name(directory)
        label = _attr(directory, "label")
        tags = _attr(directory, "tags") or []
        start = started / 1e6
        end = stopped / 1e6 if isinstance(stopped, int) else None
        if end is None:
            status = RunStatus.KILLED
        elif exit_status in (0, None):
            status = RunStatus.COMPLETED
        elif isinstance(exit_status, int) and exit_status < 0:
            status = RunStatus.INTERRUPTED
        else:
            status = RunStatus.FAILED
        summary: dict[str, Any] = {"guild.op": op} if op else {}
        cmd = _attr(directory, "cmd")
        if isinstance(cmd, list):
            summary["guild.cmd"] = shlex.join(str(c) for c in cmd)
        output_file = directory / ".guild" / "output"
        output = []
        if output_file.is_file():
            at = end if end is not None else start
            output = [
                ("stdout", at, line)
                for line in output_file.read_text(errors="replace").splitlines()
            ]
        return SourceRun(
            source=self.tool,
            source_id=run_id,
            experiment=op or "guild",
            name=str(label) if label else f"{op or 'run'}-{run_id[:8]}",
            start_time=start,
            end_time=end,
            status=status,
            params=flat_params(flags),
            metrics=self._scalars(directory),
            summary=summary,
            tags=[str(t) for t in tags] if isinstance(tags, list) else [],
            artifacts=_artifacts(directory),
            output=output,
            user=str(_attr(directory, "user") or ""),
            host=str(_attr(directory, "host") or ""),
            exit_code=exit_status if isinstance(exit_status, int) else None,
        )

    def _scalars(self, directory: Path) -> dict[str, tuple[list[int], list[float], list[float]]]:
        from labkeep.integrations._tensorboard import event_dirs, read_event_dir

        points: dict[str, list[tuple[int, float, float]]] = {}
        try:
            for events in event_dirs(directory):
                for key, found in read_event_dir(events).metrics.items():
                    points.setdefault(key, []).extend(found)
        except ImportError:
            raise RunReadError(
                f"Guild run {directory} has scalars in event files: reading them needs the "
                "tensorboard package (pip install 'labkeep[interop]')"
            ) from None
        return {
            key: series(sorted(p, key=lambda x: (x[2], x[0]))) for key, p in sorted(points.items())
        }

    def close(self) -> None:
        pass


def _started(directory: Path) -> int:
    try:
        started = _attr(directory, "started")
    except Exception:
        return 0
    return started if isinstance(started, int) else 0


def _op_name(directory: Path) -> str:
    """The operation of ``.guild/opref`` (``guildfile:'…' 'digest' 'model' 'op'``)."""
    opref = directory / ".guild" / "opref"
    if not opref.is_file():
        return ""
    try:
        parts = shlex.split(opref.read_text().strip())
    except ValueError:
        return ""
    if len(parts) < 2:
        return ""
    model, op = (parts[-2], parts[-1]) if len(parts) >= 4 else ("", parts[-1])
    return f"{model}:{op}" if model else op


def _artifacts(directory: Path) -> list[tuple[str, Path]]:
    files = []
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if relative.parts[0] == ".guild" or not path.is_file() or "tfevents" in path.name:
            continue
        files.append((relative.as_posix(), path))
        if len(files) >= _MAX_ARTIFACTS:
            break
    return files
