"""labkeep: experiment tracking and reproducibility for machine-learning work.

>>> import labkeep
>>> with labkeep.init(experiment="iris", config={"C": 1.0}) as run:  # doctest: +SKIP
...     run.log({"loss": 0.3, "acc": 0.9}, step=0)
"""

import typing as _typing

from labkeep._api import (
    active_run,
    config,
    delete_alias,
    finish,
    get_run,
    init,
    log,
    log_artifact,
    log_model,
    register_model,
    runs,
    seed,
    set_alias,
    summary,
    use_artifact,
    use_input,
)
from labkeep._version import __version__
from labkeep.errors import LabkeepError, TrialPruned

if _typing.TYPE_CHECKING:
    from labkeep._artifacts import VersionedArtifact
    from labkeep._media import Histogram, Image, Table
    from labkeep._media_views import MediaItem, MediaSeries
    from labkeep._run import Run
    from labkeep._views import MetricSeries, RunList, RunTags, RunView
    from labkeep.entities import ArtifactVersion, MetricSummary, ModelVersion, RunStatus
    from labkeep.integrations._autolog import autolog
    from labkeep.integrations._bridge_hook import bridge
    from labkeep.models import ModelInfo, get_model_info, load_model

# Classes are loaded when first named, so that `import labkeep` stays light.
_LAZY = {
    "Run": "labkeep._run",
    "Histogram": "labkeep._media",
    "Image": "labkeep._media",
    "Table": "labkeep._media",
    "MediaItem": "labkeep._media_views",
    "MediaSeries": "labkeep._media_views",
    "autolog": "labkeep.integrations._autolog",
    "bridge": "labkeep.integrations._bridge_hook",
    "MetricSeries": "labkeep._views",
    "RunList": "labkeep._views",
    "RunTags": "labkeep._views",
    "RunView": "labkeep._views",
    "MetricSummary": "labkeep.entities",
    "ModelVersion": "labkeep.entities",
    "ArtifactVersion": "labkeep.entities",
    "VersionedArtifact": "labkeep._artifacts",
    "RunStatus": "labkeep.entities",
    "choice": "labkeep.sweep._space",
    "intrange": "labkeep.sweep._space",
    "loguniform": "labkeep.sweep._space",
    "uniform": "labkeep.sweep._space",
    "ModelInfo": "labkeep.models",
    "get_model_info": "labkeep.models",
    "load_model": "labkeep.models",
}

#: Integration modules named as attributes: ``labkeep.keras`` imports ``labkeep/keras.py``.
_MODULES = ("huggingface", "keras", "lightgbm", "lightning", "xgboost")


def __getattr__(name: str) -> _typing.Any:
    if name in _MODULES:
        # ``labkeep.xgboost.Callback()``: the integration module, imported when first named.
        import importlib

        return importlib.import_module(f"labkeep.{name}")
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
    "ArtifactVersion",
    "Histogram",
    "Image",
    "LabkeepError",
    "MediaItem",
    "MediaSeries",
    "MetricSeries",
    "MetricSummary",
    "ModelInfo",
    "ModelVersion",
    "Run",
    "RunList",
    "RunStatus",
    "RunTags",
    "RunView",
    "Table",
    "TrialPruned",
    "VersionedArtifact",
    "__version__",
    "active_run",
    "autolog",
    "bridge",
    "choice",
    "config",
    "delete_alias",
    "finish",
    "get_model_info",
    "get_run",
    "huggingface",
    "init",
    "intrange",
    "keras",
    "lightgbm",
    "lightning",
    "load_model",
    "log",
    "log_artifact",
    "log_model",
    "loguniform",
    "register_model",
    "runs",
    "seed",
    "set_alias",
    "summary",
    "sweep",
    "uniform",
    "use_artifact",
    "use_input",
    "xgboost",
]
