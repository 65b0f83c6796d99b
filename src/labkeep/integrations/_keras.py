"""``labkeep.keras``: a Keras 3 callback that tracks ``model.fit`` in a labkeep run.

>>> model.fit(x, y, epochs=5, validation_split=0.2,
...           callbacks=[labkeep.keras.Callback(save_best=True)])  # doctest: +SKIP

What it records, on any Keras 3 backend (JAX, PyTorch, TensorFlow):

- epoch metrics (``loss``, ``val_loss``, ``accuracy``…, and the optimizer's
  ``learning_rate``) at step = epoch, and batch metrics as ``batch/loss``… at step = the
  global batch number (counted over every ``fit`` this callback saw);
- params: the optimizer's class and config (``optimizer.class``, ``optimizer.learning_rate``…) and
  ``fit``'s own (``fit.epochs``, ``fit.steps``); the model's parameter counts;
- the model summary (``model.summary()``'s text) as the artifact ``model_summary.txt``;
- with ``log_images``, predictions on a few image samples (``sample_data``, else the first
  ``num_images`` of ``fit``'s validation data when its inputs are images) as a list of
  :class:`labkeep.Image` under ``samples`` at step = epoch, each captioned with the
  prediction and the label (``pred: 3 (0.91)  label: 3``), as W&B's Keras callback does;
- with ``save_best``, the model at its best epoch (by ``monitor``) as a model, through
  ``run.log_model`` (Keras' ``.keras`` format), at the end of training. The best weights are
  kept in memory as training goes (``model.get_weights()`` when the monitored value
  improves), so an epoch pays no file write for it.

The run is the one given, the active one, or one the callback starts and finishes at the end
of training (see ``_training_run``). Keras is imported when this module is: the package
``labkeep`` names it lazily.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkeep.errors import IntegrationError, InvalidInputError
from labkeep.integrations._training_run import (
    TrainingRun,
    log_params,
    numeric,
    require,
)

if TYPE_CHECKING:
    from labkeep._run import Run

#: Keras 2 (``tf.keras``) has another callback API; labkeep supports Keras 3.
MINIMUM = "3.0"
_log = logging.getLogger("labkeep")

require("labkeep.keras", ("keras",), MINIMUM)


def _configured_backend() -> str:
    """The backend Keras would load: KERAS_BACKEND, else its keras.json, else TensorFlow."""
    import json

    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as fh:
            return str(json.load(fh).get("backend") or "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def _choose_backend() -> None:
    """Keras defaults to TensorFlow (and writes that into its keras.json on first import)
    even where only JAX or PyTorch is installed, and then cannot be imported: when nobody
    chose TensorFlow, Keras is given the backend that is there. A backend someone set with
    KERAS_BACKEND is left alone."""
    import importlib.util

    if "keras" in sys.modules or os.environ.get("KERAS_BACKEND"):
        return
    if _configured_backend() != "tensorflow" or importlib.util.find_spec("tensorflow"):
        return
    for backend in ("jax", "torch"):
        if importlib.util.find_spec(backend) is not None:
            os.environ["KERAS_BACKEND"] = backend
            _log.info("labkeep.keras: TensorFlow is not installed; Keras runs on %s", backend)
            return


_choose_backend()
try:
    import keras
except ImportError as exc:  # most often: the backend Keras is set to is not installed
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    raise IntegrationError(
        f"labkeep.keras: 'import keras' fails with the {backend!r} backend "
        f"({type(exc).__name__}: {exc}): install it, or set KERAS_BACKEND to one that is "
        "(jax, torch, tensorflow)"
    ) from exc

#: ``save_best``'s modes: which way is better for the monitored value.
MODES = ("auto", "min", "max")
SUMMARY_ARTIFACT = "model_summary.txt"
#: The media key of ``log_images``' sample predictions.
IMAGES_KEY = "samples"


class Callback(keras.callbacks.Callback):  # type: ignore[misc]
    """Track ``model.fit`` in a labkeep run (see the module's docstring).

    ``log_batches``: log batch metrics every this many batches (0: none). ``save_best``:
    store the model of the best epoch, by ``monitor`` (``mode`` says whether lower or higher
    is better; ``auto`` guesses from the name) as the model ``model_name``.
    ``log_images``: at each epoch's end, predict on ``num_images`` image samples and log them
    as images under ``samples``, captioned with prediction and label (``class_names`` names
    the classes); the samples are ``sample_data`` (``(x, y)`` or ``x``: ``N x H x W`` or
    ``N x H x W x C`` arrays), else the first of ``fit``'s validation data.
    ``log_summary``: the model summary as an artifact. ``run``: log into this run instead
    of the active one; ``experiment`` and ``name`` are for a run the callback starts.

    >>> cb = labkeep.keras.Callback(save_best=True, monitor="val_loss")  # doctest: +SKIP
    >>> model.fit(x, y, validation_split=0.2, callbacks=[cb])           # doctest: +SKIP
    """

    #: Keras may call the batch hooks on worker threads, so that a training step need not
    #: wait for the previous one's metrics to reach Python (with none of its callbacks
    #: waiting, JAX runs ahead); this callback's batch hook is safe there.
    async_safe = True

    def __init__(
        self,
        *,
        log_batches: int = 1,
        log_images: bool = False,
        sample_data: Any = None,
        num_images: int = 8,
        class_names: Sequence[str] | None = None,
        save_best: bool = True,
        monitor: str = "val_loss",
        mode: str = "auto",
        model_name: str = "model",
        log_summary: bool = True,
        run: Run | None = None,
        experiment: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise InvalidInputError(
                f"labkeep.keras.Callback(mode={mode!r}): use one of {', '.join(MODES)}"
            )
        if type(log_batches) is not int or log_batches < 0:
            raise InvalidInputError(
                f"labkeep.keras.Callback(log_batches={log_batches!r}): give a number of "
                "batches (1: every batch, 0: none)"
            )
        if type(num_images) is not int or num_images < 1:
            raise InvalidInputError(
                f"labkeep.keras.Callback(num_images={num_images!r}): give how many samples to "
                "log as images each epoch (1 or more)"
            )
        if sample_data is not None and not log_images:
            raise InvalidInputError(
                "labkeep.keras.Callback(sample_data=...): sample_data is drawn as images only "
                "with log_images=True: add it, or leave sample_data out"
            )
        self.log_images = log_images
        self.num_images = num_images
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        #: The samples ``log_images`` predicts on: model inputs, their pixels, their labels.
        self._samples: _Samples | None = None
        if log_images and sample_data is not None:
            self._samples = _samples(
                sample_data, num_images, "labkeep.keras.Callback(sample_data=...)"
            )
        self._warned_images = False
        self.log_batches = log_batches
        self.save_best = save_best
        self.monitor = monitor
        self.mode = mode
        self.model_name = model_name
        self.log_summary = log_summary
        self._runs = TrainingRun(run, experiment=experiment, name=name)
        self._batch_step = 0
        self._epoch_first_batch = 0
        self._batch_lock = threading.Lock()
        self._epoch_step = 0
        self._summary_logged = False
        self._best_value: float | None = None
        self._best_epoch: int | None = None
        self._best_weights: list[Any] | None = None
        self._warned_monitor = False

    @property
    def run(self) -> Run | None:
        """The run the callback logs into (None before training starts)."""
        return self._runs.current()

    # -- fit's life --------------------------------------------------------------------
    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        run = self._runs.get()
        self._best_value = None
        self._best_epoch = None
        self._best_weights = None
        fit = {k: v for k, v in (self.params or {}).items() if k in ("epochs", "steps", "verbose")}
        if fit:
            log_params(run, fit, "labkeep.keras", prefix="fit.")
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            try:
                config = optimizer.get_config()
            except (NotImplementedError, TypeError, ValueError) as exc:
                _log.warning("labkeep.keras: optimizer config not recorded: %s", exc)
            else:
                # The name is the instance's ("adam_1" for a second Adam): the class says which.
                config = {"class": type(optimizer).__name__, **config}
                log_params(run, config, "labkeep.keras", prefix="optimizer.")
        self._record_model(run)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        # Keras has finished every batch callback of the epoch before (it flushes them at
        # the epoch's end): the count of batches so far is settled.
        self._epoch_first_batch = self._batch_step

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        # Called on Keras' worker threads (async_safe), perhaps out of order: the step comes
        # from the batch's index in its epoch, not from the order of the calls.
        step = self._epoch_first_batch + batch
        with self._batch_lock:
            self._batch_step = max(self._batch_step, step + 1)
        if not self.log_batches or step % self.log_batches or not logs:
            return
        values = {}
        for key, value in logs.items():
            number = numeric(value)
            if number is not None:
                values[f"batch/{key}"] = number
        if values:
            self._runs.get().log(values, step=step)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        run = self._runs.get()
        if not self._summary_logged:  # a model built by its first batch
            self._record_model(run)
        values = {}
        for key, value in (logs or {}).items():
            number = numeric(value)
            if number is not None:
                values[key] = number
        rate = self._learning_rate()
        if rate is not None and "learning_rate" not in values:
            values["learning_rate"] = rate
        # Keras restarts epochs at 0 on each fit (unless initial_epoch says otherwise):
        # the step is the epoch across every fit this callback saw.
        step = max(epoch, self._epoch_step)
        self._epoch_step = step + 1
        if values:
            run.log(values, step=step)
        if self.log_images:
            self._log_images(run, step)
        if self.save_best:
            self._keep_if_best(step, values)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        run = self._runs.get()
        if self.log_images and self._samples is None and not self._warned_images:
            self._warned_images = True
            _log.warning(
                "labkeep.keras: log_images found no samples to draw: fit had no validation "
                "data (validation_data= or validation_split=) held in arrays; pass "
                "sample_data=(x, y) to the Callback"
            )
        if self.save_best and self._best_weights is not None:
            self._log_best(run)
        self._runs.end()

    # -- parts -------------------------------------------------------------------------
    def _record_model(self, run: Run) -> None:
        """Parameter counts as params and the summary as an artifact, once the model is
        built (a Sequential model without an input shape is built by its first batch)."""
        model = self.model
        if model is None or not getattr(model, "built", False) or self._summary_logged:
            return
        self._summary_logged = True
        try:
            trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
            frozen = sum(math.prod(w.shape) for w in model.non_trainable_weights)
            log_params(
                run,
                {"class": type(model).__name__, "trainable_params": int(trainable),
                 "non_trainable_params": int(frozen)},
                "labkeep.keras",
                prefix="model.",
            )  # fmt: skip
        except (AttributeError, TypeError, ValueError) as exc:
            _log.warning("labkeep.keras: parameter counts not recorded: %s", exc)
        if not self.log_summary:
            return
        lines: list[str] = []
        try:
            model.summary(print_fn=lambda text, *args, **kwargs: lines.append(str(text)))
        except ValueError as exc:  # a model Keras cannot summarise
            _log.warning("labkeep.keras: model summary not recorded: %s", exc)
            return
        with tempfile.TemporaryDirectory(prefix="labkeep-keras-") as tmp:
            path = Path(tmp) / SUMMARY_ARTIFACT
            path.write_text("\n".join(lines).rstrip() + "\n")
            run.log_artifact(path, SUMMARY_ARTIFACT)

    def _log_images(self, run: Run, step: int) -> None:
        """Predict on the samples and log them, captioned, under ``samples`` at ``step``."""
        import numpy as np

        from labkeep._media import Image

        if self._samples is None:
            if self._warned_images:
                return
            self._samples = self._validation_samples()
            if self._samples is None:
                return  # no evaluation yet this fit (validation_freq), or none at all
        samples = self._samples
        try:
            predicted = self.model.predict(samples.inputs, verbose=0)
        except (ValueError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InvalidInputError(
                f"labkeep.keras.Callback(log_images=True): the model cannot predict on the "
                f"samples of shape {_shape(np.shape(samples.inputs))}: {first}"
            ) from None
        if isinstance(predicted, dict):
            predicted = next(iter(predicted.values()))
        elif isinstance(predicted, list | tuple):
            predicted = predicted[0]
        predicted = np.asarray(keras.ops.convert_to_numpy(predicted))
        images = []
        for i, pixels in enumerate(samples.pixels):
            caption = f"pred: {_describe(predicted[i], self.class_names, predicted=True)}"
            if samples.labels is not None:
                caption += f"  label: {_describe(samples.labels[i], self.class_names)}"
            images.append(Image(pixels, caption=caption))
        run.log({IMAGES_KEY: images}, step=step)

    def _validation_samples(self) -> _Samples | None:
        """The first samples of the validation data ``fit`` evaluates on (Keras keeps its
        iterator on the model while it fits), when it is held in arrays; None before the
        first evaluation. Inputs that are not images: one warning, and no images."""
        iterator = getattr(self.model, "_eval_epoch_iterator", None)
        adapter = getattr(iterator, "data_adapter", None)
        if adapter is None:
            return None
        if type(adapter).__name__ != "ArrayDataAdapter":
            self._warn_images(
                f"fit's validation data is a {type(adapter).__name__.removesuffix('Adapter')}, "
                "not arrays"
            )
            return None
        xs: list[Any] = []
        ys: list[Any] = []
        count = 0
        for batch in adapter.get_numpy_iterator():
            parts = batch if isinstance(batch, tuple) else (batch,)
            xs.append(parts[0])
            if len(parts) > 1 and parts[1] is not None:
                ys.append(parts[1])
            count += len(parts[0]) if hasattr(parts[0], "__len__") else 1
            if count >= self.num_images:
                break
        try:
            x = _concatenate(xs, "fit's validation inputs")
            y = _concatenate(ys, "fit's validation labels") if len(ys) == len(xs) else None
            return _samples(x if y is None else (x, y), self.num_images, "fit's validation data")
        except InvalidInputError as exc:
            self._warn_images(str(exc))
            return None

    def _warn_images(self, why: str) -> None:
        self._warned_images = True
        _log.warning(
            "labkeep.keras: log_images logs no samples: %s; pass sample_data=(x, y) of images "
            "to the Callback",
            why,
        )

    def _learning_rate(self) -> float | None:
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            return None
        try:
            return numeric(keras.ops.convert_to_numpy(optimizer.learning_rate))
        except (AttributeError, TypeError, ValueError):
            return None

    def _better(self, value: float) -> bool:
        if self._best_value is None:
            return not math.isnan(value)
        mode = self.mode
        if mode == "auto":
            name = self.monitor.removeprefix("val_")
            higher = ("acc", "accuracy", "auc", "precision", "recall", "f1", "score")
            mode = "max" if name in higher or name.endswith(higher) else "min"
        return value > self._best_value if mode == "max" else value < self._best_value

    def _keep_if_best(self, epoch: int, values: dict[str, float]) -> None:
        value = values.get(self.monitor)
        if value is None:
            if not self._warned_monitor:
                self._warned_monitor = True
                known = ", ".join(sorted(values)) or "none"
                _log.warning(
                    "labkeep.keras: save_best monitors %r, which fit does not report "
                    "(it reports: %s); the last epoch's model is stored instead",
                    self.monitor,
                    known,
                )
            self._best_epoch = epoch
            self._best_weights = self.model.get_weights()
            return
        if self._better(value):
            self._best_value, self._best_epoch = value, epoch
            self._best_weights = self.model.get_weights()

    def _log_best(self, run: Run) -> None:
        """Store the model with the best epoch's weights, then give it back its own."""
        model = self.model
        current = model.get_weights()
        model.set_weights(self._best_weights)
        try:
            run.log_model(model, self.model_name)
        finally:
            model.set_weights(current)
        best: dict[str, Any] = {"best.epoch": self._best_epoch}
        if self._best_value is not None:
            best[f"best.{self.monitor}"] = self._best_value
        run.summary.update(best)


class _Samples:
    """What ``log_images`` predicts on: the model's ``inputs``, their ``pixels`` (uint8
    ``N x H x W x C``) and their ``labels`` (None when there are none)."""

    __slots__ = ("inputs", "labels", "pixels")

    def __init__(self, inputs: Any, pixels: Any, labels: Any) -> None:
        self.inputs = inputs
        self.pixels = pixels
        self.labels = labels


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(n) for n in shape) or "()"


