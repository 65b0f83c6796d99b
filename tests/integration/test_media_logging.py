"""Media through the public API: ``labkeep.Image``/``Histogram``/``Table`` logged with
``run.log`` beside scalars, stored once per content, read back with ``RunView.media`` on
SQLite, PostgreSQL and through a live server, and kept when the script is killed."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from labkeep_server import ServerProcess, isolated, server

import labkeep
from conftest import child_env, start_python, wait_for_line
from labkeep import RunStatus
from labkeep.errors import InvalidInputError, NotFoundError

__all__ = ["isolated", "server"]


def _pixels(step: int) -> np.ndarray:
    rng = np.random.default_rng(step)
    return rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)


def _log_everything(store: str) -> str:
    frame = pd.DataFrame({"id": [1, 2, 3], "pred": [0.1, 0.9, float("nan")], "y": ["a", "b", None]})
    with labkeep.init("media", store=store) as run:
        for step in range(3):
            run.log(
                {
                    "loss": 1.0 / (step + 1),
                    "samples": labkeep.Image(_pixels(step), caption=f"epoch {step}"),
                    "grey": [labkeep.Image(np.full((4, 5), step / 2)), labkeep.Image(_pixels(9))],
                    "weights": labkeep.Histogram(np.arange(100.0) * (step + 1), bins=10),
                    "preds": labkeep.Table(frame),
                },
                step=step,
            )
        run.log({"binned": labkeep.Histogram(np_histogram=([1, 2], [0.0, 0.5, 1.0]))}, step=7)
    return run.uuid


def _check_everything(view: labkeep.RunView) -> None:
    assert view.media_keys == {
        "binned": "histogram",
        "grey": "image",
        "preds": "table",
        "samples": "image",
        "weights": "histogram",
    }
    assert view.metrics["loss"].count == 3
    samples = view.media("samples")
    assert samples.kind == "image" and samples.steps == [0, 1, 2]
    for step in range(3):
        (item,) = samples.at(step)
        assert item.caption == f"epoch {step}"
        assert item.meta == {"width": 32, "height": 32, "channels": 3, "caption": f"epoch {step}"}
        assert np.array_equal(item.to_numpy(), _pixels(step))
        assert np.array_equal(np.asarray(item.to_pil()), _pixels(step))
    grey = view.media("grey")
    assert [(m.step, m.index) for m in grey] == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    assert grey.at(1)[0].to_numpy().tolist() == [[128] * 5] * 4
    # The same picture at three steps is one blob.
    assert len({m.sha256 for m in grey if m.index == 1}) == 1
    weights = view.media("weights").at(2)[0]
    assert weights.counts == [10] * 10
    assert weights.edges[0] == 0.0 and weights.edges[-1] == 297.0
    binned = view.media("binned")[0]
    assert (binned.step, binned.counts, binned.edges) == (7, [1, 2], [0.0, 0.5, 1.0])
    table = view.media("preds")[0]
    assert table.columns == ["id", "pred", "y"]
    assert table.rows[1] == {"id": 2, "pred": 0.9, "y": "b"}
    frame = table.to_pandas()
    assert frame["id"].tolist() == [1, 2, 3] and np.isnan(frame["pred"][2])
    with pytest.raises(InvalidInputError, match="is a table, not image"):
        table.to_numpy()
    with pytest.raises(NotFoundError, match="its media: binned, grey, preds"):
        view.media("nope")


def test_media_round_trip_on_each_sql_backend(store_uri: str) -> None:
    run_uuid = _log_everything(store_uri)
    _check_everything(labkeep.get_run(run_uuid, store=store_uri))


def test_media_round_trip_through_a_server(server: ServerProcess, isolated: None) -> None:
    run_uuid = _log_everything(server.url)
    _check_everything(labkeep.get_run(run_uuid, store=server.url))


def test_identical_images_are_stored_once(tmp_path: Path) -> None:
    store = tmp_path / "s"
    with labkeep.init("once", store=store) as run:
        for step in range(20):
            run.log({"same": labkeep.Image(np.zeros((16, 16, 3), dtype=np.uint8))}, step=step)
    media = labkeep.get_run("last", store=store).media("same")
    assert len(media) == 20 and len({m.sha256 for m in media}) == 1
    blob = labkeep.get_run("last", store=store)._store.blob_path(media[0].sha256)
    assert blob.exists()


def test_a_matplotlib_figure_and_a_plotly_figure(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go

    figure, axes = plt.subplots(figsize=(2, 1.5), dpi=50)
    axes.plot([0, 1, 2], [1, 0, 1])
    chart = go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2], name="trace"))
    store = tmp_path / "s"
    with labkeep.init("figures", store=store) as run:
        run.log({"mpl": labkeep.Image(figure, caption="curve"), "plotly": labkeep.Image(chart)})
    plt.close(figure)
    view = labkeep.get_run("last", store=store)
    assert view.media_keys == {"mpl": "image", "plotly": "plotly"}
    pixels = view.media("mpl")[0].to_numpy()
    assert pixels.shape == (75, 100, 4)
    assert (pixels[..., :3] < 255).any()  # something was drawn
    spec = view.media("plotly")[0].spec
    assert spec["data"][0]["name"] == "trace"
    assert list(view.media("plotly")[0].to_plotly().data[0].y) == [3, 1, 2]


def test_a_pil_image_in_each_mode(tmp_path: Path) -> None:
    from PIL import Image as PILImage

    rgb = PILImage.fromarray(_pixels(1))
    store = tmp_path / "s"
    with labkeep.init("pil", store=store) as run:
        run.log(
            {
                "rgb": labkeep.Image(rgb),
                "palette": labkeep.Image(rgb.convert("P")),
                "bw": labkeep.Image(rgb.convert("1")),
                "la": labkeep.Image(rgb.convert("LA")),
            }
        )
    view = labkeep.get_run("last", store=store)
    assert np.array_equal(view.media("rgb")[0].to_numpy(), _pixels(1))
    assert view.media("palette")[0].meta["channels"] == 3
    assert view.media("bw")[0].to_numpy().shape == (32, 32)
    assert view.media("la")[0].meta["channels"] == 4


def test_a_refused_value_leaves_nothing_half_written(tmp_path: Path) -> None:
    store = tmp_path / "s"
    with labkeep.init("bad", store=store) as run:
        run.log({"loss": 1.0, "samples": labkeep.Image(_pixels(0))}, step=0)
        with pytest.raises(InvalidInputError, match="oops"):
            run.log({"loss": 2.0, "samples": labkeep.Image(_pixels(1)), "oops": "text"}, step=1)
        with pytest.raises(InvalidInputError, match="holds image media in this run"):
            run.log({"samples": 3.0}, step=2)
        with pytest.raises(InvalidInputError, match="holds numbers in this run"):
            run.log({"loss": labkeep.Image(_pixels(2))}, step=2)
        with pytest.raises(InvalidInputError, match="histogram and image in one list"):
            run.log({"mixed": [labkeep.Image(_pixels(2)), labkeep.Histogram([1.0])]}, step=2)
        with pytest.raises(InvalidInputError, match="holds image media"):
            run.log({"samples": labkeep.Histogram([1.0, 2.0])}, step=2)
    view = labkeep.get_run("last", store=store)
    assert view.media("samples").steps == [0]
    assert view.metrics["loss"].count == 1
    assert view.media_keys == {"samples": "image"}


def test_media_logged_before_a_sigkill_are_in_the_store(tmp_path: Path) -> None:
    code = """
