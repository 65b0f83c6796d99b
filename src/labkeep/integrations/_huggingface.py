"""``labkeep.huggingface``: a ``TrainerCallback`` that tracks a Hugging Face ``Trainer`` in a
labkeep run.

>>> trainer = transformers.Trainer(model=model, args=args, train_dataset=train,
...                                callbacks=[labkeep.huggingface.Callback()])  # doctest: +SKIP

What it records:

- params: the ``TrainingArguments`` under their own names (``learning_rate``,
  ``num_train_epochs``…), and the model's config under ``model.`` (``model.hidden_size``,
  ``model.model_type``…) with its parameter count;
- metrics: whatever the Trainer logs (``loss``, ``grad_norm``, ``learning_rate``, ``epoch``,
  and ``eval_*`` from ``evaluate()``, which logs through the same hook), under the names the
  Trainer prints them with, at the Trainer's global step;
- the final model (the best one with ``load_best_model_at_end``) through ``run.log_model``
  when training ends: a PyTorch module, loaded back with ``labkeep.load_model(...,
  trusted=True)``; ``log_model=False`` leaves it out.

The run is the one given, the active one, or one the callback starts and finishes at the end
of training; an ``evaluate()`` after ``train()`` continues that run (see ``_training_run``).
Only the main process logs in distributed training.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from labkeep.errors import ModelError
from labkeep.integrations._training_run import (
    TrainingRun,
    import_framework,
    log_params,
    numeric,
)

if TYPE_CHECKING:
    from labkeep._run import Run

MINIMUM = "4.36"
_log = logging.getLogger("labkeep")

transformers = import_framework("labkeep.huggingface", "transformers", "transformers", MINIMUM)
_CallbackBase: Any = transformers.TrainerCallback

#: What the Trainer logs once, at the end of training: kept in the summary too.
TOTALS = ("train_runtime", "train_samples_per_second", "train_steps_per_second", "train_loss")


class Callback(_CallbackBase):  # type: ignore[misc]
    """Track a ``transformers.Trainer`` in a labkeep run (see the module's docstring).

    ``log_model``: store the final model as ``model_name``. ``run``: log into this run
    instead of the active one; ``experiment`` and ``name`` are for a run the callback starts.

    >>> transformers.Trainer(..., callbacks=[labkeep.huggingface.Callback()])  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        log_model: bool = True,
        model_name: str = "model",
        run: Run | None = None,
        experiment: str | None = None,
        name: str | None = None,
    ) -> None:
        self.log_model = log_model
        self.model_name = model_name
        self._runs = TrainingRun(run, experiment=experiment, name=name)

    @property
    def run(self) -> Run | None:
        """The run the callback logs into (None before training starts)."""
        return self._runs.current()

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        run = self._runs.get()
        log_params(run, args.to_dict(), "labkeep.huggingface")
        model = kwargs.get("model")
        config = getattr(model, "config", None)
        if config is not None and hasattr(config, "to_dict"):
            log_params(run, config.to_dict(), "labkeep.huggingface", prefix="model.")
        if model is not None and hasattr(model, "num_parameters"):
            log_params(
                run, {"num_parameters": int(model.num_parameters())}, "labkeep.huggingface",
                prefix="model.",
            )  # fmt: skip

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        values = {}
        for key, value in logs.items():
            number = numeric(value)
            if number is not None:
                values[key] = number
        if not values:
            return
        run = self._runs.get()
        run.log(values, step=int(state.global_step))
        totals = {key: values[key] for key in TOTALS if key in values}
        if totals:
            run.summary.update(totals)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        run = self._runs.get()
        best: dict[str, Any] = {"global_step": int(state.global_step)}
        if state.best_metric is not None:
            best["best_metric"] = state.best_metric
        if state.best_model_checkpoint:
            best["best_model_checkpoint"] = str(state.best_model_checkpoint)
        run.summary.update(best)
        model = kwargs.get("model")
        if self.log_model and model is not None:
            self._store(run, model)
        self._runs.end()

    def _store(self, run: Run, model: Any) -> None:
        try:
            run.log_model(model, self.model_name)
        except ModelError as exc:
            # A module that does not pickle (hooks, a wrapped model): its weights still
            # are the model, in PyTorch's safe format.
            _log.warning(
                "labkeep.huggingface: the %s is stored as its state_dict: %s",
                type(model).__name__,
                exc,
            )
            run.log_model(dict(model.state_dict()), self.model_name)


__all__ = ["Callback"]