def _concatenate(parts: list[Any], what: str) -> Any:
    import numpy as np

    try:
        return np.concatenate([np.asarray(p) for p in parts])
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"{what} are not one array ({exc})") from None


def _samples(data: Any, count: int, what: str) -> _Samples:
    """The first ``count`` samples of ``data`` (``(x, y)`` or ``x``) with their pixels, or an
    InvalidInputError that says what images look like."""
    import numpy as np

    x, y = data if isinstance(data, tuple) and len(data) == 2 else (data, None)
    try:
        inputs = np.asarray(keras.ops.convert_to_numpy(x) if not isinstance(x, list) else x)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"{what}: its inputs are not an array ({exc})") from None
    shape = inputs.shape
    looks = "log_images needs one image a sample: N x H x W, or N x H x W x C with C = 1, 3 or 4"
    if inputs.dtype.kind not in "biuf":
        raise InvalidInputError(f"{what}: inputs of dtype {inputs.dtype} are not pixels; {looks}")
    if inputs.ndim not in (3, 4):
        per = "scalars" if inputs.ndim <= 1 else f"{inputs.ndim - 1}-D"
        raise InvalidInputError(
            f"{what}: inputs of shape {_shape(shape)} hold {per} samples, not images; {looks}"
        )
    if len(inputs) == 0 or 0 in shape:
        raise InvalidInputError(f"{what}: inputs of shape {_shape(shape)} hold no pixels")
    inputs = inputs[:count]
    pixels = inputs if inputs.ndim == 4 else inputs[..., None]
    if pixels.shape[-1] not in (1, 3, 4):
        if pixels.shape[1] not in (1, 3, 4):
            raise InvalidInputError(
                f"{what}: inputs of shape {_shape(shape)} have {shape[-1]} channels; {looks}"
            )
        pixels = pixels.transpose(0, 2, 3, 1)  # channels first
    labels = None
    if y is not None:
        try:
            labels = np.asarray(keras.ops.convert_to_numpy(y))
        except (ValueError, TypeError) as exc:
            raise InvalidInputError(f"{what}: its labels are not an array ({exc})") from None
        if labels.ndim == 0 or len(labels) < len(inputs):
            raise InvalidInputError(
                f"{what}: {labels.size} labels for {len(inputs)} samples: give one a sample"
            )
        labels = labels[: len(inputs)]
    return _Samples(inputs, np.stack([_uint8(p) for p in pixels]), labels)


