"""A TensorBoard ``SummaryWriter`` (tensorboardX or ``torch.utils.tensorboard``) recorded into labkeep.

``add_scalar(tag, value, global_step)`` is a metric ``tag`` at that step (no step: labkeep's
next step), ``add_scalars(main, {k: v}, step)`` metrics ``main/k``, ``add_hparams(hparams,
metrics)`` params and summary values (the scalars it writes for them are not metrics twice).
With ``only``, the module's ``SummaryWriter`` is a stand-in that writes no event file: its other
``add_*`` methods, ``flush`` and ``close`` do nothing.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from labkeep.errors import LabkeepError
from labkeep.integrations._bridge_run import bridged_run, not_recorded, update_params

_inside = threading.local()


def _record_scalar(tag: str, value: Any, step: int | None) -> None:
    if getattr(_inside, "hparams", False):
        return
    try:
        bridged_run().log({tag: value}, step)
    except LabkeepError as exc:
        not_recorded("SummaryWriter.add_scalar", exc)


def _record_scalars(main_tag: str, values: dict[str, Any], step: int | None) -> None:
    try:
        bridged_run().log({f"{main_tag}/{k}": v for k, v in values.items()}, step)
    except LabkeepError as exc:
        not_recorded("SummaryWriter.add_scalars", exc)


def _record_hparams(hparams: dict[str, Any], metrics: dict[str, Any]) -> None:
    try:
        update_params(dict(hparams), "SummaryWriter.add_hparams")
        bridged_run().summary.update({k: _number(v) for k, v in metrics.items()})
    except LabkeepError as exc:
        not_recorded("SummaryWriter.add_hparams", exc)


def _number(value: Any) -> Any:
    """A tensor or numpy scalar as a Python number (summaries keep Python values)."""
    return value.item() if hasattr(value, "item") else value


class _StandInWriter:
    """``SummaryWriter`` that records scalars and hparams into labkeep and writes nothing."""

    def __init__(self, log_dir: str | None = None, *_args: Any, **kwargs: Any) -> None:
        self.log_dir = self.logdir = log_dir or kwargs.get("logdir") or "runs"

    def add_scalar(
        self, tag: str, scalar_value: Any, global_step: int | None = None, *_: Any, **__: Any
    ) -> None:
        _record_scalar(tag, scalar_value, global_step)

    def add_scalars(
        self,
        main_tag: str,
        tag_scalar_dict: dict[str, Any],
        global_step: int | None = None,
        *_: Any,
        **__: Any,
    ) -> None:
        _record_scalars(main_tag, tag_scalar_dict, global_step)

    def add_hparams(
        self, hparam_dict: dict[str, Any], metric_dict: dict[str, Any], *_: Any, **__: Any
    ) -> None:
        _record_hparams(hparam_dict, metric_dict)

    def get_logdir(self) -> str:
        return str(self.log_dir)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("add_") or name in ("flush", "close"):
            return _nothing
        raise AttributeError(name)

    def __enter__(self) -> _StandInWriter:
        return self

    def __exit__(self, *_: object) -> None:
        return None


def _nothing(*_args: Any, **_kwargs: Any) -> None:
    return None


def install(module: Any, *, only: bool) -> None:
    """Make ``module.SummaryWriter`` record into labkeep (a stand-in with ``only``)."""
    writer = getattr(module, "SummaryWriter", None)
    if writer is None:
        return
    if only:
        module.SummaryWriter = _StandInWriter
        return
    if getattr(writer, "__labkeep_bridged__", False):
        return
    real_scalar = writer.add_scalar
    real_scalars = writer.add_scalars
    real_hparams = writer.add_hparams

    @functools.wraps(real_scalar)
    def add_scalar(
        self: Any, tag: str, scalar_value: Any, global_step: int | None = None, *a: Any, **k: Any
    ) -> Any:
        _record_scalar(tag, scalar_value, global_step)
        return real_scalar(self, tag, scalar_value, global_step, *a, **k)

    @functools.wraps(real_scalars)
    def add_scalars(
        self: Any, main_tag: str, values: dict[str, Any], global_step: int | None = None, *a: Any,
        **k: Any,
    ) -> Any:  # fmt: skip
        _record_scalars(main_tag, values, global_step)
        return real_scalars(self, main_tag, values, global_step, *a, **k)

    @functools.wraps(real_hparams)
    def add_hparams(
        self: Any, hparam_dict: dict[str, Any], metric_dict: dict[str, Any], *a: Any, **k: Any
    ) -> Any:
        _record_hparams(hparam_dict, metric_dict)
        _inside.hparams = True
        try:
            return real_hparams(self, hparam_dict, metric_dict, *a, **k)
        finally:
            _inside.hparams = False

    writer.add_scalar = add_scalar
    writer.add_scalars = add_scalars
    writer.add_hparams = add_hparams
    writer.__labkeep_bridged__ = True
