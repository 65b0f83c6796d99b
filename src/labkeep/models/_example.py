"""A model's input example, kept as JSON, and the signature read from it.

``input_example.json`` holds ``{"type": "ndarray", "dtype", "shape", "data"}`` or
``{"type": "dataframe", "columns", "dtypes", "data"}`` (rows); JSON, so that reading an
example back never unpickles anything. The signature is the example's columns or dtype and
shape, and the shape and dtype of what ``model.predict`` answers for it (the first axis, the
batch, is ``-1``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from labkeep.errors import InvalidInputError

logger = logging.getLogger(__name__)


def _is_frame(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "dtypes")


def _as_array(value: Any) -> Any:
    import numpy as np

    try:
        array = np.asarray(value)
    except Exception as exc:
        raise InvalidInputError(
            f"input_example {type(value).__name__} is not an array: give a numpy array, a list "
            f"of rows or a pandas DataFrame ({exc})"
        ) from None
    if array.dtype.kind in "OV" and array.ndim == 0:
        raise InvalidInputError(
            f"input_example {type(value).__name__} is not an array: give a numpy array, a list "
            "of rows or a pandas DataFrame"
        )
    return array


def encode_example(example: Any) -> bytes:
    """The example as ``input_example.json`` bytes."""
    if _is_frame(example):
        data: dict[str, Any] = {
            "type": "dataframe",
            "columns": [str(c) for c in example.columns],
            "dtypes": [str(t) for t in example.dtypes],
            "data": json.loads(example.to_json(orient="values", date_format="iso")),
        }
    else:
        array = _as_array(example)
        data = {
            "type": "ndarray",
            "dtype": str(array.dtype),
            "shape": list(array.shape),
            "data": array.tolist(),
        }
    try:
        return json.dumps(data, allow_nan=True).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"input_example cannot be kept as JSON ({exc}): give numbers or strings"
        ) from None


def decode_example(raw: bytes) -> Any:
    """The example back: a numpy array, or a pandas DataFrame."""
    data = json.loads(raw)
    if data.get("type") == "dataframe":
        import pandas as pd

        frame = pd.DataFrame(data["data"], columns=data["columns"])
        return frame.astype(dict(zip(data["columns"], data["dtypes"], strict=True)))
    import numpy as np

    return np.asarray(data["data"], dtype=data["dtype"]).reshape(data["shape"])


def _batch_shape(shape: tuple[int, ...]) -> list[int]:
    return [-1, *shape[1:]] if shape else []


def signature(model: Any, example: Any) -> dict[str, Any]:
    """Input columns/dtypes/shape of the example, and the output shape of predicting it
    (left out, with a warning, when ``predict`` fails on it)."""
    if _is_frame(example):
        inputs: dict[str, Any] = {
            "type": "dataframe",
            "columns": [
                {"name": str(c), "dtype": str(t)}
                for c, t in zip(example.columns, example.dtypes, strict=True)
            ],
            "shape": [-1, len(example.columns)],
        }
    else:
        array = _as_array(example)
        inputs = {"type": "ndarray", "dtype": str(array.dtype), "shape": _batch_shape(array.shape)}
    result: dict[str, Any] = {"inputs": inputs, "outputs": None}
    predict = getattr(model, "predict", None)
    if callable(predict):
        try:
            output = _as_array(predict(example))
        except Exception as exc:
            logger.warning(
                "the model's predict() failed on the input example, so its signature has no "
                "outputs: %s: %s",
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
            )
        else:
            result["outputs"] = {"dtype": str(output.dtype), "shape": _batch_shape(output.shape)}
    return result
