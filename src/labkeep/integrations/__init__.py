"""Integrations with other tools: bridges that record their calls into labkeep runs
(``labkeep.bridge()``, and ``labkeep run`` through ``_bridge_hook``), and importers of their
stores (``labkeep import``).

Every module here imports its tool (MLflow, wandb, TensorBoard, Sacred, Guild) inside
functions, so ``import labkeep`` never pays for them; they install with the ``interop``
extra. An importer reads a tool's store with the tool's own reader into
:class:`~labkeep.integrations._importing.SourceRun` records, and
:func:`~labkeep.integrations._importing.import_runs` writes each one to the store as one
WriteBatch (see :mod:`labkeep._write_batch`), with its original times, statuses and steps.
The names below load when first used, so that the bridges do not load the importers.

The training-framework integrations (``_keras``, ``_lightning``, ``_huggingface``) import
their framework when the module is imported, since their classes subclass the framework's;
``labkeep`` names them lazily (``labkeep.keras``), and they install with the
``integrations`` extra.
"""

from __future__ import annotations

import typing

from labkeep._lazy import lazy_names

if typing.TYPE_CHECKING:
    from labkeep.integrations._guild import GuildSource
    from labkeep.integrations._importing import ImportReport, Source, import_runs
    from labkeep.integrations._mlflow import MlflowSource
    from labkeep.integrations._sacred import SacredSource
    from labkeep.integrations._tensorboard import TensorboardSource
    from labkeep.integrations._tensorboard_export import (
        ExportReport,
        check_port,
        export_runs,
        require_tensorboard,
        start_tensorboard,
    )
    from labkeep.integrations._wandb import WandbSource

_LAZY = {
    "GuildSource": "_guild",
    "ImportReport": "_importing",
    "MlflowSource": "_mlflow",
    "SacredSource": "_sacred",
    "Source": "_importing",
    "TensorboardSource": "_tensorboard",
    "ExportReport": "_tensorboard_export",
    "check_port": "_tensorboard_export",
    "export_runs": "_tensorboard_export",
    "require_tensorboard": "_tensorboard_export",
    "start_tensorboard": "_tensorboard_export",
    "WandbSource": "_wandb",
    "import_runs": "_importing",
}

__all__ = [
    "ExportReport",
    "GuildSource",
    "ImportReport",
    "MlflowSource",
    "SacredSource",
    "Source",
    "TensorboardSource",
    "WandbSource",
    "check_port",
    "export_runs",
    "import_runs",
    "require_tensorboard",
    "start_tensorboard",
]


__getattr__ = lazy_names(__name__, globals(), _LAZY)[0]
