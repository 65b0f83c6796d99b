"""W&B's ``wandb.init`` / ``config`` / ``log`` / ``summary`` / ``finish``, recorded into labkeep.

``wandb.init(config=...)`` (a dict, an argparse Namespace) becomes the run's params, with the
values ``labkeep run KEY=VALUE`` set merged in first, so ``wandb.config.KEY`` returns the
override; ``init(tags=[...])`` tags; ``wandb.log`` metrics at W&B's step (its own counter, or
``step=``; ``commit=False`` keeps the step), numbers only; ``summary`` values the summary.
By default W&B runs too (offline unless ``WANDB_MODE`` says otherwise); with ``only`` it is not
called at all: ``init`` returns a stand-in with the same ``config``/``log``/``summary``/
``finish``, so no login, network or ``wandb/`` directory is needed.
"""

from __future__ import annotations

import atexit
import functools
import os
from collections.abc import Iterator, Mapping
from typing import Any

from labkeep.errors import LabkeepError
from labkeep.integrations._bridge_run import (
    bridged_run,
    config_overrides,
    not_recorded,
    params_of,
    update_params,
)

_INTERNAL = ("_runtime", "_step", "_timestamp", "_wandb")


class _Steps:
    """W&B's step counter: every committed ``log`` moves to the next step."""

    def __init__(self) -> None:
        self.step = 0
        self.keys: set[str] = set()

    def record(self, data: Mapping[str, Any], step: int | None, commit: bool | None) -> None:
        if step is not None and step > self.step:
            self.step = step
        numbers = _numbers(data)
        if numbers:
            self.keys.update(numbers)
            try:
                bridged_run().log(numbers, self.step)
            except LabkeepError as exc:
                not_recorded("wandb.log", exc)
        if commit is None or commit:
            self.step += 1


def _numbers(data: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    found: dict[str, float] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, bool | str):
            continue
        if isinstance(value, int | float):
            found[name] = value
        elif isinstance(value, Mapping):
            found.update(_numbers(value, name + "."))
        elif hasattr(value, "__float__"):
            try:
                found[name] = float(value)
            except (TypeError, ValueError):
                continue
    return found


class _Config:
    """``wandb.config`` without W&B: attribute and item access; writes become params."""

    def __init__(self, values: dict[str, Any]) -> None:
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return repr(self._values)

    def keys(self) -> Any:
        return self._values.keys()

    def items(self) -> Any:
        return self._values.items()

    def get(self, key: str, default: Any = None) -> Any:
        return self._values.get(key, default)

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def update(self, values: Any = None, allow_val_change: bool | None = None) -> None:
        values = params_of(values)
        self._values.update(values)
        if values:
            update_params(values, "wandb.config")

    def setdefaults(self, values: Mapping[str, Any]) -> None:
        self.update({k: v for k, v in values.items() if k not in self._values})


class _Summary(dict[str, Any]):
    """``wandb.summary`` without W&B: a dict whose writes become the run's summary."""

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        _summarize({key: value})

    def update(self, *args: Any, **kwargs: Any) -> None:
        values = dict(*args, **kwargs)
        super().update(values)
        _summarize(values)

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


class _StandInRun:
    """What ``wandb.init`` returns when W&B does not run."""

    def __init__(self, config: dict[str, Any], name: str | None, steps: _Steps) -> None:
        self.config = _Config(config)
        self.summary = _Summary()
        self.name = name or bridged_run().name
        self.id = bridged_run().uuid[:8]
        self.dir = "."
        self.project = None
        self._steps = steps

    def log(
        self, data: Mapping[str, Any], step: int | None = None, commit: bool | None = None, **_: Any
    ) -> None:
        self._steps.record(data, step, commit)

    @property
    def step(self) -> int:
        return self._steps.step

    def finish(self, *_args: Any, **_kwargs: Any) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        # ``watch``, ``define_metric``, ``log_code``, ``save``, ``log_artifact``…: W&B's
        # own features, which write nothing here.
        if name.startswith("_"):
            raise AttributeError(name)
        return _nothing

    def __enter__(self) -> _StandInRun:
        return self

    def __exit__(self, *_: object) -> None:
        self.finish()


