"""``labkeep.lightning``: a PyTorch Lightning logger that tracks a ``Trainer`` in a labkeep run.

>>> trainer = lightning.Trainer(max_epochs=5, logger=labkeep.lightning.Logger())  # doctest: +SKIP
>>> trainer.fit(model, train_loader, val_loader)                                  # doctest: +SKIP

It implements Lightning's ``Logger`` API: hyperparameters (``save_hyperparameters()``, a
datamodule's, or ``log_hyperparams``) become params, nested dicts flattened to dotted keys;
``self.log(...)`` metrics are logged at Lightning's global step; checkpoints that
``ModelCheckpoint`` wrote are stored as models (the module's ``state_dict``, PyTorch's safe
format, which ``labkeep.load_model`` returns for ``module.load_state_dict``); and
``finalize`` ends a run the logger started with Lightning's status (``success`` →
completed, ``failed`` → failed, or interrupted on Ctrl-C).

``log_model``: True stores the best checkpoint (``checkpoints/best``) when training ends,
``"all"`` also every checkpoint as it is written (``checkpoints/<file name>``; the same
weights are stored once), False none.

Lightning is found as the ``lightning`` package (``lightning.pytorch``), or the older
``pytorch_lightning`` when only that one is installed or the script imported it.
"""

from __future__ import annotations

import logging
import sys
from argparse import Namespace
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from labkeep.errors import InvalidInputError
from labkeep.integrations._training_run import (
    TrainingRun,
    import_framework,
    installed_version,
    log_params,
    numeric,
)

if TYPE_CHECKING:
    from labkeep._run import Run

MINIMUM = "2.0"
_log = logging.getLogger("labkeep")


def _lightning() -> Any:
    """``lightning.pytorch`` or ``pytorch_lightning``, whichever the script uses."""
    if "pytorch_lightning" in sys.modules and "lightning" not in sys.modules:
        return import_framework(
            "labkeep.lightning", "pytorch_lightning", "pytorch-lightning", MINIMUM
        )
    if installed_version("lightning") is None and installed_version("pytorch-lightning"):
        return import_framework(
            "labkeep.lightning", "pytorch_lightning", "pytorch-lightning", MINIMUM
        )
    return import_framework("labkeep.lightning", "lightning.pytorch", "lightning", MINIMUM)


pl = _lightning()
_LoggerBase: Any = pl.loggers.Logger
_F = TypeVar("_F", bound=Callable[..., Any])


def _rank_zero_only(fn: _F) -> _F:
    """Lightning's: only the process of global rank 0 logs."""
    return cast(_F, pl.utilities.rank_zero_only(fn))


def _rank_zero_experiment(fn: _F) -> _F:
    """Lightning's: other ranks get a stand-in that does nothing."""
    return cast(_F, pl.loggers.logger.rank_zero_experiment(fn))


#: Lightning's statuses for ``finalize``, as run statuses.
STATUSES = {"success": "completed", "finished": "interrupted", "failed": "failed"}
LOG_MODEL = (True, False, "all")


