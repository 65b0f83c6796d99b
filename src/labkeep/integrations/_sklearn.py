"""scikit-learn autolog: every estimator's ``fit`` logs its params, training metrics and model.

:func:`install` patches ``fit``, ``fit_transform`` and ``fit_predict`` where scikit-learn's
classes define them (the subclasses of ``BaseEstimator``, and the ones defined later, through
``BaseEstimator.__init_subclass__``), so an estimator module imported after autolog was turned
on is patched as its classes are created, and no other part of scikit-learn is imported for it.
A patched call that is not nested in another one (:mod:`._autolog`) then logs, into the active
run or a run of its own:

- the estimator's params (``get_params``; an estimator inside one, a pipeline's step, as
  ``step.param`` with its class under ``step.class``);
- training metrics, scored on the data it was fit on: ``training_accuracy``,
  ``training_precision``, ``training_recall``, ``training_f1`` (weighted averages),
  ``training_log_loss`` and ``training_roc_auc`` for a classifier (the last two where it
  has ``predict_proba``); ``training_r2``, ``training_mse``, ``training_rmse`` and
  ``training_mae`` for a regressor;
- a search (``GridSearchCV``, ``RandomizedSearchCV``…): the best params as ``best.NAME``,
  ``best_cv_score``, and each candidate as a child run with its params and its
  ``cv_results_`` numbers (best first, at most ``max_tuning_runs``);
- the fitted estimator, through ``run.log_model`` (skops).

XGBoost's and LightGBM's scikit-learn wrappers are left to their own autolog, which sees each
boosting round.
"""

from __future__ import annotations

import functools
import logging
import types
from typing import TYPE_CHECKING, Any

from labkeep.integrations._autolog import (
    SETTINGS,
    active,
    log_model_quietly,
    model_name,
    nested,
    plain_params,
    quiet,
    require,
    training,
)

if TYPE_CHECKING:
    from labkeep._run import Run

MINIMUM = "1.2"
_METHODS = ("fit", "fit_transform", "fit_predict")
#: Estimators whose own autolog sees more than scikit-learn's ``fit`` does: their ``fit`` only
#: keeps what it fits with scikit-learn inside from being logged.
_OWN_AUTOLOG = ("xgboost", "lightgbm")
logger = logging.getLogger("labkeep.integrations")


def install(module: Any) -> None:
    """Patch scikit-learn's estimators (``module`` is ``sklearn``, already imported)."""
    require("sklearn", MINIMUM, module)
    from sklearn.base import BaseEstimator

    if "__labkeep_autolog__" not in BaseEstimator.__dict__:
        _hook_new_classes(BaseEstimator)
    pending = [BaseEstimator]
    seen: set[type] = set()
    while pending:
        cls = pending.pop()
        if cls in seen:
            continue
        seen.add(cls)
        patch_class(cls)
        pending.extend(cls.__subclasses__())


def _hook_new_classes(base: type) -> None:
    """Patch each class derived from ``base`` from now on, as it is created."""
    own = base.__dict__.get("__init_subclass__")

    def __init_subclass__(cls: Any, /, **kwargs: Any) -> None:
        if own is not None:
            own.__func__(cls, **kwargs)
        else:
            super(base, cls).__init_subclass__(**kwargs)  # type: ignore[arg-type]
        patch_class(cls)

    setattr(base, "__init_subclass__", classmethod(__init_subclass__))  # noqa: B010
    base.__labkeep_autolog__ = True  # type: ignore[attr-defined]


def patch_class(cls: type) -> None:
    """Wrap the training methods ``cls`` defines itself (inherited ones are wrapped where
    they are defined)."""
    own = cls.__module__.split(".", 1)[0] in _OWN_AUTOLOG
    for method in _METHODS:
        function = cls.__dict__.get(method)
        if isinstance(function, types.FunctionType) and not hasattr(
            function, "__labkeep_autolog__"
        ):
            setattr(cls, method, _wrap_quiet(function) if own else _wrap(function))


def _wrap(function: Any) -> Any:
    @functools.wraps(function)
    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not active("sklearn"):
            return function(self, *args, **kwargs)
        with training("sklearn", type(self).__name__) as run:
            result = function(self, *args, **kwargs)
            if run is not None:
                try:
                    log_fit(run, self, args, kwargs)
                except Exception as exc:  # the fit succeeded: logging must not undo it
                    logger.warning("%s.fit was not fully logged: %r", type(self).__name__, exc)
        return result

    patched.__labkeep_autolog__ = True  # type: ignore[attr-defined]
    return patched


