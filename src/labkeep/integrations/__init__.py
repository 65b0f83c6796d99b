"""Bridges to other trackers and importers of their stores.

Every module here imports its tool (MLflow, wandb, TensorBoard, Sacred, Guild) inside
functions, so ``import labkeep`` never pays for them; they install with the ``interop``
extra. An importer reads a tool's store with the tool's own reader into
:class:`~labkeep.integrations._importing.SourceRun` records, and
:func:`~labkeep.integrations._importing.import_runs` writes each one to the store as one
WriteBatch (see :mod:`labkeep.store._base`), with its original times, statuses and steps.
"""

from labkeep.integrations._guild import GuildSource
from labkeep.integrations._importing import ImportReport, Source, import_runs
from labkeep.integrations._mlflow import MlflowSource
from labkeep.integrations._sacred import SacredSource
from labkeep.integrations._tensorboard import TensorboardSource
from labkeep.integrations._wandb import WandbSource

__all__ = [
    "GuildSource",
    "ImportReport",
    "MlflowSource",
    "SacredSource",
    "Source",
    "TensorboardSource",
    "WandbSource",
    "import_runs",
]
