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
    BoosterCallback,
    RunFor,
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

    def best_iteration(self, booster: Any) -> int | None:
        best = booster.best_iteration
        return int(best) if best and best > 0 else None

    def importances(self, booster: Any) -> tuple[list[str], list[float]]:
        values = booster.feature_importance(importance_type=self.importance_type)
        return booster.feature_name(), values.tolist()

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
                    self.log_booster(holder.run, env.model)
            finally:
                holder.close()


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
    mine.log_booster(run, booster)
    return booster
