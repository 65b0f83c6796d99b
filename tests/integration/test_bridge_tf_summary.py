"""``tf.summary.scalar`` under ``labkeep run``: TensorFlow's quickstart loop with a file
writer, recorded into the run and compared with the event file TensorFlow wrote.

TensorFlow is in its own extra (``tensorflow``; tensorflow-cpu 2.21 is a 274 MB wheel, 1.5 GB
installed), which ``dev`` includes. TensorFlow runs only in the scripts' processes: importing
it here would import Keras on its TensorFlow backend in the test process, before
``test_keras.py`` chooses JAX.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from bridge_helpers import labkeep_run, last_run, series, write

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None,
    reason="TensorFlow is not installed: pip install 'labkeep[tensorflow]'",
)

TF_SCRIPT = """
    import tensorflow as tf

    writer = tf.summary.create_file_writer("logs/train")
    with writer.as_default():
        for step in range(3):
            tf.summary.scalar("loss", 1.0 / (step + 1), step=step)
        tf.summary.experimental.set_step(7)
        tf.summary.scalar("accuracy", tf.constant(0.75))
    writer.flush()

    @tf.function
    def traced(x):
        tf.summary.scalar("inside", x, step=0)
        return x

    with writer.as_default():
        traced(tf.constant(1.0))
"""


@pytest.mark.parametrize("mode", ["--bridge-only", None])
def test_tf_summary_scalars_become_metrics(tmp_path: Path, mode: str | None) -> None:
    if mode is None:
        pytest.importorskip("tensorboard")  # TensorFlow's own scalar() needs it to write
    write(tmp_path / "train_tf.py", TF_SCRIPT)
    labkeep_run(tmp_path, tmp_path / "store", *([mode] if mode else []), "train_tf.py")
    run = last_run(tmp_path / "store")
    assert run.status.value == "completed"
    assert series(run, "loss") == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]
    assert series(run, "accuracy") == [(7, 0.75)]
    assert "inside" not in run.metrics  # traced: no value to record
    logs = tmp_path / "logs" / "train"
    if mode == "--bridge-only":
        assert not logs.exists() or not any(logs.iterdir())
        return
    # What TensorFlow wrote itself, against labkeep's record.
    from tensorboard.backend.event_processing.event_accumulator import (
        TENSORS,
        EventAccumulator,
    )
    from tensorboard.util.tensor_util import make_ndarray

    events = EventAccumulator(str(logs), size_guidance={TENSORS: 0})
    events.Reload()
    theirs = [(e.step, float(make_ndarray(e.tensor_proto))) for e in events.Tensors("loss")]
    assert theirs == [(s, pytest.approx(v)) for s, v in series(run, "loss")]
