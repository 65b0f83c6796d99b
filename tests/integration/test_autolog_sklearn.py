"""``labkeep.autolog()`` with real scikit-learn estimators on iris, digits and data made here:
params, training metrics, the model, searches with their candidates as child runs, nested fits
not logged on their own, autolog turned on before scikit-learn is imported, and bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits, load_iris, make_regression
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

import labkeep
from conftest import run_python
from labkeep.errors import IntegrationError, InvalidInputError
from labkeep.integrations._autolog import BACKGROUND, require


@pytest.fixture(autouse=True)
def quick_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("LABKEEP_CAPTURE", "0")
    monkeypatch.setenv("LABKEEP_SYSTEM_METRICS", "0")
    yield
    labkeep.autolog(disable=True)


CLASSIFIER_METRICS = {
    "training_accuracy",
    "training_precision",
    "training_recall",
    "training_f1",
    "training_log_loss",
    "training_roc_auc",
}


def test_a_fit_with_no_active_run_gets_a_run_with_params_metrics_and_model() -> None:
    x, y = load_iris(return_X_y=True)
    labkeep.autolog()
    model = LogisticRegression(C=0.5, max_iter=300).fit(x, y)
    assert labkeep.active_run() is None  # the run autolog started is no longer active
    BACKGROUND.join()  # it ends once its model is saved
    (run,) = labkeep.runs()
    assert run.name == "LogisticRegression"
    assert run.status == "completed"
    assert "autolog" in run.tags
    assert run.params["C"] == 0.5
    assert run.params["max_iter"] == 300
    assert run.params["class"] == "LogisticRegression"
    assert set(run.metrics) >= CLASSIFIER_METRICS
    assert run.metrics["training_accuracy"].last == pytest.approx(model.score(x, y))
    assert 0 < run.metrics["training_log_loss"].last < 1
    (info,) = run.models
    assert info.flavour == "sklearn"
    loaded = labkeep.load_model(f"runs:/{run.uuid}/model")
    assert (loaded.predict(x) == model.predict(x)).all()


def test_a_pipeline_inside_an_active_run_logs_its_steps_params_once() -> None:
    x, y = load_digits(return_X_y=True)
    labkeep.autolog()
    with labkeep.init(experiment="digits") as outer:
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=50)).fit(x, y)
    runs = labkeep.runs(experiment="digits")
    assert [r.uuid for r in runs] == [outer.uuid]  # the steps' fits made no runs of their own
    (run,) = runs
    assert run.params["steps.standardscaler.class"] == "StandardScaler"
    assert run.params["steps.logisticregression.max_iter"] == 50
    assert run.metrics["training_accuracy"].count == 1
    assert [m.name for m in run.models] == ["model"]


def test_a_regressor_gets_regression_metrics_and_two_fits_two_models() -> None:
    x, y = make_regression(n_samples=80, n_features=5, noise=0.5, random_state=0)
    labkeep.autolog()
    with labkeep.init() as outer:
        first = Ridge(alpha=1.0).fit(x, y)
        Ridge(alpha=10.0).fit(x, y)
    (run,) = labkeep.runs()
    assert run.uuid == outer.uuid
    assert {"training_r2", "training_mse", "training_rmse", "training_mae"} <= set(run.metrics)
    r2 = run.series("training_r2")
    assert r2.values[0] == pytest.approx(first.score(x, y))
    assert list(r2.steps) == [0, 1]
    assert run.metrics["training_rmse"].last == pytest.approx(
        run.metrics["training_mse"].last ** 0.5
    )
    assert sorted(m.name for m in run.models) == ["model", "model-2"]


def test_a_grid_search_logs_best_params_and_its_candidates_as_child_runs() -> None:
    x, y = load_iris(return_X_y=True)
    labkeep.autolog()
    search = GridSearchCV(
        DecisionTreeClassifier(random_state=0), {"max_depth": [1, 2, 3]}, cv=3
    ).fit(x, y)
    BACKGROUND.join()
    top = [r for r in labkeep.runs() if r.parent_uuid is None]
    assert len(top) == 1  # neither the candidates' fits nor the refit made a run of their own
    (run,) = top
    assert run.name == "GridSearchCV"
    assert run.params["best.max_depth"] == search.best_params_["max_depth"]
    assert run.params["estimator.class"] == "DecisionTreeClassifier"
    assert run.metrics["best_cv_score"].last == pytest.approx(search.best_score_)
    children = list(run.children)
    assert sorted(c.params["max_depth"] for c in children) == [1, 2, 3]
    for child in children:
        index = search.cv_results_["params"].index({"max_depth": child.params["max_depth"]})
        assert child.metrics["mean_test_score"].last == pytest.approx(
            search.cv_results_["mean_test_score"][index]
        )
        assert child.metrics["rank_test_score"].last == search.cv_results_["rank_test_score"][index]
        assert child.status == "completed"
    assert run.models[0].model_class.endswith("GridSearchCV")


def test_max_tuning_runs_keeps_the_best_candidates() -> None:
    x, y = load_iris(return_X_y=True)
    labkeep.autolog(max_tuning_runs=2, log_models=False)
    search = RandomizedSearchCV(
        LogisticRegression(max_iter=200), {"C": [0.001, 0.01, 0.1, 1.0]}, n_iter=4, cv=3,
        random_state=0,
    ).fit(x, y)  # fmt: skip
    BACKGROUND.join()
    (run,) = [r for r in labkeep.runs() if r.parent_uuid is None]
    children = list(run.children)
    assert len(children) == 2
    assert min(c.metrics["rank_test_score"].last for c in children) == 1
    assert run.models == []
    assert search.best_params_["C"] in {c.params["C"] for c in children}


def test_disable_turns_logging_off() -> None:
    x, y = load_iris(return_X_y=True)
    labkeep.autolog()
    labkeep.autolog(disable=True)
    LogisticRegression(max_iter=200).fit(x, y)
    assert len(labkeep.runs()) == 0
    labkeep.autolog(exclude=["sklearn"])
    LogisticRegression(max_iter=200).fit(x, y)
    assert len(labkeep.runs()) == 0


def test_autolog_before_sklearn_is_imported_patches_estimators_and_user_subclasses(
    tmp_path: Path,
) -> None:
    code = """
        import sys
        import labkeep
        labkeep.autolog()
        assert "sklearn" not in sys.modules
        from sklearn.datasets import load_iris
        from sklearn.neighbors import KNeighborsClassifier

        class MyKNN(KNeighborsClassifier):
            def fit(self, X, y):
                return super().fit(X, y)

        x, y = load_iris(return_X_y=True)
        KNeighborsClassifier(n_neighbors=3).fit(x, y)
        MyKNN(n_neighbors=4).fit(x, y)
        print(sorted(r.name for r in labkeep.runs()))
        # The script ends with the models still being saved: its exit waits for them.
    """
    done = run_python(code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['KNeighborsClassifier', 'MyKNN']"
    runs = {r.name: r for r in labkeep.runs(store=str(tmp_path / ".labkeep"))}
    assert {r.status for r in runs.values()} == {"completed"}
    assert [m.flavour for r in runs.values() for m in r.models] == ["sklearn", "sklearn"]
    assert runs["MyKNN"].params["n_neighbors"] == 4
    assert runs["MyKNN"].metrics["training_accuracy"].count == 1  # the inner fit was nested


def test_bad_settings_and_versions_are_one_line() -> None:
    with pytest.raises(InvalidInputError, match="name frameworks among sklearn"):
        labkeep.autolog(exclude=["sklaern"])
    with pytest.raises(InvalidInputError, match="max_tuning_runs=-1"):
        labkeep.autolog(max_tuning_runs=-1)
    with pytest.raises(IntegrationError) as too_old:
        require("sklearn", "99.0")
    assert str(too_old.value).startswith("sklearn 1.")
    assert "pip install 'sklearn>=99.0'" in str(too_old.value)
    with pytest.raises(IntegrationError, match="not installed: pip install 'no_such_framework>=1"):
        require("no_such_framework", "1.0")
    assert "\n" not in str(too_old.value)


def test_feature_importance_table_holds_every_feature(tmp_path: Path) -> None:
    from labkeep.integrations._autolog import log_feature_importance

    with labkeep.init() as run:
        log_feature_importance(run, ["a", "b", "c"], [0.2, np.float32(0.5), 0.0])
    view = labkeep.get_run(run.uuid)
    (table,) = view.media("feature_importance")
    assert table.columns == ["feature", "importance"]
    assert table.rows == [
        {"feature": "b", "importance": 0.5},
        {"feature": "a", "importance": 0.2},
        {"feature": "c", "importance": 0.0},
    ]
    assert view.summary["feature_importance.b"] == 0.5


@pytest.mark.parametrize("weighted", [False, True])
def test_counted_metrics_are_scikit_learns(weighted: bool) -> None:
    from sklearn import metrics
    from sklearn.datasets import load_breast_cancer

    from labkeep.integrations._sklearn import counted_metrics

    for x, y in (load_iris(return_X_y=True), load_breast_cancer(return_X_y=True)):
        model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(x, y)
        weight = np.linspace(0.5, 2.0, len(y)) if weighted else None
        proba = model.predict_proba(x)
        predicted = model.predict(x)
        found = counted_metrics(y, predicted, proba, model.classes_, weight)
        assert found is not None
        expected = {
            "training_accuracy": metrics.accuracy_score(y, predicted, sample_weight=weight),
            "training_log_loss": metrics.log_loss(y, proba, sample_weight=weight),
        }
        for name, score in (
            ("precision", metrics.precision_score),
            ("recall", metrics.recall_score),
            ("f1", metrics.f1_score),
        ):
            expected[f"training_{name}"] = score(
                y, predicted, average="weighted", sample_weight=weight, zero_division=0
            )
        assert found == pytest.approx(expected, rel=1e-9)
    assert (
        counted_metrics(np.array(["a", "b"]), ["a", "b"], None, np.array(["a", "b"]), None) is None
    )