import time, numpy as np, labkeep
run = labkeep.init("killed")
print(run.uuid, flush=True)
for step in range(5):
    run.log({"samples": labkeep.Image(np.full((8, 8, 3), step * 10, dtype=np.uint8)),
             "t": labkeep.Table(columns=["step"], data=[[step]])}, step=step)
print("logged", flush=True)
time.sleep(600)
"""
    env = child_env(LABKEEP_HOME=str(tmp_path / "s"), LABKEEP_CAPTURE="0")
    proc = start_python(code, cwd=tmp_path, env=env)
    try:
        assert proc.stdout is not None
        run_uuid = proc.stdout.readline().strip()
        wait_for_line(proc, "logged")
        proc.kill()
        proc.wait(timeout=30)
    finally:
        proc.kill()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()
    assert len(labkeep.runs(store=tmp_path / "s")) == 1  # opening the store recovers it
    view = labkeep.get_run(run_uuid, store=tmp_path / "s")
    assert view.status is RunStatus.KILLED
    samples = view.media("samples")
    assert samples.steps == [0, 1, 2, 3, 4]
    assert samples.at(4)[0].to_numpy()[0, 0].tolist() == [40, 40, 40]
    assert [m.rows for m in view.media("t")][-1] == [{"step": 4}]


def test_a_table_too_large_for_one_value_is_one_line(tmp_path: Path) -> None:
    from labkeep._media import MAX_TABLE_BYTES

    row = "x" * 1000
    rows = [[row]] * (MAX_TABLE_BYTES // 1000 + 10)
    with pytest.raises(InvalidInputError) as caught:
        labkeep.Table(columns=["text"], data=rows)
    message = str(caught.value)
    assert "\n" not in message and "more than the 16 MiB one logged table may hold" in message


def test_a_bad_image_in_a_script_is_one_line_and_a_failed_run(tmp_path: Path) -> None:
    code = """
