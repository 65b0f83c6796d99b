"""XGBoost and LightGBM: ``labkeep.xgboost.Callback()`` / ``labkeep.lightgbm.Callback()`` and
autolog with the real libraries on data made here: per-iteration eval metrics at the
iteration's step, the booster as a model in its own format, feature importances, params, and a
framework that is missing (one line naming the package and the version)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import lightgbm
import pytest
import xgboost
from sklearn.datasets import load_breast_cancer, make_regression

import labkeep
import labkeep.lightgbm
import labkeep.xgboost
from conftest import run_python
from labkeep.integrations._autolog import BACKGROUND


@pytest.fixture(autouse=True)
def quick_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("LABKEEP_CAPTURE", "0")
    monkeypatch.setenv("LABKEEP_SYSTEM_METRICS", "0")
    yield
    labkeep.autolog(disable=True)


def _importances(
    run: labkeep.RunView, importance_type: str, name: str = "feature_importance"
) -> dict[str, float]:
    """The importances table the run holds (one, at step 0), feature to importance."""
    (item,) = run.media(name)
    assert item.kind == "table" and item.step == 0
    assert item.columns == ["feature", "importance", "importance_type"]
    rows = item.rows
    assert [r["importance"] for r in rows] == sorted((r["importance"] for r in rows), reverse=True)
    assert {r["importance_type"] for r in rows} == {importance_type}
    assert not any(a.path.endswith(".json") and "importance" in a.path for a in run.artifacts)
    return {r["feature"]: r["importance"] for r in rows}


def test_xgboost_callback_with_no_run_starts_one_and_logs_each_round() -> None:
    x, y = load_breast_cancer(return_X_y=True)
    train = xgboost.DMatrix(x[:400], y[:400])
    valid = xgboost.DMatrix(x[400:], y[400:])
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 2, "eval_metric": ["logloss", "error"]},
        train,
        6,
        evals=[(train, "train"), (valid, "valid")],
        callbacks=[labkeep.xgboost.Callback()],
        verbose_eval=False,
    )
    assert labkeep.active_run() is None
    BACKGROUND.join()
    (run,) = labkeep.runs()
    assert run.status == "completed"
    series = run.series("valid-logloss")
    assert list(series.steps) == [0, 1, 2, 3, 4, 5]
    assert {"train-logloss", "train-error", "valid-error"} <= set(run.metrics)
    (info,) = run.models
    assert info.flavour == "xgboost"
    loaded = labkeep.load_model(f"runs:/{run.uuid}/model")
    assert (loaded.predict(valid) == booster.predict(valid)).all()
    gains = booster.get_score(importance_type="gain")
    assert _importances(run, "gain") == pytest.approx(gains)
    top = max(gains, key=gains.__getitem__)
    assert run.summary[f"feature_importance.{top}"] == pytest.approx(gains[top])


def test_xgboost_autolog_of_the_sklearn_wrapper_logs_one_run() -> None:
    x, y = load_breast_cancer(return_X_y=True)
    labkeep.autolog()
    model = xgboost.XGBClassifier(n_estimators=5, max_depth=3, learning_rate=0.3)
    model.fit(x, y, eval_set=[(x[400:], y[400:])], verbose=False)
    BACKGROUND.join()
    runs = list(labkeep.runs())
    assert [r.name for r in runs] == ["xgboost"]  # no run for the label encoder it fits inside
    (run,) = runs
    assert run.params["max_depth"] == 3
    assert run.params["learning_rate"] == 0.3
    assert run.params["num_boost_round"] == 5
    assert list(run.series("validation_0-logloss").steps) == [0, 1, 2, 3, 4]
    assert [m.flavour for m in run.models] == ["xgboost"]


def test_lightgbm_callback_logs_each_iteration_and_the_model() -> None:
    x, y = make_regression(n_samples=300, n_features=6, random_state=0)
    train = lightgbm.Dataset(x[:200], y[:200])
    valid = lightgbm.Dataset(x[200:], y[200:], reference=train)
    with labkeep.init(experiment="lgb") as outer:
        booster = lightgbm.train(
            {"objective": "regression", "verbose": -1, "num_leaves": 7},
            train,
            num_boost_round=8,
            valid_sets=[valid],
            valid_names=["valid"],
            callbacks=[labkeep.lightgbm.Callback()],
        )
    (run,) = labkeep.runs(experiment="lgb")
    assert run.uuid == outer.uuid
    assert list(run.series("valid-l2").steps) == list(range(8))
    (info,) = run.models
    assert info.flavour == "lightgbm"
    loaded = labkeep.load_model(f"runs:/{run.uuid}/model")
    assert loaded.predict(x[:5]) == pytest.approx(booster.predict(x[:5]))
    gains = booster.feature_importance(importance_type="gain")
    assert _importances(run, "gain") == pytest.approx(
        dict(zip(booster.feature_name(), gains, strict=True))
    )


def test_lightgbm_autolog_with_early_stopping_logs_the_returned_booster() -> None:
    x, y = make_regression(n_samples=300, n_features=6, noise=40.0, random_state=1)
    labkeep.autolog()
    model = lightgbm.LGBMRegressor(n_estimators=200, learning_rate=0.5, verbose=-1)
    model.fit(
        x[:200],
        y[:200],
        eval_set=[(x[200:], y[200:])],
        callbacks=[lightgbm.early_stopping(3, verbose=False)],
    )
    BACKGROUND.join()
    (run,) = labkeep.runs()
    assert run.status == "completed"
    assert run.params["learning_rate"] == 0.5
    assert model.best_iteration_ < 200
    assert run.summary["best_iteration"] == model.best_iteration_
    assert run.metrics["valid_0-l2"].count == run.metrics["valid_0-l2"].last_step + 1
    assert [m.flavour for m in run.models] == ["lightgbm"]


def test_a_missing_framework_is_one_line_naming_the_package(tmp_path: Path) -> None:
    code = """
        import sys
        sys.modules["xgboost"] = None  # as if it were not installed
        try:
            import labkeep.xgboost
        except ImportError as exc:
            print(type(exc).__name__, exc)
    """
    done = run_python(code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "IntegrationError xgboost is not installed: pip install 'xgboost>=2.0' "
        "(or labkeep[integrations])\n"
    )
