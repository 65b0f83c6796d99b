"""Media a run logs beside its scalars: :class:`Image`, :class:`Histogram` and :class:`Table`.

>>> run.log({"samples": labkeep.Image(pixels, caption="epoch 3"),      # doctest: +SKIP
...          "weights": labkeep.Histogram(layer.weights), "preds": labkeep.Table(df)}, step=3)

A value is checked and encoded when it is made, so a bad one fails on the line that made it
(one :class:`~labkeep.errors.InvalidInputError`) and later changes to the caller's array do
not reach the run. ``Run.log`` stores the encoded bytes in the store's blob store (one copy
per content) and journals one small record naming the blob, which the ingester turns into a
row of the store's ``media`` table: a crash of the script after ``log`` returns loses nothing.

What each kind stores:

- ``image``: a PNG written here with numpy and zlib (8-bit grey, RGB or RGBA; per row the
  None, Sub or Up filter that libpng's heuristic picks), the same bytes for the same pixels
  whatever else is installed. Pillow is needed only to pass PIL images in or get them out.
- ``plotly``: a plotly figure as its JSON, drawn by the UI's bundled plotly.js (no image
  renderer such as kaleido, which needs a browser download, is involved).
- ``histogram``: JSON ``{"counts": [...], "edges": [...]}``.
- ``table``: JSON ``{"columns": [...], "data": [[...], ...]}`` of at most
  :data:`MAX_TABLE_BYTES`.

This module imports nothing heavy: numpy, PIL, pandas, matplotlib and plotly load inside the
functions that use them.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import struct
import zlib
from typing import TYPE_CHECKING, Any

from labkeep._values import check_text, short_repr
from labkeep.errors import DamagedStoreError, InvalidInputError

if TYPE_CHECKING:
    import numpy

#: The longest side an image may have, in pixels.
MAX_IMAGE_SIDE = 16384
#: The most bins a histogram may have.
MAX_BINS = 4096
#: The largest table one logged value may hold, as JSON (16 MiB): a bigger one is a data
#: set, better stored with ``run.log_artifact``, or split across steps or keys.
MAX_TABLE_BYTES = 16 << 20
#: The longest caption, in characters.
MAX_CAPTION = 1000

IMAGE, PLOTLY, HISTOGRAM, TABLE = "image", "plotly", "histogram", "table"
KINDS = (IMAGE, PLOTLY, HISTOGRAM, TABLE)
#: What each kind's blob is, as an HTTP content type.
CONTENT_TYPES = {
    IMAGE: "image/png",
    PLOTLY: "application/json",
    HISTOGRAM: "application/json",
    TABLE: "application/json",
}


class Media:
    """A value ``run.log`` stores as a blob, not as a number: its ``kind``, its encoded
    bytes and a small ``meta`` dict that describes it."""

    __slots__ = ("data", "kind", "meta")

    def __init__(self, kind: str, data: bytes, meta: dict[str, Any]) -> None:
        self.kind = kind
        self.data = data
        self.meta = meta

    def __repr__(self) -> str:
        details = ", ".join(f"{k}={v!r}" for k, v in self.meta.items())
        return f"<labkeep.{type(self).__name__} {details}>"


def _caption(caption: object) -> str | None:
    if caption is None:
        return None
    text = check_text(caption, "caption")
    if len(text) > MAX_CAPTION:
        raise InvalidInputError(
            f"caption is {len(text):,} characters long: keep it under {MAX_CAPTION + 1:,}"
        )
    return text


def _module(value: object) -> str:
    """The top package ``value``'s type comes from (``pandas`` for a DataFrame)."""
    return (type(value).__module__ or "").partition(".")[0]


