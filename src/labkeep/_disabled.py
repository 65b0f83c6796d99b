"""``mode="disabled"``: a run whose every call does nothing, for turning tracking off."""

from __future__ import annotations

import os
from typing import Any

from labkeep._values import flatten
from labkeep.entities import RunStatus


class _Config(dict[str, Any]):
    """``run.config`` / ``run.summary`` of a disabled run: takes what a Run's takes."""

    def update(self, *args: Any, **kwargs: Any) -> None:
        for arg in args:
            super().update(flatten(arg))
        super().update(flatten(kwargs))


class _Tags(set[str]):
    """``run.tags`` of a disabled run: ``add``/``remove`` take several tags, as a Run's do."""

    def add(self, *tags: str) -> None:
        super().update(tags)

    def remove(self, *tags: str) -> None:
        self.difference_update(tags)


class DisabledRun:
    """Looks like a Run; stores nothing."""

    attached = False
    uuid = "disabled"
    number = 0
    name = "disabled"
    notes = ""

    def __init__(self, experiment: str, config: Any = None) -> None:
        self.experiment = experiment
        self.config = _Config(flatten(config) if config is not None else {})
        self.summary = _Config()
        self.tags = _Tags()
        self.status = RunStatus.RUNNING
        self.finished = False

    def log(self, data: dict[str, Any], step: int | None = None) -> None:
        return None

    def log_artifact(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        kind: str = "output",
        *,
        volatile: bool = False,
    ) -> str:
        return name or os.path.basename(os.fspath(path))

    def log_model(self, model: Any, name: str = "model", *, input_example: Any = None) -> Any:
        """What ``Run.log_model`` returns, with nothing saved (the model is not serialized)."""
        from labkeep.models import ModelInfo
        from labkeep.models._flavours import class_name, detect

        flavour = detect(model)
        return ModelInfo(
            name, self.uuid, flavour.name, flavour.file, class_name(model), flavour.safe
        )

    def add_finish_hook(self, hook: Any) -> None:
        return None

    def finish(self, status: str | RunStatus | None = None, **_: Any) -> None:
        self.finished = True
        self.status = RunStatus(status) if status else RunStatus.COMPLETED

    def __enter__(self) -> DisabledRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()
