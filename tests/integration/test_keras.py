"""``labkeep.keras.Callback`` on real Keras 3 (JAX backend) with a tiny network and data made
here: epoch and batch metrics, optimizer config, model summary, the best epoch's model, the
run it starts or joins, and one-line errors."""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "jax"  # before Keras is imported: no TensorFlow here

import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

import labkeep
from conftest import child_env, run_python
from labkeep.errors import InvalidInputError


@pytest.fixture(autouse=True)
def quick_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKEEP_CAPTURE", "0")
    monkeypatch.setenv("LABKEEP_SYSTEM_METRICS", "0")


def data() -> tuple[Any, Any]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    return x, (x[:, 0] + x[:, 1] > 0).astype("int32")


def tiny_model() -> Any:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu", name="hidden"),
            keras.layers.Dense(2, activation="softmax", name="out"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=0.05),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def steps(view: Any, key: str) -> list[int]:
    return [int(s) for s in view.series(key).steps]


def values(view: Any, key: str) -> list[float]:
    return [float(v) for v in view.series(key).values]


class WeightsPerEpoch(keras.callbacks.Callback):  # type: ignore[misc]
    """What the test compares the stored model with: each epoch's weights and val_loss."""

    def __init__(self) -> None:
        super().__init__()
        self.epochs: list[tuple[float, list[Any]]] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epochs.append((float((logs or {})["val_loss"]), self.model.get_weights()))


def test_fit_with_no_active_run_starts_one_and_records_the_training() -> None:
    x, y = data()
    model = tiny_model()
    seen = WeightsPerEpoch()
    callback = labkeep.keras.Callback()
    # 48 training rows in batches of 16: 3 batches an epoch.
    model.fit(
        x, y, epochs=4, batch_size=16, validation_split=0.25, verbose=0, callbacks=[callback, seen]
    )
    assert callback.run is not None and callback.run.finished
    assert labkeep.active_run() is None
    view = labkeep.get_run(callback.run.uuid)
    assert view.status.value == "completed"

    assert steps(view, "val_loss") == [0, 1, 2, 3]
    # Batch hooks may run on Keras' worker threads: points arrive in any order, each at
    # its own batch's step.
    assert sorted(steps(view, "batch/loss")) == list(range(12))
    assert view.metrics["learning_rate"].last == pytest.approx(0.05)
    assert {"loss", "accuracy", "val_accuracy", "batch/accuracy"} <= set(view.metrics)
    val_losses = values(view, "val_loss")
    assert val_losses == pytest.approx([loss for loss, _ in seen.epochs])

    params = view.params
    assert params["optimizer.class"] == "Adam" and params["optimizer.name"].startswith("adam")
    assert params["optimizer.learning_rate"] == pytest.approx(0.05)
    assert params["optimizer.beta_1"] == pytest.approx(0.9)
    assert params["fit.epochs"] == 4 and params["fit.steps"] == 3
    assert params["model.trainable_params"] == 4 * 8 + 8 + 8 * 2 + 2

    summary = view.artifact_path("model_summary.txt").read_text()
    assert "hidden" in summary and "out" in summary and "Total params" in summary

    best = min(range(4), key=lambda i: seen.epochs[i][0])
    assert view.summary["best.epoch"] == best
    assert view.summary["best.val_loss"] == pytest.approx(seen.epochs[best][0])
    stored = labkeep.load_model(view, "model")
    for got, want in zip(stored.get_weights(), seen.epochs[best][1], strict=True):
        np.testing.assert_allclose(got, want)
    # The model in memory keeps its own (last) weights.
    for got, want in zip(model.get_weights(), seen.epochs[-1][1], strict=True):
        np.testing.assert_allclose(got, want)


def test_fit_inside_an_active_run_logs_into_it_and_leaves_it_running() -> None:
    x, y = data()
    model = tiny_model()
    with labkeep.init(experiment="keras", config={"seed": 0}) as run:
        callback = labkeep.keras.Callback(
            log_batches=2, save_best=True, monitor="accuracy", log_summary=False
        )
        model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[callback])
        assert callback.run is run and not run.finished
        # A second fit goes on counting epochs and batches.
        model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[callback])
        run.log({"after": 1.0})
    view = labkeep.get_run(run.uuid)
    assert view.params["seed"] == 0 and view.params["optimizer.class"] == "Adam"
    assert steps(view, "loss") == [0, 1, 2, 3]
    # 4 batches an epoch, every second one logged, over 4 epochs.
    assert sorted(steps(view, "batch/loss")) == list(range(0, 16, 2))
    assert "val_loss" not in view.metrics and "after" in view.metrics
    accuracies = values(view, "accuracy")
    assert view.summary["best.accuracy"] == pytest.approx(max(accuracies[2:]))
    assert [m.name for m in view.models] == ["model"]
    assert not any(a.path == "model_summary.txt" for a in view.artifacts)


