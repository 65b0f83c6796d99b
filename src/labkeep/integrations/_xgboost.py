"""XGBoost: :class:`Callback` for ``xgboost.train`` and the scikit-learn wrappers, and autolog.

The callback logs each boosting round's evaluation results at the round as the step
(``validation_0-logloss``, or ``DATA-METRIC`` for the names given in ``evals``; ``xgboost.cv``
adds ``-std``), and when training ends the booster as a model in XGBoost's own format
(``run.log_model``) and its feature importances (:func:`._autolog.log_feature_importance`).
It logs into the active run, or starts one that it finishes when training ends.

Autolog (:func:`install`) wraps ``xgboost.train`` (where XGBoost's scikit-learn wrappers find it
too) so that each top-level call logs its params and ``num_boost_round`` and runs with the
callback added.
"""

from __future__ import annotations

from typing import Any

from labkeep.integrations._autolog import (
    BoosterCallback,
    RunFor,
    patch_functions,
    require,
    wrap_train,
)

MINIMUM = "2.0"
xgboost = require("xgboost", MINIMUM)
_TrainingCallback: Any = xgboost.callback.TrainingCallback


class Callback(BoosterCallback, _TrainingCallback):  # type: ignore[misc]
    """Log an XGBoost training into the active run (or a run it starts).

    >>> booster = xgboost.train(params, dtrain, evals=[(dvalid, "valid")],
    ...                         callbacks=[labkeep.xgboost.Callback()])  # doctest: +SKIP
    >>> XGBClassifier(callbacks=[labkeep.xgboost.Callback()]).fit(X, y)  # doctest: +SKIP
    """

    def before_training(self, model: Any) -> Any:
        self._holder = RunFor("xgboost")
        return model

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
        holder = self._holder
        if holder is None:
            return False
        metrics: dict[str, float] = {}
        for data, scores in evals_log.items():
            for metric, values in scores.items():
                if not values:
                    continue
                last = values[-1]
                if isinstance(last, tuple):  # xgboost.cv: (mean, std)
                    metrics[f"{data}-{metric}"] = float(last[0])
                    metrics[f"{data}-{metric}-std"] = float(last[1])
                else:
                    metrics[f"{data}-{metric}"] = float(last)
        if metrics:
            holder.run.log(metrics, step=epoch)
        return False

    def after_training(self, model: Any) -> Any:
        holder, self._holder = self._holder, None
        if holder is None:
            return model
        try:
            if isinstance(model, xgboost.Booster):
                self.log_booster(holder.run, model)
        finally:
            holder.close()
        return model

    def best_iteration(self, booster: Any) -> int | None:
        best = booster.attr("best_iteration")
        return None if best is None else int(best)

    def importances(self, booster: Any) -> tuple[list[str], list[float]]:
        scores = booster.get_score(importance_type=self.importance_type)
        return list(scores), list(scores.values())


def install(module: Any) -> None:
    """Autolog ``xgboost.train`` (and so the scikit-learn wrappers, which call it)."""
    require("xgboost", MINIMUM, module)
    import xgboost.sklearn
    import xgboost.training

    patch_functions(
        [module, xgboost.training, xgboost.sklearn], "train", wrap_train("xgboost", Callback, 10)
    )
