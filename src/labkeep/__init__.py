"""labkeep: experiment tracking and reproducibility for machine-learning work.

>>> import labkeep
>>> with labkeep.init(experiment="iris", config={"C": 1.0}) as run:  # doctest: +SKIP
...     run.log({"loss": 0.3, "acc": 0.9}, step=0)
"""

import typing as _typing

from labkeep._api import (
    active_run,
    config,
    finish,
    get_run,
    init,
    log,
    log_artifact,
    log_model,
    runs,
    seed,
    summary,
    use_input,
)
from labkeep._version import __version__
from labkeep.errors import LabkeepError, TrialPruned

if _typing.TYPE_CHECKING:
    from labkeep._run import Run
    from labkeep._views import MetricSeries, RunList, RunTags, RunView
    from labkeep.entities import MetricSummary, RunStatus
    from labkeep.integrations import _huggingface as huggingface
    from labkeep.integrations import _keras as keras
    from labkeep.integrations import _lightning as lightning
    from labkeep.integrations._bridge_hook import bridge
    from labkeep.models import ModelInfo, get_model_info, load_model

# Classes are loaded when first named, so that `import labkeep` stays light.
_LAZY = {
    "Run": "labkeep._run",
    "bridge": "labkeep.integrations._bridge_hook",
    "MetricSeries": "labkeep._views",
    "RunList": "labkeep._views",
    "RunTags": "labkeep._views",
    "RunView": "labkeep._views",
    "MetricSummary": "labkeep.entities",
    "RunStatus": "labkeep.entities",
    "choice": "labkeep.sweep._space",
    "intrange": "labkeep.sweep._space",
    "loguniform": "labkeep.sweep._space",
    "uniform": "labkeep.sweep._space",
    "ModelInfo": "labkeep.models",
    "get_model_info": "labkeep.models",
    "load_model": "labkeep.models",
}

# Framework integrations, each a module that imports its framework when first named:
# ``labkeep.keras.Callback()``, ``labkeep.lightning.Logger()``, ``labkeep.huggingface.Callback()``.
_FRAMEWORKS = {
    "huggingface": "labkeep.integrations._huggingface",
    "keras": "labkeep.integrations._keras",
    "lightning": "labkeep.integrations._lightning",
}


def __getattr__(name: str) -> _typing.Any:
    framework = _FRAMEWORKS.get(name)
    if framework is not None:
        import importlib

        integration = importlib.import_module(framework)
        globals()[name] = integration
        return integration
    if name == "sweep":
        # The package is callable: ``labkeep.sweep(objective, space=...)``. Importing it
        # binds it here too, so the name means the same object before and after.
        import labkeep.sweep as package

        return package
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'labkeep' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "LabkeepError",
    "MetricSeries",
    "MetricSummary",
    "ModelInfo",
    "Run",
    "RunList",
    "RunStatus",
    "RunTags",
    "RunView",
    "TrialPruned",
    "__version__",
    "active_run",
    "bridge",
    "choice",
    "config",
    "finish",
    "get_model_info",
    "get_run",
    "huggingface",
    "init",
    "intrange",
    "keras",
    "lightning",
    "load_model",
    "log",
    "log_artifact",
    "log_model",
    "loguniform",
    "runs",
    "seed",
    "summary",
    "sweep",
    "uniform",
    "use_input",
]