class Image(Media):
    """An image: a numpy array (``HxW``, ``HxWx1``, ``HxWx3`` or ``HxWx4``; uint8, or
    float in [0, 1]), a PIL image, a matplotlib figure or a plotly figure (kept as its JSON
    and drawn by the UI's plotly.js).

    >>> labkeep.Image(np.zeros((32, 32, 3), dtype=np.uint8), caption="epoch 3")  # doctest: +SKIP
    """

    __slots__ = ()

    def __init__(self, data: Any, caption: str | None = None) -> None:
        text = _caption(caption)
        module = _module(data)
        if module == "plotly" and hasattr(data, "to_plotly_json"):
            spec = data.to_json()
            meta: dict[str, Any] = {} if text is None else {"caption": text}
            super().__init__(PLOTLY, spec.encode(), meta)
            return
        pixels = _pixels(data, module)
        height, width, channels = pixels.shape
        meta = {"width": int(width), "height": int(height), "channels": int(channels)}
        if text is not None:
            meta["caption"] = text
        super().__init__(IMAGE, encode_png(pixels), meta)


def _pixels(data: Any, module: str) -> numpy.ndarray[Any, Any]:
    """``data`` as a uint8 ``HxWxC`` array (C = 1, 3 or 4)."""
    import numpy as np

    if module == "PIL" and hasattr(data, "mode") and hasattr(data, "convert"):
        image = data
        if image.mode not in ("L", "RGB", "RGBA"):
            alpha = "A" in image.mode or "transparency" in getattr(image, "info", {})
            image = image.convert("RGBA" if alpha else ("L" if image.mode == "1" else "RGB"))
        array = np.asarray(image)
    elif module == "matplotlib" and hasattr(data, "savefig"):
        array = _figure_pixels(data)
    elif hasattr(data, "__array__") or isinstance(data, list | tuple):
        try:
            array = np.asarray(data)
        except (ValueError, TypeError) as exc:
            raise InvalidInputError(f"labkeep.Image could not read the array: {exc}") from None
    else:
        raise InvalidInputError(
            f"labkeep.Image takes a numpy array, a PIL image or a matplotlib or plotly figure, "
            f"not a {type(data).__name__} {short_repr(data)}"
        )
    return _as_uint8(_as_hwc(array))


def _figure_pixels(figure: Any) -> numpy.ndarray[Any, Any]:
    """A matplotlib figure rendered by Agg, as RGBA pixels."""
    import numpy as np

    canvas = figure.canvas
    if not hasattr(canvas, "buffer_rgba"):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


def _as_hwc(array: numpy.ndarray[Any, Any]) -> numpy.ndarray[Any, Any]:
    shape = array.shape
    if array.ndim == 2:
        array = array[:, :, None]
    elif array.ndim == 3 and shape[2] not in (1, 3, 4):
        hint = (
            f": it looks channels-first, pass array.transpose(1, 2, 0) (shape "
            f"{shape[1]}x{shape[2]}x{shape[0]})"
            if shape[0] in (1, 3, 4)
            else ""
        )
        raise InvalidInputError(
            f"an image of shape {_shape(shape)} has {shape[2]} channels: give HxW, HxWx1, "
            f"HxWx3 or HxWx4{hint}"
        )
    elif array.ndim != 3:
        raise InvalidInputError(
            f"an image of shape {_shape(shape)} is not one image: give HxW, HxWx1, HxWx3 or "
            "HxWx4 (log a list of Images for a batch)"
        )
    height, width = array.shape[:2]
    if height == 0 or width == 0:
        raise InvalidInputError(f"an image of shape {_shape(shape)} has no pixels")
    if max(height, width) > MAX_IMAGE_SIDE:
        raise InvalidInputError(
            f"an image of shape {_shape(shape)} is larger than {MAX_IMAGE_SIDE:,} pixels a "
            "side: resize it, or store the file with run.log_artifact"
        )
    return array


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(n) for n in shape) or "()"


def _as_uint8(array: numpy.ndarray[Any, Any]) -> numpy.ndarray[Any, Any]:
    import numpy as np

    kind = array.dtype.kind
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if kind == "b":
        return array.astype(np.uint8) * 255
    if kind == "f":
        if not np.isfinite(array).all():
            raise InvalidInputError("a float image holds NaN or infinity: give values in [0, 1]")
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise InvalidInputError(
                f"a float image must hold values in [0, 1], not [{low:g}, {high:g}]: scale it "
                "(or pass uint8 values 0-255)"
            )
        return np.ascontiguousarray(np.rint(array * 255.0).astype(np.uint8))
    if kind in "iu":
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise InvalidInputError(
                f"an integer image must hold values 0-255, not {low}-{high}: scale it to uint8"
            )
        return np.ascontiguousarray(array.astype(np.uint8))
    raise InvalidInputError(
        f"an image of dtype {array.dtype} is not pixels: give uint8, bool or float in [0, 1]"
    )


