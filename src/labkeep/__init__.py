"""labkeep: experiment tracking and reproducibility for machine-learning work.

>>> import labkeep
>>> with labkeep.init(experiment="iris", config={"C": 1.0}) as run:  # doctest: +SKIP
...     run.log({"loss": 0.3, "acc": 0.9}, step=0)
"""

from labkeep._api import (
    active_run,
    config,
    finish,
    get_run,
    init,
    log,
    log_artifact,
    runs,
    summary,
)
from labkeep._run import Run
from labkeep._version import __version__
from labkeep._views import MetricSeries, RunList, RunView
from labkeep.entities import MetricSummary, RunStatus
from labkeep.errors import LabkeepError

__all__ = [
    "LabkeepError",
    "MetricSeries",
    "MetricSummary",
    "Run",
    "RunList",
    "RunStatus",
    "RunView",
    "__version__",
    "active_run",
    "config",
    "finish",
    "get_run",
    "init",
    "log",
    "log_artifact",
    "runs",
    "summary",
]
