"""Sacred experiments recorded into labkeep through an observer added to each ``Experiment``.

The run's final config (config scopes, named configs and ``with k=v`` updates applied) becomes
params, ``_run.log_scalar`` / ``ex.log_scalar`` metrics at their steps (Sacred hands them to
observers on each heartbeat and at the end), ``add_artifact`` files artifacts, and a numeric
result the summary value ``result``. Sacred writes nothing itself without observers of its own,
so ``only`` changes nothing here.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any

from labkeep.errors import LabkeepError
from labkeep.integrations._bridge_run import bridged_run, not_recorded, update_params


class LabkeepObserver:
    """A Sacred observer (duck-typed: Sacred calls the ``*_event`` methods it finds)."""

    priority = 0

    def queued_event(self, *_args: Any, **_kwargs: Any) -> None:
        return None

    def started_event(
        self, ex_info: Any, command: Any, host_info: Any, start_time: Any, config: Any,
        meta_info: Any, _id: Any,
    ) -> Any:  # fmt: skip
        values = {k: v for k, v in dict(config).items() if not k.startswith("_")}
        if values:
            update_params(values, "Sacred config")
        return _id

    def heartbeat_event(self, *_args: Any, **_kwargs: Any) -> None:
        return None

    def log_metrics(self, metrics_by_name: dict[str, Any], info: Any) -> None:
        try:
            run = bridged_run()
            for name, series in metrics_by_name.items():
                for step, value in zip(series["steps"], series["values"], strict=False):
                    run.log({name: value}, int(step))
        except LabkeepError as exc:
            not_recorded("Sacred log_scalar", exc)

    def completed_event(self, stop_time: Any, result: Any) -> None:
        if isinstance(result, int | float) and not isinstance(result, bool):
            try:
                bridged_run().summary.update({"result": result})
            except LabkeepError as exc:
                not_recorded("Sacred result", exc)

    def interrupted_event(self, *_args: Any, **_kwargs: Any) -> None:
        return None

    def failed_event(self, *_args: Any, **_kwargs: Any) -> None:
        return None

    def resource_event(self, *_args: Any, **_kwargs: Any) -> None:
        return None

    def artifact_event(self, name: str, filename: str, *_args: Any, **_kwargs: Any) -> None:
        try:
            bridged_run().log_artifact(filename, name)
        except LabkeepError as exc:
            not_recorded("Sacred add_artifact", exc)

    def join(self) -> None:
        return None


def install(sacred: ModuleType, *, only: bool) -> None:
    """Give every ``sacred.Experiment`` made from now on a :class:`LabkeepObserver`."""
    experiment = getattr(sacred, "Experiment", None)
    if experiment is None or getattr(experiment, "__labkeep_bridged__", False):
        return
    real_init = experiment.__init__

    @functools.wraps(real_init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        self.observers.append(LabkeepObserver())

    experiment.__init__ = __init__
    experiment.__labkeep_bridged__ = True