class Logger(_LoggerBase):  # type: ignore[misc]
    """Lightning's ``Logger`` writing into a labkeep run (see the module's docstring).

    ``run``: log into this run instead of the active one; ``experiment`` and ``name`` are
    for a run the logger starts. ``prefix`` is put before every metric key.

    >>> logger = labkeep.lightning.Logger(log_model="all")  # doctest: +SKIP
    >>> lightning.Trainer(logger=logger).fit(model, loader)  # doctest: +SKIP
    >>> logger.run.number                                    # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        log_model: bool | str = True,
        prefix: str = "",
        run: Run | None = None,
        experiment: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__()
        if log_model not in LOG_MODEL or type(log_model) not in (bool, str):
            raise InvalidInputError(
                f"labkeep.lightning.Logger(log_model={log_model!r}): use True (the best "
                "checkpoint), 'all' (every checkpoint) or False"
            )
        self._log_model = log_model
        self._prefix = prefix
        self._runs = TrainingRun(run, experiment=experiment, name=name)
        self._experiment_name = experiment
        self._checkpoint_callback: Any = None
        self._logged_checkpoints: set[str] = set()

    # -- what Lightning asks of a logger -------------------------------------------------
    @property
    def name(self) -> str:
        """The experiment (part of the checkpoint folder Lightning makes)."""
        run = self._runs.current()
        if run is not None:
            return run.experiment
        return self._experiment_name or str(self.experiment.experiment)

    @property
    def version(self) -> str:
        """The run's uuid (the other part of the checkpoint folder)."""
        return str(self.experiment.uuid)

    @property
    @_rank_zero_experiment
    def experiment(self) -> Run:
        """The labkeep run (started here when there is none)."""
        return self._runs.get()

    @property
    def run(self) -> Run | None:
        """The run logged into so far, if any (never starts one)."""
        return self._runs.current()

    @_rank_zero_only
    def log_hyperparams(
        self, params: Mapping[str, Any] | Namespace, *args: Any, **kwargs: Any
    ) -> None:
        if isinstance(params, Namespace):
            params = vars(params)
        log_params(self._runs.get(), dict(params), "labkeep.lightning")

    @_rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        values = {}
        for key, value in metrics.items():
            number = numeric(value)
            if number is not None:
                values[f"{self._prefix}{key}"] = number
        if values:
            self._runs.get().log(values, step=step)

    @_rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        if self._log_model == "all":
            self._log_checkpoints(checkpoint_callback)
        if self._log_model:  # the best one is stored when training ends
            self._checkpoint_callback = checkpoint_callback

    @_rank_zero_only
    def finalize(self, status: str) -> None:
        run = self._runs.current()
        if run is None or run.finished:
            return
        if self._checkpoint_callback is not None:
            try:
                self._log_best(self._checkpoint_callback)
            finally:
                self._checkpoint_callback = None
        final = STATUSES.get(status, "completed")
        if status == "failed" and isinstance(sys.exc_info()[1], KeyboardInterrupt):
            final = "interrupted"  # Lightning says "failed" for Ctrl-C too
        self._runs.end(final)

    # -- checkpoints -------------------------------------------------------------------
    def _log_checkpoints(self, callback: Any) -> None:
        """Store every checkpoint file the callback keeps that is not stored yet."""
        # Kept top-k files, and the newest one when nothing is monitored (then "best").
        paths = [
            *getattr(callback, "best_k_models", {}),
            getattr(callback, "best_model_path", ""),
            getattr(callback, "last_model_path", ""),
        ]
        for path in paths:
            if path and path not in self._logged_checkpoints and Path(path).is_file():
                self._log_checkpoint(path, f"checkpoints/{Path(path).stem}")
        self._summarise(callback)

    def _log_best(self, callback: Any) -> None:
        path = getattr(callback, "best_model_path", "") or getattr(callback, "last_model_path", "")
        if path and Path(path).is_file():
            self._log_checkpoint(path, "checkpoints/best")
            self._summarise(callback)

    def _log_checkpoint(self, path: str, model_name: str) -> None:
        import torch

        # A checkpoint this process has just written: its own pickle, safe to read back.
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
        if not state:
            _log.warning("labkeep.lightning: %s holds no state_dict; not stored", path)
            return
        run = self._runs.get()
        run.log_model(dict(state), model_name)
        self._logged_checkpoints.add(path)

    def _summarise(self, callback: Any) -> None:
        values: dict[str, Any] = {}
        score = numeric(getattr(callback, "best_model_score", None))
        if score is not None:
            values["checkpoint.best_score"] = score
        monitor = getattr(callback, "monitor", None)
        if monitor:
            values["checkpoint.monitor"] = str(monitor)
        if values:
            self._runs.get().summary.update(values)


__all__ = ["Logger"]
