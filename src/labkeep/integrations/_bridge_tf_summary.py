"""TensorFlow's ``tf.summary.scalar``, recorded into the labkeep run.

``tf.summary.scalar(name, data, step)`` is a metric ``name`` at ``step`` (no step: TensorFlow's
own default, ``tf.summary.experimental.get_step()``, else labkeep's next step), whether or not
a default writer is set. Only eager calls have a value to record: a call traced inside a
``tf.function`` holds a symbolic tensor, and is said once and left to TensorFlow. With
``only``, ``tf.summary.create_file_writer`` gives TensorFlow's no-op writer, so no event file
is written, and ``scalar`` returns True without calling TensorFlow.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any

from labkeep.errors import LabkeepError
from labkeep.integrations._bridge_run import bridged_run, not_recorded


def install(tf: ModuleType, *, only: bool) -> None:
    """Replace ``tf.summary.scalar`` (and, with ``only``, ``create_file_writer``)."""
    summary = tf.summary
    real_scalar = summary.scalar

    def scalar(name: str, data: Any, step: Any = None, description: Any = None) -> Any:
        _record(tf, name, data, step)
        if only:
            return True
        return real_scalar(name, data, step=step, description=description)

    summary.scalar = functools.wraps(real_scalar)(scalar)
    if only:
        real_create = summary.create_file_writer

        def create_file_writer(*_args: Any, **_kwargs: Any) -> Any:
            return summary.create_noop_writer()

        summary.create_file_writer = functools.wraps(real_create)(create_file_writer)


def _record(tf: Any, name: str, data: Any, step: Any) -> None:
    if not tf.executing_eagerly():
        not_recorded(
            "tf.summary.scalar inside a tf.function",
            ValueError("a traced tensor has no value to record; call it eagerly to record it"),
        )
        return
    if step is None:
        step = tf.summary.experimental.get_step()
    try:
        value = _plain(data)
        at = None if step is None else int(_plain(step))
        bridged_run().log({name: value}, at)
    except (LabkeepError, TypeError, ValueError) as exc:
        not_recorded("tf.summary.scalar", exc)


def _plain(value: Any) -> Any:
    """A tensor or variable as a Python number."""
    if hasattr(value, "numpy"):
        value = value.numpy()
    return value.item() if hasattr(value, "item") else value
