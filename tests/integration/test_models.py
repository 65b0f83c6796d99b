"""Models stored with runs: real scikit-learn models on iris and digits, logged with
``run.log_model`` and loaded back with ``labkeep.load_model`` from SQLite, PostgreSQL and a
real ``labkeep server``; cloudpickle models load only when trusted; bad input is one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from labkeep_server import ServerProcess, isolated
from sklearn.datasets import load_digits, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import labkeep
from labkeep.errors import (
    InvalidInputError,
    ModelError,
    NotFoundError,
    UntrustedModelError,
)

__all__ = ["isolated"]
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(autouse=True)
def quick_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKEEP_CAPTURE", "0")
    monkeypatch.setenv("LABKEEP_SYSTEM_METRICS", "0")


def iris_model() -> tuple[LogisticRegression, Any]:
    X, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=500).fit(X, y), X


def digits_model() -> tuple[Any, Any]:
    X, y = load_digits(return_X_y=True)
    model = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=10, random_state=0))
    return model.fit(X, y), X


def test_a_scikit_learn_model_round_trips_on_each_store(store_uri: str) -> None:
    clf, X = iris_model()
    with labkeep.init(store=store_uri) as run:
        info = run.log_model(clf, "model", input_example=X[:5])
    number = run.number
    assert info.flavour == "sklearn" and info.safe
    assert info.versions["scikit-learn"] and info.versions["skops"] and info.versions["python"]
    assert info.signature == {
        "inputs": {"type": "ndarray", "dtype": "float64", "shape": [-1, 4]},
        "outputs": {"dtype": "int64", "shape": [-1]},
    }
    for uri in (f"runs:/{number}/model", f"runs:/{run.uuid}/model", "runs:/last/model"):
        loaded = labkeep.load_model(uri, store=store_uri)
        assert type(loaded) is LogisticRegression
        np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
        np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    view = labkeep.get_run(number, store=store_uri)
    np.testing.assert_array_equal(labkeep.load_model(view, "model").predict(X), clf.predict(X))
    [listed] = view.models
    assert listed.name == "model" and listed.uri == f"runs:/{run.uuid}/model"
    assert listed.size == sum(a.size for a in view.artifacts if a.path.startswith("model/"))
    assert {a.kind for a in view.artifacts} == {"model"}
    from labkeep.models import load_input_example

    np.testing.assert_array_equal(load_input_example(view, "model"), X[:5])


def test_a_pipeline_with_a_dataframe_example_keeps_its_columns(tmp_path: Path) -> None:
    import pandas as pd

    model, X = digits_model()
    frame = pd.DataFrame(X[:, :64], columns=[f"px{i}" for i in range(64)])
    model.fit(frame, load_digits().target)
    store = str(tmp_path / "s")
    with labkeep.init(store=store) as run:
        run.log_model(model, "digits/forest", input_example=frame.iloc[:3])
    info = labkeep.get_model_info(f"runs:/{run.number}/digits/forest", store=store)
    columns = info.signature["inputs"]["columns"] if info.signature else []
    assert [c["name"] for c in columns[:2]] == ["px0", "px1"] and columns[0]["dtype"] == "float64"
    uri = f"runs:/{run.number}/digits/forest"
    # skops does not trust a tree's raw node indices by default; nor does labkeep.
    with pytest.raises(UntrustedModelError, match=r"trusted=\['sklearn.tree._tree.Tree'\]"):
        labkeep.load_model(uri, store=store)
    loaded = labkeep.load_model(uri, store=store, trusted=["sklearn.tree._tree.Tree"])
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    loaded = labkeep.load_model(uri, store=store, trusted=True)
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    from labkeep.models import load_input_example

    example = load_input_example(labkeep.get_run(run.number, store=store), "digits/forest")
    pd.testing.assert_frame_equal(example, frame.iloc[:3].reset_index(drop=True))


def test_the_same_model_is_stored_once(tmp_path: Path) -> None:
    clf, _ = iris_model()
    store = str(tmp_path / "s")
    shas = []
    for _ in range(2):
        with labkeep.init(store=store) as run:
            run.log_model(clf, "model")
        view = labkeep.get_run(run.number, store=store)
        shas.append({a.path: a.sha256 for a in view.artifacts}["model/model.skops"])
    assert shas[0] == shas[1]


def test_models_round_trip_through_a_labkeep_server(tmp_path: Path, isolated: None) -> None:
    server = ServerProcess(str(tmp_path / "server-store")).start()
    try:
        model, X = digits_model()
        with labkeep.init(store=server.url) as run:
            run.log_model(model, "model", input_example=X[:2])
        loaded = labkeep.load_model(
            f"runs:/{run.number}/model", store=server.url, trusted=["sklearn.tree._tree.Tree"]
        )
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
        [info] = labkeep.get_run(run.number, store=server.url).models
        assert info.flavour == "sklearn" and info.signature is not None
    finally:
        server.kill()


class Doubler:
    """No framework's format fits it: stored with cloudpickle."""

    def predict(self, x: Any) -> Any:
        return np.asarray(x) * 2


