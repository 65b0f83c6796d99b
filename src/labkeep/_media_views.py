"""Media read back from a stored run: ``RunView.media(key)``.

Each :class:`MediaItem` names its content (a blob) and reads it when first asked, so listing
a thousand images reads one query's rows and no image.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

from labkeep._media import HISTOGRAM, IMAGE, PLOTLY, TABLE, decode_png
from labkeep.entities import MediaEntry
from labkeep.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    import numpy
    import pandas

    from labkeep.store._base import Store


class MediaItem:
    """One logged image, histogram, table or plotly figure.

    >>> item = labkeep.get_run(7).media("samples")[-1]  # doctest: +SKIP
    >>> item.step, item.caption, item.to_numpy().shape  # doctest: +SKIP
    (9, 'epoch 9', (32, 32, 3))
    """

    def __init__(self, store: Store, entry: MediaEntry) -> None:
        self._store = store
        self.entry = entry
        self._data: bytes | None = None
        self._json: Any = None

    key = property(lambda self: self.entry.key)
    step = property(lambda self: self.entry.step)
    index = property(lambda self: self.entry.index)
    kind = property(lambda self: self.entry.kind)
    sha256 = property(lambda self: self.entry.sha256)
    time = property(lambda self: self.entry.time)

    @property
    def meta(self) -> dict[str, Any]:
        return dict(self.entry.meta)

    @property
    def caption(self) -> str | None:
        caption = self.entry.meta.get("caption")
        return None if caption is None else str(caption)

    @property
    def data(self) -> bytes:
        """The stored bytes: a PNG for an image, JSON for the other kinds."""
        if self._data is None:
            self._data = self._store.blob_path(self.entry.sha256).read_bytes()
        return self._data

    def _need(self, *kinds: str) -> None:
        if self.entry.kind not in kinds:
            raise InvalidInputError(
                f"{self.entry.key!r} at step {self.entry.step} is a {self.entry.kind}, not "
                f"{' or '.join(kinds)}"
            )

    def _parsed(self) -> Any:
        if self._json is None:
            self._json = json.loads(self.data)
        return self._json

    # -- images ------------------------------------------------------------------------
    def to_numpy(self) -> numpy.ndarray[Any, Any]:
        """An image's pixels: uint8 ``HxW`` (grey), ``HxWx3`` or ``HxWx4``."""
        self._need(IMAGE)
        return decode_png(self.data)

    def to_pil(self) -> Any:
        """An image as a PIL image (needs Pillow)."""
        self._need(IMAGE)
        import io

        from PIL import Image as PILImage

        image = PILImage.open(io.BytesIO(self.data))
        image.load()
        return image

    # -- plotly figures ------------------------------------------------------------------
    @property
    def spec(self) -> dict[str, Any]:
        """A plotly figure's JSON (``data`` and ``layout``)."""
        self._need(PLOTLY)
        spec: dict[str, Any] = self._parsed()
        return spec

    def to_plotly(self) -> Any:
        """A plotly figure as a ``plotly.graph_objects.Figure`` (needs plotly)."""
        import plotly.io

        self._need(PLOTLY)
        return plotly.io.from_json(self.data.decode())

    # -- histograms ----------------------------------------------------------------------
    @property
    def counts(self) -> list[float]:
        """A histogram's counts, one per bin."""
        self._need(HISTOGRAM)
        return list(self._parsed()["counts"])

    @property
    def edges(self) -> list[float]:
        """A histogram's bin edges (one more than the counts)."""
        self._need(HISTOGRAM)
        return list(self._parsed()["edges"])

    # -- tables --------------------------------------------------------------------------
    @property
    def columns(self) -> list[str]:
        self._need(TABLE)
        return list(self._parsed()["columns"])

    @property
    def rows(self) -> list[dict[str, Any]]:
        """A table's rows as dicts, column to cell."""
        self._need(TABLE)
        table = self._parsed()
        return [dict(zip(table["columns"], row, strict=True)) for row in table["data"]]

    def to_pandas(self) -> pandas.DataFrame:
        """A table as a DataFrame."""
        import pandas as pd

        self._need(TABLE)
        table = self._parsed()
        return pd.DataFrame(table["data"], columns=table["columns"])

    def __repr__(self) -> str:
        e = self.entry
        return f"<labkeep.MediaItem {e.kind} {e.key!r} step={e.step} index={e.index}>"


class MediaSeries(Sequence[MediaItem]):
    """What a run logged under one media key, by step (items of a list logged at once in
    their order).

    >>> samples = labkeep.get_run(7).media("samples")  # doctest: +SKIP
    >>> samples.steps, samples.at(3)[0].to_pil()  # doctest: +SKIP
    """

    def __init__(self, store: Store, key: str, entries: Sequence[MediaEntry]) -> None:
        self.key = key
        self._items = [MediaItem(store, entry) for entry in entries]

    @property
    def kind(self) -> str:
        return self._items[0].kind if self._items else ""

    @property
    def steps(self) -> list[int]:
        """The steps logged, in order, each once."""
        return sorted({item.step for item in self._items})

    def at(self, step: int) -> list[MediaItem]:
        """The items logged at ``step``; NotFoundError when there are none."""
        found = [item for item in self._items if item.step == step]
        if not found:
            raise NotFoundError(
                f"{self.key!r} has nothing at step {step} (steps {_range(self.steps)})"
            )
        return found

    @overload
    def __getitem__(self, index: int) -> MediaItem: ...
    @overload
    def __getitem__(self, index: slice) -> list[MediaItem]: ...
    def __getitem__(self, index: int | slice) -> MediaItem | list[MediaItem]:
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[MediaItem]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"<labkeep.MediaSeries {self.key!r} {self.kind} of {len(self)} items>"


def _range(steps: list[int]) -> str:
    if not steps:
        return "none"
    return str(steps[0]) if len(steps) == 1 else f"{steps[0]}..{steps[-1]}"


__all__ = ["MediaItem", "MediaSeries"]
