"""Hyperparameter search: search spaces, Optuna's samplers, trials as child runs.

``labkeep run train.py 'x=[-2.0:2.0]' --optimizer tpe --minimize loss`` and
``labkeep.sweep(objective, space=…)`` come here. The package itself is callable, so that
``labkeep.sweep(...)`` is the Python API whether or not this package was imported before.
Names load on first use: Optuna is imported only when a sweep runs.
"""

from __future__ import annotations

import sys
import types
from typing import Any

TYPE_CHECKING = False
if TYPE_CHECKING:
    from labkeep.sweep._api import Sweep, sweep
    from labkeep.sweep._controller import SweepResult
    from labkeep.sweep._optimizer import Objective, parse_objective, parse_opt_flags
    from labkeep.sweep._processes import resume_sweep, start_sweep, stop_sweep
    from labkeep.sweep._report import SweepReport, TrialRow, param_importances, sweep_report
    from labkeep.sweep._space import (
        Choice,
        IntRange,
        LogUniform,
        SearchSplit,
        Uniform,
        choice,
        intrange,
        loguniform,
        split_assignments,
        uniform,
    )
    from labkeep.sweep._spec import (
        SweepSpec,
        get_sweep,
        list_sweeps,
        plan_sweep,
        sweep_trials,
    )
    from labkeep.sweep._wandb import WandbSweep, plan_wandb_sweep

_EXPORTS = {
    "Sweep": "_api",
    "sweep": "_api",
    "SweepResult": "_controller",
    "SweepSpec": "_spec",
    "get_sweep": "_spec",
    "list_sweeps": "_spec",
    "plan_sweep": "_spec",
    "resume_sweep": "_processes",
    "start_sweep": "_processes",
    "stop_sweep": "_processes",
    "sweep_trials": "_spec",
    "Objective": "_optimizer",
    "parse_objective": "_optimizer",
    "parse_opt_flags": "_optimizer",
    "SweepReport": "_report",
    "TrialRow": "_report",
    "sweep_report": "_report",
    "param_importances": "_report",
    "WandbSweep": "_wandb",
    "plan_wandb_sweep": "_wandb",
    "Choice": "_space",
    "IntRange": "_space",
    "LogUniform": "_space",
    "SearchSplit": "_space",
    "Uniform": "_space",
    "choice": "_space",
    "intrange": "_space",
    "loguniform": "_space",
    "split_assignments": "_space",
    "uniform": "_space",
}

__all__ = [
    "Choice",
    "IntRange",
    "LogUniform",
    "Objective",
    "SearchSplit",
    "Sweep",
    "SweepReport",
    "SweepResult",
    "SweepSpec",
    "TrialRow",
    "Uniform",
    "WandbSweep",
    "choice",
    "get_sweep",
    "intrange",
    "list_sweeps",
    "loguniform",
    "param_importances",
    "parse_objective",
    "parse_opt_flags",
    "plan_sweep",
    "plan_wandb_sweep",
    "resume_sweep",
    "split_assignments",
    "start_sweep",
    "stop_sweep",
    "sweep",
    "sweep_report",
    "sweep_trials",
    "uniform",
]


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'labkeep.sweep' has no attribute '{name}'")
    import importlib

    value = getattr(importlib.import_module(f"labkeep.sweep.{module}"), name)
    if name != "sweep":  # the module's own name stays the callable package
        globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _SweepPackage(types.ModuleType):
    """``labkeep.sweep(objective, space=…)``: the package called is :func:`_api.sweep`."""

    def __call__(self, objective: Any, **kwargs: Any) -> Any:
        from labkeep.sweep._api import sweep as run_sweep

        return run_sweep(objective, **kwargs)


sys.modules[__name__].__class__ = _SweepPackage
