"""LightGBM: :class:`Callback` for ``lightgbm.train`` and the scikit-learn wrappers, and autolog.

The callback logs each iteration's evaluation results at the iteration as the step
(``valid_0-l2``, ``DATA-METRIC`` for the ``valid_names`` given; ``lightgbm.cv`` adds
``-stdv``), and after the last iteration the booster as a model in LightGBM's text format
(``run.log_model``) and its feature importances (:func:`._autolog.log_feature_importance`).
LightGBM's callbacks have no end-of-training hook: when early stopping ends a training before
its last iteration, the callback's model is not logged (autolog logs it, from the booster
``train`` returns), and a run the callback started ends when the next training starts or the
script ends.

Autolog (:func:`install`) wraps ``lightgbm.train`` (which the scikit-learn wrappers call too):
each top-level call logs its params and ``num_boost_round``, runs with the callback, and logs
the booster it returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from labkeep.integrations._autolog import (
    SETTINGS,
    BoosterCallback,
    RunFor,
    log_feature_importance,
    log_model_quietly,
    model_name,
    patch_functions,
    require,
    wrap_train,
)

MINIMUM = "4.0"
lightgbm = require("lightgbm", MINIMUM)


class Callback(BoosterCallback):
    """Log a LightGBM training into the active run (or a run it starts).

    >>> lightgbm.train(params, train_set, valid_sets=[valid],
    ...                callbacks=[labkeep.lightgbm.Callback()])  # doctest: +SKIP
    """

    #: Where LightGBM runs it among its callbacks: after ``log_evaluation`` (10), before
    #: ``early_stopping`` (30), which may end the training.
    order = 20
    before_iteration = False
    #: Under autolog the wrapper of ``train`` logs the booster it returns.
    _ends_itself = True

    def __call__(self, env: Any) -> None:
        if env.iteration == env.begin_iteration and self._holder is not None:
            self._holder.close()  # an earlier training ended early: its run ends now
            self._holder = None
        if self._holder is None:
            self._holder = RunFor("lightgbm")
        metrics: dict[str, float] = {}
        for item in env.evaluation_result_list or ():
            data, metric, value = item[0], item[1], item[2]
            metrics[f"{data}-{metric}"] = float(value)
            if len(item) > 4:  # lightgbm.cv: (…, mean, higher_better, stdv)
                metrics[f"{data}-{metric}-stdv"] = float(item[4])
        if metrics:
            self._holder.run.log(metrics, step=env.iteration)
        if env.iteration == env.end_iteration - 1:
            holder, self._holder = self._holder, None
            try:
                if self._ends_itself and isinstance(env.model, lightgbm.Booster):
                    log_booster(holder.run, env.model, self)
            finally:
                holder.close()


def log_booster(run: Any, booster: Any, options: Callback) -> None:
    """The booster as a model, and its feature importances, per ``options``."""
    name = model_name(run)
    suffix = name[len("model") :]
    if booster.best_iteration and booster.best_iteration > 0:
        run.summary.update({"best_iteration": int(booster.best_iteration)})
    if options.log_feature_importance:
        values = booster.feature_importance(importance_type=options.importance_type)
        log_feature_importance(
            run,
            booster.feature_name(),
            values.tolist(),
            name="feature_importance" + suffix,
            importance_type=options.importance_type,
        )
    if options.log_model and SETTINGS.log_models:
        log_model_quietly(run, booster, name)


def install(module: Any) -> None:
    """Autolog ``lightgbm.train`` (and so the scikit-learn wrappers, which call it)."""
    require("lightgbm", MINIMUM, module)
    import lightgbm.engine
    import lightgbm.sklearn

    wrap = wrap_train("lightgbm", Callback, 100, rounds_in_params=True, call=_train_and_log)
    patch_functions([module, lightgbm.engine, lightgbm.sklearn], "train", wrap)


def _train_and_log(run: Any, mine: Callback, train: Callable[[], Any]) -> Any:
    """Under autolog the booster ``train`` returns is logged here, also when early stopping
    ended the training before the callback saw its last iteration."""
    ends_itself, mine._ends_itself = mine._ends_itself, False
    try:
        booster = train()
    finally:
        mine._ends_itself = ends_itself
    log_booster(run, booster, mine)
    return booster
