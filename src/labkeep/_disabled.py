"""``mode="disabled"``: a run whose every call does nothing, for turning tracking off."""

from __future__ import annotations

import os
from typing import Any

from labkeep._values import flatten
from labkeep.entities import RunStatus


class DisabledRun:
    """Looks like a Run; stores nothing."""

    attached = False
    uuid = "disabled"
    number = 0
    name = "disabled"
    notes = ""

    def __init__(self, experiment: str, config: Any = None) -> None:
        self.experiment = experiment
        self.config: dict[str, Any] = flatten(config) if config is not None else {}
        self.summary: dict[str, Any] = {}
        self.tags: set[str] = set()
        self.status = RunStatus.RUNNING
        self._finished = False

    def log(self, data: dict[str, Any], step: int | None = None) -> None:
        return None

    def log_artifact(
        self, path: str | os.PathLike[str], name: str | None = None, kind: str = "output"
    ) -> str:
        return name or os.path.basename(os.fspath(path))

    def finish(self, status: str | RunStatus | None = None, **_: Any) -> None:
        self._finished = True
        self.status = RunStatus(status) if status else RunStatus.COMPLETED

    def __enter__(self) -> DisabledRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()
