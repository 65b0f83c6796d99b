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

from labkeep._lazy import lazy_names

TYPE_CHECKING = False
if TYPE_CHECKING:
    from labkeep.sweep._controller import SweepResult
    from labkeep.sweep._dask import dask_address
    from labkeep.sweep._optimizer import parse_opt_flags
    from labkeep.sweep._processes import resume_sweep, start_sweep, stop_sweep
    from labkeep.sweep._report import SweepReport, TrialRow, param_importances, sweep_report
    from labkeep.sweep._space import split_assignments
    from labkeep.sweep._spec import list_sweeps, plan_sweep
    from labkeep.sweep._wandb import plan_wandb_sweep

_EXPORTS = {
    "SweepResult": "_controller",
    "dask_address": "_dask",
    "parse_opt_flags": "_optimizer",
    "resume_sweep": "_processes",
    "start_sweep": "_processes",
    "stop_sweep": "_processes",
    "SweepReport": "_report",
    "TrialRow": "_report",
    "param_importances": "_report",
    "sweep_report": "_report",
    "split_assignments": "_space",
    "list_sweeps": "_spec",
    "plan_sweep": "_spec",
    "plan_wandb_sweep": "_wandb",
}

# What the layers above use; a test pins it (tests/unit/test_public_names.py). The search
# spaces and ``labkeep.sweep(...)`` itself are reached through ``labkeep``.
__all__ = [
    "SweepReport",
    "SweepResult",
    "TrialRow",
    "dask_address",
    "list_sweeps",
    "param_importances",
    "parse_opt_flags",
    "plan_sweep",
    "plan_wandb_sweep",
    "resume_sweep",
    "split_assignments",
    "start_sweep",
    "stop_sweep",
    "sweep_report",
]


__getattr__, __dir__ = lazy_names(__name__, globals(), _EXPORTS)


class _SweepPackage(types.ModuleType):
    """``labkeep.sweep(objective, space=…)``: the package called is :func:`_api.sweep`."""

    def __call__(self, objective: Any, **kwargs: Any) -> Any:
        from labkeep.sweep._api import sweep as run_sweep

        return run_sweep(objective, **kwargs)


sys.modules[__name__].__class__ = _SweepPackage
