"""Import W&B run directories (``wandb/offline-run-*`` and synced ``wandb/run-*``).

A run's ``run-<id>.wandb`` file is W&B's transaction log: LevelDB's log format (32 KiB
blocks of CRC-32 checked records, after the 7-byte header ``:W&B``, magic 0xBEE1, version 0)
whose records are the wandb SDK's own ``wandb_internal_pb2.Record`` protobufs. The SDK's
Python scanner for it (``wandb.sdk.internal.datastore``) left the SDK in 0.2x when its Go
core took over, so the framing is read here and every record is decoded with the installed
SDK's protobufs. A run directory without a ``.wandb`` file (a synced run whose log was
removed) is read from ``files/config.yaml`` and ``files/wandb-summary.json``: params and
summary, no metric history.

From the log: the run record (id, project, name, notes, tags, host, start time, config),
config and summary updates, every history row (numeric values become metric points at the
row's ``_step`` and ``_timestamp``), console output, and the exit record (exit code and
runtime). Files the run saved (``files/``, less W&B's own) become artifacts; ``wandb.save``
links them to the file the script wrote, so what is imported is that file as it is now.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator, Sequence
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

_BLOCK = 32768
_HEADER = struct.Struct("<4sHB")
_RECORD = struct.Struct("<IHB")
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4
_CRC_SEED = {t: zlib.crc32(bytes([t])) & 0xFFFFFFFF for t in (_FULL, _FIRST, _MIDDLE, _LAST)}
#: Files W&B writes itself into a run's ``files/``: not the run's artifacts.
_WANDB_FILES = {
    "output.log",
    "config.yaml",
    "wandb-summary.json",
    "wandb-metadata.json",
    "requirements.txt",
    "conda-environment.yaml",
    "diff.patch",
}
_RESERVED = ("_wandb", "_runtime", "_step", "_timestamp")


def log_records(path: Path) -> Iterator[bytes]:
    """The payloads of a ``.wandb`` file's records; ValueError for what is not one."""
    data = path.read_bytes()
    if len(data) < _HEADER.size:
        raise ValueError(f"{path.name} is too short to be a W&B log")
    ident, magic, version = _HEADER.unpack_from(data, 0)
    if ident != b":W&B" or magic != 0xBEE1:
        raise ValueError(f"{path.name} is not a W&B transaction log (no :W&B header)")
    if version != 0:
        raise ValueError(f"{path.name} is a W&B log of format version {version}; this reads 0")
    pos, pending = _HEADER.size, b""
    while pos < len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _RECORD.size:
            pos += left
            continue
        if pos + _RECORD.size > len(data):
            raise ValueError(f"{path.name} ends inside a record header (cut short?)")
        checksum, length, kind = _RECORD.unpack_from(data, pos)
        if checksum == 0 and length == 0 and kind == 0:
            pos += left  # zero padding at the end of a block
            continue
        body = data[pos + _RECORD.size : pos + _RECORD.size + length]
        if kind not in _CRC_SEED or len(body) != length:
            raise ValueError(f"{path.name} is damaged at byte {pos}")
        if zlib.crc32(body, _CRC_SEED[kind]) & 0xFFFFFFFF != checksum:
            raise ValueError(f"{path.name} is damaged at byte {pos} (checksum mismatch)")
        pos += _RECORD.size + length
        if kind == _FULL:
            yield body
        elif kind == _FIRST:
            pending = body
        elif kind == _MIDDLE:
            pending += body
        else:
            yield pending + body
            pending = b""


def _item_key(item: Any) -> str:
    return ".".join(item.nested_key) if item.nested_key else str(item.key)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _unflatten_config(config: dict[str, Any]) -> dict[str, Any]:
    """config.yaml's ``{key: {value: X, desc: …}}`` as ``{key: X}``, W&B's own keys left out."""
    return {
        key: entry.get("value") if isinstance(entry, dict) else entry
        for key, entry in config.items()
        if not key.startswith("_wandb") and key != "wandb_version"
    }