def _wrap_quiet(function: Any) -> Any:
    """A boosting library's wrapper: what it fits with scikit-learn inside is not logged."""

    @functools.wraps(function)
    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not active("sklearn"):
            return function(self, *args, **kwargs)
        with quiet("sklearn"):
            return function(self, *args, **kwargs)

    patched.__labkeep_autolog__ = True  # type: ignore[attr-defined]
    return patched


def log_fit(run: Run, estimator: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Log one finished top-level fit of ``estimator`` into ``run``."""
    x = args[0] if args else kwargs.get("X")
    y = args[1] if len(args) > 1 else kwargs.get("y")
    run.config.update(estimator_params(estimator))
    if hasattr(estimator, "cv_results_"):
        _log_search(run, estimator)
    if y is not None and x is not None:
        metrics = training_metrics(estimator, x, y, kwargs.get("sample_weight"))
        if metrics:
            run.log(metrics)
    log_model_quietly(run, estimator, model_name(run), input_example=_head(x))


def estimator_params(estimator: Any) -> dict[str, Any]:
    """``get_params(deep=False)`` as params, nested estimators as nested dicts."""
    out: dict[str, Any] = {"class": type(estimator).__name__}
    for key, value in estimator.get_params(deep=False).items():
        out[key] = _param_value(value)
    return out


def _param_value(value: Any) -> Any:
    if hasattr(value, "get_params") and not isinstance(value, type):
        return estimator_params(value)
    if isinstance(value, list | tuple) and value and all(_is_named_step(v) for v in value):
        return {str(step[0]): _param_value(step[1]) for step in value}
    return plain_params({"v": value})["v"]


def _is_named_step(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) >= 2 and isinstance(value[0], str)


def training_metrics(estimator: Any, x: Any, y: Any, sample_weight: Any = None) -> dict[str, float]:
    """Scores of ``estimator`` on the data it was fit on (see the module's docstring)."""
    from sklearn.base import is_classifier, is_regressor

    with nested():
        if is_classifier(estimator):
            return _classifier_metrics(estimator, x, y, sample_weight)
        if is_regressor(estimator):
            return _regressor_metrics(estimator, x, y, sample_weight)
    return {}


def _classifier_metrics(estimator: Any, x: Any, y: Any, weight: Any) -> dict[str, float]:
    import numpy as np
    from sklearn import metrics

    proba = None
    if hasattr(estimator, "predict_proba"):
        try:
            proba = estimator.predict_proba(x)
        except (AttributeError, NotImplementedError, ValueError):
            proba = None
    classes = getattr(estimator, "classes_", None)
    if proba is not None and classes is not None and np.ndim(classes) == 1:
        predicted = np.asarray(classes)[np.argmax(proba, axis=1)]
    else:
        predicted = estimator.predict(x)
    out: dict[str, Any] = {}
    counted = counted_metrics(y, predicted, proba, classes, weight)
    if counted is not None:
        out.update(counted)
    else:
        out["training_accuracy"] = metrics.accuracy_score(y, predicted, sample_weight=weight)
        scores = {
            "training_precision": metrics.precision_score,
            "training_recall": metrics.recall_score,
            "training_f1": metrics.f1_score,
        }
        for key, score in scores.items():
            out[key] = score(
                y, predicted, average="weighted", sample_weight=weight, zero_division=0
            )
    if proba is not None and classes is not None:
        try:
            if "training_log_loss" not in out:
                out["training_log_loss"] = metrics.log_loss(
                    y, proba, labels=classes, sample_weight=weight
                )
            if len(classes) == 2:
                out["training_roc_auc"] = metrics.roc_auc_score(
                    y, proba[:, 1], sample_weight=weight
                )
            else:
                out["training_roc_auc"] = metrics.roc_auc_score(
                    y, proba, multi_class="ovr", average="weighted", labels=classes,
                    sample_weight=weight,
                )  # fmt: skip
        except ValueError:  # one class only in y, labels that are not the classes…
            pass
    return {key: float(value) for key, value in out.items()}


def counted_metrics(
    y: Any, predicted: Any, proba: Any, classes: Any, weight: Any
) -> dict[str, float] | None:
    """Accuracy, weighted precision/recall/F1 (and log loss with ``proba``) from one confusion
    matrix: what scikit-learn's functions give, without their input checks, which cost ten
    times the arithmetic (30 ms of a 1 s fit). None when ``y`` is not a column of known
    classes: scikit-learn's functions then decide."""
    import numpy as np

    if classes is None or np.ndim(classes) != 1 or np.ndim(y) != 1:
        return None
    classes = np.asarray(classes)
    truth = np.asarray(y)
    if truth.dtype.kind not in "biuf" or classes.dtype.kind not in "biuf":
        return None
    index = np.searchsorted(classes, truth)
    index[index >= len(classes)] = 0
    if not np.array_equal(classes[index], truth):
        return None
    guessed = np.searchsorted(classes, np.asarray(predicted))
    w = np.ones(len(truth)) if weight is None else np.asarray(weight, dtype=float)
    k = len(classes)
    matrix = np.bincount(index * k + guessed, weights=w, minlength=k * k).reshape(k, k)
    hits = np.diag(matrix)
    support = matrix.sum(axis=1)
    chosen = matrix.sum(axis=0)
    total = support.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(chosen > 0, hits / chosen, 0.0)
        recall = np.where(support > 0, hits / support, 0.0)
        f1 = np.where(support + chosen > 0, 2 * hits / (support + chosen), 0.0)
    out = {
        "training_accuracy": float(hits.sum() / total),
        "training_precision": float((precision * support).sum() / total),
        "training_recall": float((recall * support).sum() / total),
        "training_f1": float((f1 * support).sum() / total),
    }
    if proba is not None and np.ndim(proba) == 2 and proba.shape[1] == k:
        rows = np.asarray(proba, dtype=float)
        rows = rows / rows.sum(axis=1, keepdims=True)
        eps = np.finfo(rows.dtype).eps
        picked = np.clip(rows[np.arange(len(index)), index], eps, 1 - eps)
        out["training_log_loss"] = float(-(w * np.log(picked)).sum() / total)
    return out


def _regressor_metrics(estimator: Any, x: Any, y: Any, weight: Any) -> dict[str, float]:
    from sklearn import metrics

    predicted = estimator.predict(x)
    mse = float(metrics.mean_squared_error(y, predicted, sample_weight=weight))
    return {
        "training_r2": float(metrics.r2_score(y, predicted, sample_weight=weight)),
        "training_mse": mse,
        "training_rmse": mse**0.5,
        "training_mae": float(metrics.mean_absolute_error(y, predicted, sample_weight=weight)),
    }


def _log_search(run: Run, search: Any) -> None:
    """A search's best params and score, and its candidates as child runs of ``run``."""
    from labkeep import _api

    best = getattr(search, "best_params_", None)
    if best is not None:
        run.config.update({"best": plain_params(best)})
    score = getattr(search, "best_score_", None)
    if score is not None:
        run.log({"best_cv_score": float(score)})
    results = search.cv_results_
    candidates = list(range(len(results["params"])))
    ranks = results.get("rank_test_score")
    if ranks is not None:
        candidates.sort(key=lambda i: int(ranks[i]))
    limit = SETTINGS.max_tuning_runs
    if limit is not None:
        candidates = candidates[:limit]
    numbers = [
        key
        for key, column in results.items()
        if key != "params" and not key.startswith("param_") and _is_numeric_column(column)
    ]
    for index in candidates:
        child = _api.init(
            parent=run,
            name=f"{type(search).__name__}-candidate-{index}",
            config=plain_params(results["params"][index]),
            tags=["autolog", "candidate"],
        )
        with child:
            child.log({key: float(results[key][index]) for key in numbers})


def _is_numeric_column(column: Any) -> bool:
    kind = getattr(getattr(column, "dtype", None), "kind", "")
    return kind in ("f", "i", "u")


def _head(x: Any) -> Any:
    """The first rows of ``x`` as an input example, or None (sparse or unknown input)."""
    try:
        if hasattr(x, "iloc"):
            return x.iloc[:5]
        if hasattr(x, "shape") and not hasattr(x, "tocsr"):
            return x[:5]
    except (TypeError, IndexError, KeyError):
        return None
    return None
