"""``labkeep.Image``, ``Histogram`` and ``Table``: what each accepts, how it is encoded, and
the one line each bad input gets."""

from __future__ import annotations

import datetime as dt
import json
import re

import numpy as np
import pytest

import labkeep
from labkeep._media import MAX_IMAGE_SIDE, decode_png, encode_png, finite_json, is_media
from labkeep.errors import DamagedStoreError, InvalidInputError


@pytest.mark.parametrize(
    ("array", "channels"),
    [
        (np.zeros((4, 6), dtype=np.uint8), 1),
        (np.zeros((4, 6, 1), dtype=np.uint8), 1),
        (np.ones((4, 6, 3)), 3),
        (np.zeros((4, 6, 4), dtype=np.float32), 4),
        (np.ones((4, 6), dtype=bool), 1),
        (np.full((4, 6, 3), 200, dtype=np.int64), 3),
    ],
)
def test_image_layouts(array: np.ndarray, channels: int) -> None:
    image = labkeep.Image(array)
    assert image.kind == "image"
    assert image.meta == {"width": 6, "height": 4, "channels": channels}
    pixels = decode_png(image.data)
    assert pixels.shape == ((4, 6) if channels == 1 else (4, 6, channels))


def test_float_images_scale_to_bytes_and_later_changes_do_not_reach_the_image() -> None:
    array = np.array([[0.0, 0.5, 1.0]])
    image = labkeep.Image(array, caption="c")
    array[:] = 0.0
    assert decode_png(image.data).tolist() == [[0, 128, 255]]
    assert image.meta["caption"] == "c"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.zeros((3, 32, 32)), "looks channels-first, pass array.transpose(1, 2, 0)"),
        (np.zeros((2, 3, 4, 5)), "shape 2x3x4x5 is not one image"),
        (np.zeros(5), "shape 5 is not one image"),
        (np.zeros((0, 4)), "has no pixels"),
        (np.zeros((4, 4, 2)), "has 2 channels"),
        (np.full((2, 2), 1.5), "values in [0, 1], not [1.5, 1.5]"),
        (np.full((2, 2), np.nan), "NaN or infinity"),
        (np.full((2, 2), 300), "values 0-255, not 300-300"),
        (np.array([["a"]]), "dtype <U1 is not pixels"),
        ("picture.png", "takes a numpy array, a PIL image or a matplotlib or plotly figure"),
        (object(), "not a object"),
        (np.zeros((1, MAX_IMAGE_SIDE + 1), dtype=np.uint8), "larger than 16,384 pixels"),
    ],
)
def test_impossible_images_are_one_line(value: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(message)) as caught:
        labkeep.Image(value)
    assert "\n" not in str(caught.value)


def test_a_caption_is_text() -> None:
    with pytest.raises(InvalidInputError, match="caption must be a string"):
        labkeep.Image(np.zeros((2, 2)), caption=3)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="keep it under 1,001"):
        labkeep.Image(np.zeros((2, 2)), caption="x" * 1001)


def test_png_bytes_depend_only_on_the_pixels() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    assert encode_png(pixels) == encode_png(pixels.copy())
    assert np.array_equal(decode_png(encode_png(pixels)), pixels)
    with pytest.raises(DamagedStoreError):
        decode_png(b"not a png")


def test_histogram_of_values_leaves_out_non_finite_ones() -> None:
    hist = labkeep.Histogram([0.0, 1.0, 2.0, 3.0, np.nan, np.inf], bins=3)
    body = json.loads(hist.data)
    assert body == {"counts": [1, 1, 2], "edges": [0.0, 1.0, 2.0, 3.0]}
    assert hist.meta == {"bins": 3, "count": 4, "min": 0.0, "max": 3.0, "nonfinite": 2}


def test_histogram_from_numpy_histogram() -> None:
    counts, edges = np.histogram(np.arange(10), bins=5)
    hist = labkeep.Histogram(np_histogram=(counts, edges))
    assert json.loads(hist.data)["counts"] == [2, 2, 2, 2, 2]
    weighted = labkeep.Histogram(np_histogram=([0.5, 1.5], [0, 1, 2]))
    assert json.loads(weighted.data)["counts"] == [0.5, 1.5]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "needs values"),
        ({"values": [np.nan]}, "no finite values"),
        ({"values": ["a", "b"]}, "takes numbers"),
        ({"values": [1.0], "bins": 0}, "bins must be an integer from 1 to 4096"),
        ({"values": [1.0], "bins": 2.5}, "bins must be an integer"),
        ({"np_histogram": ([1, 2], [0, 1])}, "2 counts and 2 edges"),
        ({"np_histogram": ([1, 2], [0, 2, 1])}, "strictly increasing edges"),
        ({"np_histogram": ([-1], [0, 1])}, "counts of 0 or more"),
        ({"np_histogram": 5}, r"must be \(counts, edges\)"),
        ({"values": [1.0], "np_histogram": ([1], [0, 1])}, "not both"),
    ],
)
def test_bad_histograms_are_one_line(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        labkeep.Histogram(**kwargs)  # type: ignore[arg-type]


def test_table_from_each_form() -> None:
    import pandas as pd

    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}, index=[10, 20])
    from_frame = json.loads(labkeep.Table(frame).data)
    assert from_frame == {"columns": ["a", "b"], "data": [[1, "x"], [2, "y"]]}
    dicts = labkeep.Table([{"a": 1}, {"b": dt.date(2026, 1, 2), "a": np.float32(0.5)}])
    assert json.loads(dicts.data) == {
        "columns": ["a", "b"],
        "data": [[1, None], [0.5, "2026-01-02"]],
    }
    rows = labkeep.Table(columns=["x", "y"], data=[(1, True), (2, None)])
    assert rows.meta == {"rows": 2, "columns": 2}
    assert labkeep.Table(columns=["x"]).meta == {"rows": 0, "columns": 1}


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((5,), {}, "takes a pandas DataFrame, a list of dicts, or rows with columns"),
        (([[1, 2]],), {}, "needs columns"),
        (([[1, 2]],), {"columns": ["a"]}, "row 0 of the table has 2 cells for 1 columns"),
        (([[{"x": 1}]],), {"columns": ["a"]}, "column 'a' holds a dict"),
        (([[1]],), {"columns": ["a", "a"]}, "names a column twice"),
        (([5],), {"columns": ["a"]}, "row 0 of the table is a int"),
    ],
)
def test_bad_tables_are_one_line(
    args: tuple[object, ...], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        labkeep.Table(*args, **kwargs)  # type: ignore[arg-type]


def test_what_counts_as_media() -> None:
    image = labkeep.Image(np.zeros((2, 2)))
    assert is_media(image) and is_media([image, image])
    assert not is_media([]) and not is_media([image, 1.0]) and not is_media(1.0)


def test_finite_json_is_what_a_browser_parses() -> None:
    value = {"a": [1.0, float("nan"), float("inf"), -float("inf")], "b": "x"}
    assert finite_json(value) == {"a": [1.0, None, "Infinity", "-Infinity"], "b": "x"}