# -- PNG --------------------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPES = {1: 0, 3: 2, 4: 6}
_CHANNELS = {v: k for k, v in _COLOR_TYPES.items()}


def _chunk(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))


def encode_png(pixels: numpy.ndarray[Any, Any]) -> bytes:
    """A uint8 ``HxWxC`` array (C = 1, 3 or 4) as PNG bytes. Per row, the filter (None, Sub
    or Up) whose output has the smallest sum of absolute values, as libpng chooses."""
    import numpy as np

    height, width, channels = pixels.shape
    rows = pixels.reshape(height, width * channels)
    sub = rows.copy()
    sub[:, channels:] -= rows[:, :-channels]  # uint8 arithmetic wraps modulo 256, as PNG's
    up = rows.copy()
    up[1:] -= rows[:-1]
    candidates = np.stack([rows, sub, up])
    cost = np.abs(candidates.view(np.int8).astype(np.int32)).sum(axis=2)
    choice = cost.argmin(axis=0)
    chosen = candidates[choice, np.arange(height)]
    raw = np.concatenate([choice.astype(np.uint8)[:, None], chosen], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOR_TYPES[channels], 0, 0, 0)
    return b"".join(
        [
            _PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)),
            _chunk(b"IEND", b""),
        ]
    )


def decode_png(data: bytes) -> numpy.ndarray[Any, Any]:
    """The pixels of a PNG that :func:`encode_png` wrote, as uint8 ``HxW``/``HxWx3``/``HxWx4``.
    Raises DamagedStoreError for anything else."""
    import numpy as np

    if not data.startswith(_PNG_SIGNATURE):
        raise DamagedStoreError("a stored image is not a PNG")
    pos = len(_PNG_SIGNATURE)
    width = height = channels = 0
    idat: list[bytes] = []
    while pos + 8 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        tag = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if tag == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or color not in _CHANNELS or interlace:
                raise DamagedStoreError("a stored image is a PNG labkeep did not write")
            channels = _CHANNELS[color]
        elif tag == b"IDAT":
            idat.append(body)
        elif tag == b"IEND":
            break
        pos += 12 + length
    stride = width * channels
    try:
        raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8)
        raw = raw.reshape(height, stride + 1)
    except (zlib.error, ValueError):
        raise DamagedStoreError("a stored image's PNG data is damaged") from None
    filters, rows = raw[:, 0], raw[:, 1:].copy()
    for y in range(height):
        kind = filters[y]
        if kind == 1:
            line = rows[y].reshape(width, channels)
            rows[y] = np.cumsum(line, axis=0, dtype=np.uint8).reshape(stride)
        elif kind == 2 and y > 0:
            rows[y] += rows[y - 1]
        elif kind > 2:
            raise DamagedStoreError("a stored image is a PNG labkeep did not write")
    pixels = rows.reshape(height, width, channels)
    return pixels[:, :, 0] if channels == 1 else pixels


# -- histograms -------------------------------------------------------------------------


