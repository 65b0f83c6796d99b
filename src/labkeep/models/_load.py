"""``labkeep.load_model``: a stored model back as a live object, from any store.

The model's files are read through the run's read view (``RunView.artifact_path``), so the
same code reads a SQLite store, PostgreSQL or a labkeep server (whose blobs are downloaded
once into the local cache), and every blob is checked against its sha256 before use.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkeep.errors import InvalidInputError, LabkeepError, ModelError, NotFoundError
from labkeep.models._info import EXAMPLE_FILE, METADATA_FILE, ModelInfo, info_from_metadata

if TYPE_CHECKING:
    from labkeep._views import RunView
    from labkeep.models._flavours import Flavour, Trust

_SCHEME = "runs:/"


def parse_model_uri(uri: str) -> tuple[str, str]:
    """``runs:/RUN/PATH`` as (run reference, model path); RUN is a number, uuid, name or
    ``last``."""
    if not isinstance(uri, str) or not uri.startswith(_SCHEME):
        raise InvalidInputError(
            f"{uri!r} is not a model URI: use runs:/RUN/NAME (e.g. runs:/7/model), models:/NAME@ALIAS, or pass a "
            "run and a name: load_model(labkeep.get_run(7), 'model')"
        )
    ref, _, path = uri[len(_SCHEME) :].lstrip("/").partition("/")
    path = path.strip("/")
    if not ref or not path:
        raise InvalidInputError(
            f"{uri!r} lacks a run or a model name: use runs:/RUN/NAME (e.g. runs:/7/model)"
        )
    return ref, path


def _where(view: RunView, name: str) -> str:
    return f"model {name!r} of run {view.number}"


def _model_sizes(view: RunView, name: str) -> int:
    prefix = name + "/"
    return sum(a.size for a in view.artifacts if a.path.startswith(prefix))


def model_info(view: RunView, name: str) -> ModelInfo:
    """The metadata of ``view``'s model ``name``; :class:`NotFoundError` listing the run's
    models when it has none of that name."""
    name = name.strip("/")
    meta_path = f"{name}/{METADATA_FILE}"
    if not any(a.path == meta_path for a in view.artifacts):
        names = [a.path[: -len(METADATA_FILE) - 1] for a in view.artifacts if _is_metadata(a.path)]
        listed = ", ".join(names[:10]) or "none"
        raise NotFoundError(f"run {view.number} has no model {name!r} (its models: {listed})")
    raw = view.artifact_path(meta_path).read_bytes()
    info = info_from_metadata(raw, name, _model_sizes(view, name), _where(view, name))
    # The run is the one that holds the files, whatever the metadata says.
    return replace(info, run_uuid=view.uuid)


def _is_metadata(path: str) -> bool:
    return path.endswith("/" + METADATA_FILE)


def list_models(view: RunView) -> list[ModelInfo]:
    """Every model stored with the run, in the order they were logged."""
    import logging

    found = []
    for artifact in view.artifacts:
        if _is_metadata(artifact.path):
            name = artifact.path[: -len(METADATA_FILE) - 1]
            try:
                found.append(model_info(view, name))
            except LabkeepError as exc:
                logging.getLogger(__name__).warning("%s", exc)
    return sorted(found, key=lambda info: info.created)


def load_from_view(view: RunView, name: str, *, trusted: Trust = False) -> Any:
    from labkeep.models._flavours import flavour_named

    if isinstance(trusted, str):  # one type named
        trusted = [trusted]
    elif not isinstance(trusted, bool):
        trusted = [str(t) for t in trusted]
    info = model_info(view, name)
    where = _where(view, info.name)
    flavour = flavour_named(info.flavour, where)
    if not flavour.safe and trusted is not True:
        raise_untrusted(where, flavour.name)
    blob = view.artifact_path(f"{info.name}/{info.model_file}")
    if not flavour.needs_name:
        return _load_file(flavour, blob, info, trusted, where)
    with tempfile.TemporaryDirectory(prefix="labkeep-model-") as tmp:
        # These frameworks read the format from the file's name (model.keras, model.ubj).
        local = Path(tmp) / info.model_file
        try:
            os.symlink(blob, local)
        except OSError:
            shutil.copyfile(blob, local)
        return _load_file(flavour, local, info, trusted, where)


def _load_file(flavour: Flavour, path: Path, info: ModelInfo, trusted: Trust, where: str) -> Any:
    try:
        return flavour.load(path, info.model_class, trusted)
    except LabkeepError as exc:
        raise type(exc)(f"{where}: {exc}") from None
    except ImportError as exc:
        needs = ", ".join(f"{d} {v}" for d, v in info.versions.items() if d != "python")
        raise ModelError(
            f"{where} needs {exc.name or 'a framework'} to load (it was stored with {needs}): "
            "install it"
        ) from None
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ModelError(
            f"{where} cannot be loaded as a {flavour.name} model: its file is damaged or "
            f"was not written by {flavour.name} ({type(exc).__name__}: {first[:200]})"
        ) from None


def raise_untrusted(where: str, flavour: str) -> None:
    from labkeep.errors import UntrustedModelError

    raise UntrustedModelError(
        f"{where} is a {flavour} pickle, which runs code when it is loaded: load it only from "
        "a store you trust, with load_model(..., trusted=True)"
    )


def load_input_example(view: RunView, name: str) -> Any:
    """The input example stored with the model (a numpy array or a DataFrame), or None."""
    from labkeep.models._example import decode_example

    info = model_info(view, name)
    if not info.has_input_example:
        return None
    return decode_example(view.artifact_path(f"{info.name}/{EXAMPLE_FILE}").read_bytes())


def recent_models(runs: Sequence[RunView]) -> list[tuple[RunView, ModelInfo]]:
    """The models of ``runs`` (in their order), each with its run: what ``labkeep models``
    lists. Only runs with a model artifact have a metadata file read."""
    found: list[tuple[RunView, ModelInfo]] = []
    for view in runs:
        if any(a.kind == "model" and _is_metadata(a.path) for a in view.artifacts):
            found.extend((view, info) for info in list_models(view))
    return found