def test_a_pickled_model_loads_only_when_trusted(tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    with labkeep.init(store=store) as run:
        info = run.log_model(Doubler(), "doubler", input_example=[[1.0, 2.0]])
    assert info.flavour == "cloudpickle" and not info.safe
    assert info.signature is not None
    assert info.signature["outputs"] == {"dtype": "float64", "shape": [-1, 2]}
    uri = f"runs:/{run.number}/doubler"
    with pytest.raises(UntrustedModelError, match=r"trusted=True"):
        labkeep.load_model(uri, store=store)
    loaded = labkeep.load_model(uri, store=store, trusted=True)
    np.testing.assert_array_equal(loaded.predict([[1.0, 2.0]]), [[2.0, 4.0]])


def test_the_module_level_shortcut_and_a_disabled_run(tmp_path: Path) -> None:
    clf, _ = iris_model()
    store = str(tmp_path / "s")
    with labkeep.init(store=store) as run:
        info = labkeep.log_model(clf, "clf")
    assert info.uri == f"runs:/{run.uuid}/clf"
    assert labkeep.get_model_info(info.uri, store=store).flavour == "sklearn"
    with labkeep.init(mode="disabled") as disabled:
        assert disabled.log_model(clf).flavour == "sklearn"


def test_a_model_that_cannot_be_saved_leaves_nothing(tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    with labkeep.init(store=store) as run:
        with pytest.raises(ModelError, match=r"could not be saved as a cloudpickle model"):
            run.log_model(threading.Lock(), "lock")
        with pytest.raises(InvalidInputError, match=r"not a relative path"):
            run.log_model(Doubler(), "../escape")
    assert labkeep.get_run(run.number, store=store).artifacts == []


def _log_fake_model(tmp_path: Path, store: str, model_file: bytes, metadata: bytes) -> int:
    folder = tmp_path / "fake"
    folder.mkdir()
    (folder / "model.skops").write_bytes(model_file)
    (folder / "labkeep_model.json").write_bytes(metadata)
    with labkeep.init(store=store) as run:
        run.log_artifact(folder / "model.skops", "model/model.skops", kind="model")
        run.log_artifact(folder / "labkeep_model.json", "model/labkeep_model.json", kind="model")
    return run.number


def _metadata(**changes: Any) -> bytes:
    meta = {
        "format_version": 1,
        "name": "model",
        "run_uuid": "0" * 32,
        "flavour": "sklearn",
        "model_file": "model.skops",
        "model_class": "sklearn.linear_model._logistic.LogisticRegression",
        "safe": True,
        "versions": {},
        **changes,
    }
    return json.dumps(meta).encode()


def test_a_damaged_model_file_is_one_clear_error(tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    number = _log_fake_model(tmp_path, store, b"not a zip file", _metadata())
    with pytest.raises(ModelError, match=r"^model 'model' of run 1 cannot be loaded as a sklearn"):
        labkeep.load_model(f"runs:/{number}/model", store=store)


def test_damaged_metadata_is_one_clear_error(tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    number = _log_fake_model(tmp_path, store, b"x", b"{not json")
    with pytest.raises(ModelError, match=r"damaged metadata file"):
        labkeep.load_model(f"runs:/{number}/model", store=store)


def test_metadata_naming_a_file_outside_the_model_is_refused(tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    number = _log_fake_model(tmp_path, store, b"x", _metadata(model_file="../other/model.pkl"))
    with pytest.raises(ModelError, match=r"outside the model"):
        labkeep.load_model(f"runs:/{number}/model", store=store)


def test_missing_models_runs_and_bad_uris(tmp_path: Path) -> None:
    clf, _ = iris_model()
    store = str(tmp_path / "s")
    with labkeep.init(store=store) as run:
        run.log_model(clf, "clf")
    with pytest.raises(NotFoundError, match=r"run 1 has no model 'model' \(its models: clf\)"):
        labkeep.load_model(f"runs:/{run.number}/model", store=store)
    with pytest.raises(NotFoundError, match=r"no run '42'"):
        labkeep.load_model("runs:/42/clf", store=store)
    for bad in ("models:/clf", "runs:/1", "runs://clf", "clf"):
        with pytest.raises(InvalidInputError, match=r"runs:/RUN/NAME"):
            labkeep.load_model(bad, store=store)


def _cli(store: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("LABKEEP_HOME", None)
    return subprocess.run(
        [sys.executable, "-m", "labkeep.cli", "--store", store, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_models_show_in_the_command_line(tmp_path: Path) -> None:
    clf, X = iris_model()
    store = str(tmp_path / "s")
    with labkeep.init(store=store) as run:
        run.log_model(clf, "model", input_example=X[:5])
        run.log_model(Doubler(), "doubler")
    with labkeep.init(store=store):
        pass
    listing = _cli(store, "models")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].split()[:4] == ["run", "name", "flavour", "size"]
    assert lines[1].split()[:3] == ["1", "model", "sklearn"] and "runs:/1/model" in lines[1]
    assert lines[2].split()[:4] == ["1", "doubler", "cloudpickle", "(unsafe)"]
    as_json = json.loads(_cli(store, "models", "1", "--json").stdout)
    assert [m["name"] for m in as_json] == ["model", "doubler"]
    assert as_json[0]["versions"]["scikit-learn"]
    empty = _cli(store, "models", "2")
    assert empty.returncode == 0 and "no models in run 2" in empty.stdout
    show = _cli(store, "show", "1")
    assert show.returncode == 0, show.stderr
    section = show.stdout[show.stdout.index("models") :]
    assert "sklearn" in section and "cloudpickle (unsafe to load)" in section
    missing = _cli(store, "models", "42")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().count("\n") == 0 and "no run '42'" in missing.stderr