class Histogram(Media):
    """A histogram of ``values`` in ``bins`` equal bins (non-finite values are left out and
    counted), or one already binned: ``np_histogram=(counts, edges)``.

    >>> labkeep.Histogram(layer.weight.detach().numpy())  # doctest: +SKIP
    >>> labkeep.Histogram(np_histogram=np.histogram(x, bins=20))  # doctest: +SKIP
    """

    __slots__ = ()

    def __init__(
        self,
        values: Any = None,
        bins: int = 64,
        *,
        np_histogram: tuple[Any, Any] | None = None,
    ) -> None:
        import numpy as np

        skipped = 0
        if np_histogram is not None:
            if values is not None:
                raise InvalidInputError("give labkeep.Histogram values or np_histogram, not both")
            counts, edges = _binned(np_histogram)
        else:
            if values is None:
                raise InvalidInputError(
                    "labkeep.Histogram needs values (or np_histogram=(counts, edges))"
                )
            if isinstance(bins, bool) or not isinstance(bins, int) or not 0 < bins <= MAX_BINS:
                raise InvalidInputError(
                    f"bins must be an integer from 1 to {MAX_BINS}, not {short_repr(bins)}"
                )
            try:
                array = np.asarray(values, dtype=np.float64).ravel()
            except (ValueError, TypeError):
                raise InvalidInputError(
                    f"labkeep.Histogram takes numbers, not {type(values).__name__} "
                    f"{short_repr(values)}"
                ) from None
            finite = array[np.isfinite(array)]
            skipped = int(array.size - finite.size)
            if finite.size == 0:
                raise InvalidInputError(
                    f"labkeep.Histogram got no finite values ({array.size} given)"
                )
            hist_counts, hist_edges = np.histogram(finite, bins=bins)
            counts, edges = hist_counts.tolist(), hist_edges.tolist()
        meta: dict[str, Any] = {
            "bins": len(counts),
            "count": sum(counts),
            "min": edges[0],
            "max": edges[-1],
        }
        if skipped:
            meta["nonfinite"] = skipped
        body = json.dumps({"counts": counts, "edges": edges}, separators=(",", ":"))
        super().__init__(HISTOGRAM, body.encode(), meta)


def _binned(pair: Any) -> tuple[list[Any], list[float]]:
    import numpy as np

    try:
        raw_counts, raw_edges = pair
        counts = np.asarray(raw_counts, dtype=np.float64).ravel()
        edges = np.asarray(raw_edges, dtype=np.float64).ravel()
    except (ValueError, TypeError):
        raise InvalidInputError(
            "np_histogram must be (counts, edges), as numpy.histogram returns"
        ) from None
    if not 0 < counts.size <= MAX_BINS or edges.size != counts.size + 1:
        raise InvalidInputError(
            f"np_histogram has {counts.size} counts and {edges.size} edges: give 1 to "
            f"{MAX_BINS} counts and one edge more"
        )
    if not (np.isfinite(counts).all() and np.isfinite(edges).all()):
        raise InvalidInputError("np_histogram holds NaN or infinity: give finite counts and edges")
    if (counts < 0).any() or (np.diff(edges) <= 0).any():
        raise InvalidInputError(
            "np_histogram needs counts of 0 or more and strictly increasing edges"
        )
    whole = bool((counts == np.rint(counts)).all())
    counts_list: list[Any] = counts.astype(np.int64).tolist() if whole else counts.tolist()
    return counts_list, edges.tolist()


# -- tables -----------------------------------------------------------------------------


class Table(Media):
    """Rows and columns: a pandas DataFrame (its index is left out), a list of dicts (the
    columns in the order first seen; a missing key is None), or ``data`` as a list of rows
    with ``columns``. Cells are None, bools, numbers, strings, or dates and times (stored
    as ISO text); at most :data:`MAX_TABLE_BYTES` as JSON.

    >>> labkeep.Table(df)  # doctest: +SKIP
    >>> labkeep.Table(columns=["x", "pred"], data=[[1, 0.2], [2, 0.9]])  # doctest: +SKIP
    """

    __slots__ = ()

    def __init__(self, data: Any = None, columns: list[str] | None = None) -> None:
        names, rows = _table(data, columns)
        try:
            body = json.dumps({"columns": names, "data": rows}, separators=(",", ":")).encode()
        except ValueError as exc:  # a circular structure
            raise InvalidInputError(f"labkeep.Table could not store its cells: {exc}") from None
        if len(body) > MAX_TABLE_BYTES:
            raise InvalidInputError(
                f"a table of {len(rows):,} rows is {len(body) / (1 << 20):.1f} MiB as JSON, more "
                f"than the {MAX_TABLE_BYTES >> 20} MiB one logged table may hold: log fewer rows "
                "(or store the data with run.log_artifact)"
            )
        super().__init__(TABLE, body, {"rows": len(rows), "columns": len(names)})