def _uint8(image: Any) -> Any:
    """An image's pixels as uint8: floats in [0, 1] and integers 0-255 as they are, anything
    else (standardised inputs, say) stretched from its own minimum to its maximum."""
    import numpy as np

    if image.dtype == np.uint8:
        return image
    values = np.nan_to_num(image.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min()), float(values.max())
    if image.dtype.kind == "b":
        return values.astype(np.uint8) * 255
    if image.dtype.kind in "iu" and low >= 0 and high <= 255:
        return values.astype(np.uint8)
    if image.dtype.kind == "f" and low >= 0.0 and high <= 1.0:
        return np.rint(values * 255.0).astype(np.uint8)
    span = high - low
    scaled = (values - low) / span if span > 0 else np.zeros_like(values)
    return np.rint(scaled * 255.0).astype(np.uint8)


def _describe(value: Any, class_names: list[str] | None, predicted: bool = False) -> str:
    """A prediction or label in a caption: a class (by name when ``class_names`` has it, with
    its probability for a prediction that is one), a number, or a shape."""
    import numpy as np

    array = np.asarray(value)
    if array.size == 1:
        number = array.reshape(()).item()
        if isinstance(number, bool | int) or array.dtype.kind in "biu":
            index = int(number)
            if class_names is not None and 0 <= index < len(class_names):
                return class_names[index]
            return str(index)
        return f"{float(number):.3g}"
    if array.ndim == 1 and array.dtype.kind in "biuf":
        index = int(np.argmax(array))
        name = (
            class_names[index]
            if class_names is not None and 0 <= index < len(class_names)
            else str(index)
        )
        total = float(array.sum())
        if predicted and float(array.min()) >= 0.0 and abs(total - 1.0) < 1e-3:
            return f"{name} ({float(array[index]):.2f})"
        return name
    return f"shape {_shape(array.shape)}"


__all__ = ["Callback"]