def test_save_best_off_stores_no_model() -> None:
    x, y = data()
    callback = labkeep.keras.Callback(save_best=False, log_batches=0)
    tiny_model().fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[callback])
    assert callback.run is not None
    view = labkeep.get_run(callback.run.uuid)
    assert view.models == [] and "batch/loss" not in view.metrics and "loss" in view.metrics


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "lowest"}, "mode='lowest'): use one of auto, min, max"),
        ({"log_batches": -1}, "log_batches=-1): give a number of batches"),
        ({"log_images": True, "num_images": 0}, "num_images=0): give how many samples"),
        ({"sample_data": np.zeros((4, 8, 8))}, "sample_data is drawn as images only with log_"),
        (
            {"log_images": True, "sample_data": (np.zeros((10, 4)), np.zeros(10))},
            "sample_data=...): inputs of shape 10x4 hold 1-D samples, not images; log_images needs",
        ),
        (
            {"log_images": True, "sample_data": np.zeros((10, 8, 8, 5))},
            "sample_data=...): inputs of shape 10x8x8x5 have 5 channels; log_images needs one image",
        ),
        (
            {"log_images": True, "sample_data": (np.zeros((10, 8, 8)), np.zeros(3))},
            "sample_data=...): 3 labels for 8 samples: give one a sample",
        ),
    ],
)
def test_bad_arguments_say_what_to_give(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=r"labkeep\.keras\.Callback\(") as caught:
        labkeep.keras.Callback(**kwargs)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def images(n: int, seed: int = 0) -> tuple[Any, Any]:
    """``n`` grey 8x8 images in [0, 1], each with a bright quadrant, labelled by which."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, size=n).astype("int32")
    x = rng.uniform(0.0, 0.3, size=(n, 8, 8)).astype("float32")
    for i, label in enumerate(y):
        row, col = divmod(int(label), 2)
        x[i, row * 4 : row * 4 + 4, col * 4 : col * 4 + 4] += 0.7
    return x, y


def image_model(conv: bool) -> Any:
    keras.utils.set_random_seed(0)
    layers: list[Any] = [keras.Input((8, 8, 1) if conv else (8, 8))]
    if conv:
        layers += [keras.layers.Conv2D(2, 3, activation="relu"), keras.layers.MaxPooling2D(2)]
    layers += [keras.layers.Flatten(), keras.layers.Dense(4, activation="softmax")]
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    return model


def test_log_images_logs_predictions_on_the_sample_data_each_epoch() -> None:
    x, y = images(48)
    x = x[..., None]  # N x 8 x 8 x 1
    names = ["top-left", "top-right", "bottom-left", "bottom-right"]
    model = image_model(conv=True)
    callback = labkeep.keras.Callback(
        log_images=True, sample_data=(x[:6], y[:6]), num_images=4, class_names=names
    )
    model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[callback])
    assert callback.run is not None
    view = labkeep.get_run(callback.run.uuid)
    assert view.media_keys["samples"] == "image"
    samples = view.media("samples")
    assert samples.kind == "image" and samples.steps == [0, 1, 2]
    last = samples.at(2)
    assert len(last) == 4 and [len(samples.at(s)) for s in (0, 1)] == [4, 4]
    for i, item in enumerate(last):
        np.testing.assert_array_equal(item.to_numpy(), np.rint(x[i, :, :, 0] * 255).astype("uint8"))
    # The last epoch's predictions are the trained model's.
    probs = model.predict(x[:4], verbose=0)
    want = [
        f"pred: {names[int(p.argmax())]} ({float(p.max()):.2f})  label: {names[int(label)]}"
        for p, label in zip(probs, y[:4], strict=True)
    ]
    assert [item.caption for item in last] == want


def test_log_images_draws_from_fits_validation_data_when_it_holds_images() -> None:
    x, y = images(40, seed=1)
    model = image_model(conv=False)
    callback = labkeep.keras.Callback(log_images=True, num_images=3, save_best=False)
    # validation_split takes the last quarter: rows 30-39.
    model.fit(x, y, epochs=2, batch_size=10, validation_split=0.25, verbose=0, callbacks=[callback])
    assert callback.run is not None
    samples = labkeep.get_run(callback.run.uuid).media("samples")
    assert samples.steps == [0, 1]
    for i, item in enumerate(samples.at(1)):
        np.testing.assert_array_equal(item.to_numpy(), np.rint(x[30 + i] * 255).astype("uint8"))
        assert item.caption is not None
        assert item.caption.endswith(f"  label: {int(y[30 + i])}")


def test_log_images_with_tabular_validation_data_warns_once_and_trains(
    caplog: pytest.LogCaptureFixture,
) -> None:
    x, y = data()
    callback = labkeep.keras.Callback(log_images=True, save_best=False)
    with caplog.at_level("WARNING", logger="labkeep"):
        tiny_model().fit(
            x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0, callbacks=[callback]
        )
    warnings = [r.getMessage() for r in caplog.records if "log_images" in r.getMessage()]
    assert len(warnings) == 1
    assert "inputs of shape 16x4 hold 1-D samples, not images" in warnings[0]
    assert "pass sample_data=(x, y)" in warnings[0]
    assert callback.run is not None
    view = labkeep.get_run(callback.run.uuid)
    assert view.media_keys == {} and steps(view, "val_loss") == [0, 1, 2]


def test_log_images_without_validation_data_says_what_to_pass(
    caplog: pytest.LogCaptureFixture,
) -> None:
    x, y = images(16)
    callback = labkeep.keras.Callback(log_images=True, save_best=False)
    with caplog.at_level("WARNING", logger="labkeep"):
        image_model(conv=False).fit(x, y, epochs=2, verbose=0, callbacks=[callback])
    warnings = [r.getMessage() for r in caplog.records if "log_images" in r.getMessage()]
    assert len(warnings) == 1 and "fit had no validation data" in warnings[0]


def test_a_keras_backend_that_is_not_installed_is_one_line(tmp_path: Path) -> None:
    """Keras set to a backend that is not installed (OpenVINO: no extra installs it)."""
    result = run_python(
        "import labkeep\n"
        "try:\n"
        "    labkeep.keras\n"
        "except labkeep.LabkeepError as exc:\n"
        "    print(type(exc).__name__, exc)\n",
        cwd=tmp_path,
        env=child_env(KERAS_BACKEND="openvino"),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        "IntegrationError labkeep.keras: 'import keras' fails with the 'openvino' backend"
    )
    assert "set KERAS_BACKEND" in lines[0]


#: Run first in a child: TensorFlow looks not installed (the dev extra installs it for the
#: tf.summary bridge; a machine without it is what this test is about).
WITHOUT_TENSORFLOW = (
    "import importlib.util\n"
    "_find = importlib.util.find_spec\n"
    "def _hidden(name, *args):\n"
    "    return None if name.partition('.')[0] == 'tensorflow' else _find(name, *args)\n"
    "importlib.util.find_spec = _hidden\n"
)


def test_keras_runs_on_the_backend_that_is_installed_when_none_was_chosen(tmp_path: Path) -> None:
    """Keras' default is TensorFlow; where it is not installed, JAX is taken instead."""
    env = child_env(KERAS_HOME=str(tmp_path / "keras-home"))
    env.pop("KERAS_BACKEND", None)
    result = run_python(
        WITHOUT_TENSORFLOW
        + "import labkeep\nlabkeep.keras.Callback()\nimport keras\nprint(keras.backend.backend())",
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "jax"


def test_keras_keeps_tensorflow_where_it_is_installed(tmp_path: Path) -> None:
    """Nobody chose a backend and TensorFlow is there: Keras' own default stands."""
    pytest.importorskip("tensorflow")
    env = child_env(KERAS_HOME=str(tmp_path / "keras-home"))
    env.pop("KERAS_BACKEND", None)
    result = run_python(
        "import labkeep\nlabkeep.keras.Callback()\nimport keras\nprint(keras.backend.backend())",
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "tensorflow"


def test_import_labkeep_does_not_import_keras(tmp_path: Path) -> None:
    result = run_python(
        "import sys, labkeep\nprint('keras' in sys.modules, 'jax' in sys.modules)",
        cwd=tmp_path,
        env=child_env(),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]
    assert sys.modules["labkeep.keras"] is labkeep.keras