def _table(data: Any, columns: Any) -> tuple[list[str], list[list[Any]]]:
    if _module(data) == "pandas" and hasattr(data, "columns"):
        if columns is not None:
            raise InvalidInputError("a DataFrame names its own columns: leave columns out")
        names = _column_names(list(data.columns))
        cells = data.to_numpy(dtype=object).tolist()
        return names, [[_cell(v, names[i]) for i, v in enumerate(row)] for row in cells]
    if data is None:
        data = []
    if not isinstance(data, list | tuple):
        raise InvalidInputError(
            f"labkeep.Table takes a pandas DataFrame, a list of dicts, or rows with columns, "
            f"not a {type(data).__name__} {short_repr(data)}"
        )
    if data and all(isinstance(row, dict) for row in data):
        if columns is not None:
            names = _column_names(list(columns))
        else:
            seen: dict[str, None] = {}
            for row in data:
                for key in row:
                    seen.setdefault(_column_names([key])[0], None)
            names = list(seen)
        rows = []
        for row in data:
            text_keys = {str(k): v for k, v in row.items()}
            rows.append([_cell(text_keys.get(name), name) for name in names])
        return names, rows
    if columns is None:
        raise InvalidInputError(
            "labkeep.Table(data=rows) needs columns=[...] naming them (or give a list of dicts)"
        )
    names = _column_names(list(columns))
    rows = []
    for number, row in enumerate(data):
        if isinstance(row, dict) or not isinstance(row, list | tuple):
            raise InvalidInputError(
                f"row {number} of the table is a {type(row).__name__}: give every row as a list"
            )
        if len(row) != len(names):
            raise InvalidInputError(
                f"row {number} of the table has {len(row)} cells for {len(names)} columns"
            )
        rows.append([_cell(v, names[i]) for i, v in enumerate(row)])
    return names, rows


def _column_names(raw: list[Any]) -> list[str]:
    names = []
    for name in raw:
        if not isinstance(name, str | int):
            raise InvalidInputError(
                f"table column {short_repr(name)} is a {type(name).__name__}: name columns "
                "with strings"
            )
        names.append(check_text(str(name), "table column"))
    if len(set(names)) != len(names):
        raise InvalidInputError(f"a table names a column twice: {names}")
    return names


def _cell(value: Any, column: str) -> Any:
    if value is None or isinstance(value, bool | int | str):
        if isinstance(value, str):
            check_text(value, f"table column {column!r}")
        return value
    if isinstance(value, float):
        return value
    if hasattr(value, "item") and hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0:
        return _cell(value.item(), column)  # a numpy scalar
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    if _module(value) == "pandas" and type(value).__name__ in ("NaTType", "NAType"):
        return None
    raise InvalidInputError(
        f"table column {column!r} holds a {type(value).__name__} {short_repr(value)}: cells "
        "are None, bools, numbers, strings or dates"
    )


# -- reading back -----------------------------------------------------------------------


def is_media(value: object) -> bool:
    """Whether ``run.log`` stores ``value`` as media: a Media value or a non-empty list of them."""
    if isinstance(value, Media):
        return True
    return (
        isinstance(value, list | tuple)
        and bool(value)
        and all(isinstance(item, Media) for item in value)
    )


def finite_json(value: Any) -> Any:
    """``value`` with NaN as None and infinities as the strings ``"Infinity"``/``"-Infinity"``:
    what a browser's ``JSON.parse`` reads."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, list):
        return [finite_json(v) for v in value]
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    return value


__all__ = [
    "CONTENT_TYPES",
    "HISTOGRAM",
    "IMAGE",
    "KINDS",
    "MAX_BINS",
    "MAX_CAPTION",
    "MAX_IMAGE_SIDE",
    "MAX_TABLE_BYTES",
    "PLOTLY",
    "TABLE",
    "Histogram",
    "Image",
    "Media",
    "Table",
    "decode_png",
    "encode_png",
    "finite_json",
    "is_media",
]