def install(wandb: Any, *, only: bool) -> None:
    """Replace ``wandb.init`` (and ``log``/``finish``) by ones that record into labkeep."""
    if not only and "WANDB_MODE" not in os.environ:
        os.environ["WANDB_MODE"] = "offline"  # read by wandb.init, which has not run yet
    real_init = wandb.init
    real_finish = getattr(wandb, "finish", None)
    steps = _Steps()

    def init(*args: Any, **kwargs: Any) -> Any:
        config = params_of(kwargs.get("config"))
        overrides = config_overrides()
        if overrides:
            config.update(overrides)
            kwargs["config"] = config
        if config:
            update_params(config, "wandb.init(config=...)")
        try:
            run = bridged_run()
            tags = kwargs.get("tags")
            if tags:
                run.tags.add(*(str(t) for t in tags))
        except LabkeepError as exc:
            not_recorded("wandb.init", exc)
        if only:
            stand_in = _StandInRun(config, kwargs.get("name"), steps)
            wandb.run = stand_in
            wandb.config = stand_in.config
            wandb.summary = stand_in.summary
            wandb.log = stand_in.log
            return stand_in
        real_run = real_init(*args, **kwargs)
        _wrap_real_run(wandb, real_run, steps)
        return real_run

    def finish(*args: Any, **kwargs: Any) -> Any:
        if only or real_finish is None:
            return None
        return real_finish(*args, **kwargs)

    def log(
        data: Mapping[str, Any], step: int | None = None, commit: bool | None = None, **_: Any
    ) -> None:
        steps.record(data, step, commit)

    wandb.init = functools.wraps(real_init)(init)
    started = getattr(wandb, "run", None)
    if not only and started is not None and hasattr(started, "log"):
        # wandb.init ran before the bridge (labkeep.bridge() called late): its config now,
        # its summary at the end, and what it logs from here on.
        steps.step = int(getattr(started, "step", 0) or 0)
        _wrap_real_run(wandb, started, steps)
        update_params(params_of(started.config), "wandb.config")
    if real_finish is not None:
        wandb.finish = functools.wraps(real_finish)(finish)
    if only:
        wandb.log = log
        wandb.login = lambda *_a, **_k: True


def _wrap_real_run(wandb: Any, real_run: Any, steps: _Steps) -> None:
    """Record what the script logs through the real run, and its final config and summary."""
    real_log = real_run.log
    real_finish = real_run.finish
    done = [False]

    def log(
        data: Mapping[str, Any], step: int | None = None, commit: bool | None = None, **kw: Any
    ) -> Any:
        steps.record(data, step, commit)
        return real_log(data, step=step, commit=commit, **kw)

    def sync() -> None:
        if done[0]:
            return
        done[0] = True
        try:
            config = params_of(real_run.config)
        except Exception:  # a W&B internal change must not break the script's end
            config = {}
        try:
            summary = dict(real_run.summary)
        except Exception:
            summary = {}
        values = {
            k: v
            for k, v in summary.items()
            if k not in _INTERNAL and k not in steps.keys and _plain(v)
        }
        if config:
            update_params(config, "wandb.config")
        try:
            if values:
                bridged_run().summary.update(values)
        except LabkeepError as exc:
            not_recorded("wandb config/summary", exc)

    def finish(*args: Any, **kwargs: Any) -> Any:
        sync()
        return real_finish(*args, **kwargs)

    try:
        real_run.log = log
        real_run.finish = finish
    except AttributeError:
        pass
    wandb.log = log
    atexit.register(sync)


def _summarize(values: dict[str, Any]) -> None:
    try:
        bridged_run().summary.update(values)
    except LabkeepError as exc:
        not_recorded("wandb.summary", exc)


def _nothing(*_args: Any, **_kwargs: Any) -> None:
    return None


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)