class WandbSource:
    """A ``wandb/`` directory (or one run directory in it)."""

    tool = "wandb"

    def __init__(self, location: str) -> None:
        self.location = location
        self.root = Path(location).expanduser().resolve()
        if not self.root.is_dir():
            raise SourceError(f"no W&B directory at {location}")
        self._dirs: dict[str, Path] = {}

    def run_ids(self) -> Sequence[str]:
        candidates = [self.root, *sorted(p for p in self.root.iterdir() if p.is_dir())]
        for directory in candidates:
            if not directory.name.startswith(("run-", "offline-run-")) or directory.is_symlink():
                continue
            if (
                any(directory.glob("run-*.wandb"))
                or (directory / "files" / "config.yaml").is_file()
            ):
                self._dirs[_dir_run_id(directory)] = directory
        if not self._dirs:
            raise SourceError(
                f"{self.location} is not a W&B directory: no run-*/offline-run-* directory "
                "with a .wandb file or files/config.yaml in it"
            )
        try:
            import wandb.proto.wandb_internal_pb2  # noqa: F401
        except ImportError:
            raise SourceError(
                "importing W&B runs needs the wandb package: pip install 'labkeep[interop]'"
            ) from None
        return sorted(self._dirs, key=lambda i: self._dirs[i].name.split("-", 2)[-1])

    def read_run(self, run_id: str) -> SourceRun:
        directory = self._dirs[run_id]
        logs = sorted(directory.glob("run-*.wandb"))
        try:
            run = self._read_log(logs[0]) if logs else self._read_files(directory)
        except (OSError, ValueError, KeyError) as exc:
            raise RunReadError(f"W&B run {directory}: {exc}") from None
        run.source_id = run_id
        run.artifacts = _artifacts(directory / "files")
        run.summary["wandb.dir"] = str(directory)
        return run

    def _read_log(self, path: Path) -> SourceRun:
        from google.protobuf.message import DecodeError
        from wandb.proto import wandb_internal_pb2

        start: float | None = None
        info: Any = None
        config: dict[str, Any] = {}
        summary: dict[str, Any] = {}
        points: dict[str, list[tuple[int, float, float]]] = {}
        output: list[tuple[str, float, str]] = []
        exit_record: Any = None
        last_time = 0.0
        for raw in log_records(path):
            record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]
            try:
                record.ParseFromString(raw)
            except DecodeError:
                raise ValueError(f"{path.name} holds a record wandb cannot decode") from None
            kind = record.WhichOneof("record_type")
            if kind == "run":
                info = record.run
                start = info.start_time.seconds + info.start_time.nanos / 1e9
                for item in info.config.update:
                    config[_item_key(item)] = _json(item.value_json)
            elif kind == "config":
                for item in record.config.update:
                    config[_item_key(item)] = _json(item.value_json)
                for item in record.config.remove:
                    config.pop(_item_key(item), None)
            elif kind == "summary":
                for item in record.summary.update:
                    summary[_item_key(item)] = _json(item.value_json)
                for item in record.summary.remove:
                    summary.pop(_item_key(item), None)
            elif kind == "history":
                row = {_item_key(item): _json(item.value_json) for item in record.history.item}
                step = row.get("_step", record.history.step.num)
                at = row.get("_timestamp", last_time)
                last_time = max(last_time, float(at))
                for key, value in row.items():
                    if key.startswith(_RESERVED) or number(value) is None:
                        continue
                    points.setdefault(key, []).append((int(step), float(value), float(at)))
            elif kind == "output_raw":
                stream = "stderr" if record.output_raw.output_type == 0 else "stdout"
                for line in record.output_raw.line.splitlines():
                    if line.strip():
                        output.append((stream, last_time or (start or 0.0), line))
            elif kind == "exit":
                exit_record = record.exit
        if info is None or start is None:
            raise ValueError(f"{path.name} has no run record")
        if exit_record is None:
            status, end, code = RunStatus.KILLED, max(last_time, start), None
        else:
            code = exit_record.exit_code
            status = RunStatus.COMPLETED if code == 0 else RunStatus.FAILED
            end = max(start + exit_record.runtime, last_time)
        return SourceRun(
            source=self.tool,
            source_id="",
            experiment=info.project or "uncategorized",
            name=info.display_name or info.run_id,
            start_time=start,
            end_time=end,
            status=status,
            params=flat_params({k: v for k, v in config.items() if not k.startswith("_wandb")}),
            metrics={key: series(p) for key, p in sorted(points.items())},
            summary=_summary(summary),
            tags=list(info.tags),
            output=output,
            host=info.host,
            notes=info.notes,
            exit_code=code,
        )

    def _read_files(self, directory: Path) -> SourceRun:
        import yaml

        files = directory / "files"
        config = yaml.safe_load((files / "config.yaml").read_text()) or {}
        summary_file = files / "wandb-summary.json"
        summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
        metadata_file = files / "wandb-metadata.json"
        metadata = json.loads(metadata_file.read_text()) if metadata_file.is_file() else {}
        start = directory.stat().st_mtime
        if metadata.get("startedAt"):
            from datetime import datetime

            start = datetime.fromisoformat(metadata["startedAt"].replace("Z", "+00:00")).timestamp()
        runtime = summary.get("_runtime") or (summary.get("_wandb") or {}).get("runtime") or 0
        return SourceRun(
            source=self.tool,
            source_id="",
            experiment=str(metadata.get("project") or "uncategorized"),
            name=_dir_run_id(directory).split("/")[-1],
            start_time=start,
            end_time=start + float(runtime),
            status=RunStatus.COMPLETED,
            params=flat_params(_unflatten_config(config)),
            summary=_summary(summary),
            host=str(metadata.get("host") or ""),
        )

    def close(self) -> None:
        pass


def _summary(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value
        for key, value in summary.items()
        if not key.startswith(_RESERVED) and not isinstance(value, dict)
    }


def _dir_run_id(directory: Path) -> str:
    """The W&B run id a run directory is named after (``offline-run-DATE_TIME-<id>``)."""
    return directory.name.rsplit("-", 1)[-1]


def _artifacts(files: Path) -> list[tuple[str, Path]]:
    if not files.is_dir():
        return []
    return [
        (p.relative_to(files).as_posix(), p)
        for p in sorted(files.rglob("*"))
        if p.is_file() and p.relative_to(files).as_posix() not in _WANDB_FILES
    ]
