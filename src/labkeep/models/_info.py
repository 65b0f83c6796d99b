"""What a stored model is: its metadata file, and :class:`ModelInfo`, the view of it.

A model named ``NAME`` is a group of the run's artifacts under ``NAME/`` (kind ``model``):
the model file in its framework's format, ``input_example.json`` when an example was given,
and ``labkeep_model.json`` (this module's format, like MLflow's ``MLmodel``), logged last,
so that a model whose metadata is there has every file it names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from labkeep.errors import ModelError

#: The metadata file that makes a directory of artifacts a model.
METADATA_FILE = "labkeep_model.json"
#: The input example's file, next to the metadata.
EXAMPLE_FILE = "input_example.json"
FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A model stored with a run: what ``run.log_model`` returns and ``RunView.models`` lists.

    >>> info = run.log_model(clf, "model", input_example=X[:5])  # doctest: +SKIP
    >>> info.uri, info.flavour, info.versions["scikit-learn"]  # doctest: +SKIP
    ('runs:/3f2a…/model', 'sklearn', '1.5.1')
    """

    name: str
    run_uuid: str
    flavour: str
    model_file: str
    model_class: str
    safe: bool
    versions: dict[str, str] = field(default_factory=dict)
    signature: dict[str, Any] | None = None
    has_input_example: bool = False
    size: int = 0
    created: float = 0.0

    @property
    def uri(self) -> str:
        """``runs:/RUN_UUID/NAME``, what :func:`labkeep.load_model` takes."""
        return f"runs:/{self.run_uuid}/{self.name}"

    @property
    def framework(self) -> str:
        """The main framework and its version (``scikit-learn 1.5.1``)."""
        for dist, version in self.versions.items():
            if dist != "python":
                return f"{dist} {version}"
        return ""

    def to_metadata(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "run_uuid": self.run_uuid,
            "flavour": self.flavour,
            "model_file": self.model_file,
            "model_class": self.model_class,
            "safe": self.safe,
            "versions": self.versions,
            "signature": self.signature,
            "input_example": EXAMPLE_FILE if self.has_input_example else None,
            "created": self.created,
        }


def info_from_metadata(raw: bytes, name: str, size: int, where: str) -> ModelInfo:
    """The model described by a metadata file's bytes; :class:`ModelError` naming ``where``
    when they are not a metadata file this labkeep reads."""
    try:
        meta = json.loads(raw)
        if not isinstance(meta, dict):
            raise TypeError("not an object")
        version = meta.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ModelError(
                f"{where} was written in model format {version!r}, newer than this labkeep "
                f"reads ({FORMAT_VERSION}): upgrade labkeep"
            )
        versions = meta.get("versions") or {}
        signature = meta.get("signature")
        info = ModelInfo(
            name=name,
            run_uuid=str(meta["run_uuid"]),
            flavour=str(meta["flavour"]),
            model_file=str(meta["model_file"]),
            model_class=str(meta.get("model_class", "")),
            safe=bool(meta["safe"]),
            versions={str(k): str(v) for k, v in dict(versions).items()},
            signature=signature if isinstance(signature, dict) else None,
            has_input_example=meta.get("input_example") == EXAMPLE_FILE,
            size=size,
            created=float(meta.get("created") or 0.0),
        )
    except ModelError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelError(
            f"{where} has a damaged metadata file {METADATA_FILE} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'unreadable'}): log the model again"
        ) from None
    if "/" in info.model_file or info.model_file in ("", ".", ".."):
        raise ModelError(f"{where} names a model file outside the model: log the model again")
    return info