import numpy as np, labkeep
with labkeep.init("bad-image") as run:
    run.log({"samples": labkeep.Image(np.zeros((2, 3, 4, 5)))})
"""
    env = child_env(LABKEEP_HOME=str(tmp_path / "s"), LABKEEP_CAPTURE="0")
    proc = start_python(code, cwd=tmp_path, env=env)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "InvalidInputError: an image of shape 2x3x4x5 is not one image" in err
    view = labkeep.get_run("last", store=tmp_path / "s")
    assert view.status is RunStatus.FAILED and view.media_keys == {}


def test_a_png_that_pillow_reads_as_the_same_pixels() -> None:
    from PIL import Image as PILImage

    from labkeep._media import encode_png

    rng = np.random.default_rng(3)
    smooth = np.tile(np.arange(64, dtype=np.uint8)[None, :, None], (48, 1, 4))
    for pixels in (rng.integers(0, 256, (7, 9, 1), dtype=np.uint8), smooth):
        decoded = np.asarray(PILImage.open(io.BytesIO(encode_png(pixels))))
        assert np.array_equal(decoded.reshape(pixels.shape), pixels)


def test_db_recover_keeps_media_and_purge_keeps_their_blobs(tmp_path: Path) -> None:
    from labkeep_server import cli

    store = tmp_path / "s"
    with labkeep.init("recover", store=store) as run:
        run.log({"samples": labkeep.Image(_pixels(5))}, step=0)
    with labkeep.init("recover", store=store) as other:
        other.log({"loss": 1.0})
    recovered = cli("--store", str(store), "db", "recover")
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    doomed = labkeep.get_run(other.uuid, store=store)
    assert cli("--store", str(store), "delete", str(doomed.number)).returncode == 0
    purged = cli("--store", str(store), "purge", "--all", "--yes")
    assert purged.returncode == 0, purged.stdout + purged.stderr
    (item,) = labkeep.get_run(run.uuid, store=store).media("samples")
    assert np.array_equal(item.to_numpy(), _pixels(5))
    checked = cli("--store", str(store), "db", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_show_lists_the_media_keys_with_kind_and_steps(tmp_path: Path) -> None:
    import json

    from labkeep_server import cli

    store = tmp_path / "s"
    with labkeep.init("shown", store=store) as run:
        for step in range(3):
            run.log({"samples": [labkeep.Image(_pixels(step)), labkeep.Image(_pixels(9))]}, step)
        run.log({"preds": labkeep.Table(columns=["x"], data=[[1]])}, step=4)
    number = str(labkeep.get_run(run.uuid, store=store).number)
    shown = cli("--store", str(store), "show", number, env=child_env(COLUMNS="120"))
    assert shown.returncode == 0, shown.stdout + shown.stderr
    lines = [line.split() for line in shown.stdout.splitlines()]
    media = lines.index(["media"])
    assert lines[media + 1 : media + 4] == [
        ["key", "kind", "steps", "last", "step"],
        ["preds", "table", "1", "step", "4"],
        ["samples", "image", "3", "steps", "(6", "items)", "2"],
    ]
    as_json = cli("--store", str(store), "show", number, "--json")
    assert as_json.returncode == 0, as_json.stdout + as_json.stderr
    assert json.loads(as_json.stdout)["media"] == {
        "preds": {"kind": "table", "steps": 1, "items": 1, "last_step": 4},
        "samples": {"kind": "image", "steps": 3, "items": 6, "last_step": 2},
    }
    # A run without media has no media section, and an empty entry in JSON.
    with labkeep.init("shown", store=store) as plain:
        plain.log({"loss": 1.0})
    plain_number = str(labkeep.get_run(plain.uuid, store=store).number)
    bare = cli("--store", str(store), "show", plain_number, env=child_env(COLUMNS="120"))
    assert bare.returncode == 0 and "media" not in bare.stdout.split()
    bare_json = cli("--store", str(store), "show", plain_number, "--json")
    assert json.loads(bare_json.stdout)["media"] == {}
