"""``run.log_model``: a model saved in its framework's format, stored as the run's artifacts.

Everything is written to a temporary directory first (model file, input example, signature),
and only when all of it succeeded are the files logged, through ``Run.log_artifact`` (content
addressed: the same model logged twice is stored once), the metadata file last. A model that
cannot be saved leaves nothing in the run.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkeep._values import check_key
from labkeep.errors import InvalidInputError, LabkeepError, ModelError
from labkeep.models._flavours import class_name, detect, versions_of
from labkeep.models._info import EXAMPLE_FILE, METADATA_FILE, ModelInfo

if TYPE_CHECKING:
    from labkeep._run import Run

#: Artifact kind of a model's files.
MODEL_KIND = "model"


def check_model_name(name: str) -> str:
    name = check_key(name, "model name").strip("/")
    parts = name.split("/")
    if not name or any(p in ("", ".", "..") for p in parts):
        raise InvalidInputError(
            f"model name {name!r} is not a relative path: use a name like 'model' or 'clf/best'"
        )
    return name


def log_model(run: Run, model: Any, name: str = "model", *, input_example: Any = None) -> ModelInfo:
    """Store ``model`` under ``name`` in ``run``; see :meth:`labkeep.Run.log_model`."""
    name = check_model_name(name)
    flavour = detect(model)
    with tempfile.TemporaryDirectory(prefix="labkeep-model-") as tmp:
        folder = Path(tmp)
        model_path = folder / flavour.file
        try:
            flavour.save(model, model_path)
        except LabkeepError:
            raise
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise ModelError(
                f"the {type(model).__name__} could not be saved as a {flavour.name} model "
                f"({type(exc).__name__}: {first})"
            ) from exc
        files = [model_path]
        sig = None
        if input_example is not None:
            from labkeep.models._example import encode_example, signature

            example_path = folder / EXAMPLE_FILE
            example_path.write_bytes(encode_example(input_example))
            files.append(example_path)
            sig = signature(model, input_example)
        info = ModelInfo(
            name=name,
            run_uuid=run.uuid,
            flavour=flavour.name,
            model_file=flavour.file,
            model_class=class_name(model),
            safe=flavour.safe,
            versions=versions_of(flavour, model),
            signature=sig,
            has_input_example=input_example is not None,
            created=time.time(),
        )
        metadata = folder / METADATA_FILE
        metadata.write_text(json.dumps(info.to_metadata(), indent=2))
        files.append(metadata)
        size = sum(f.stat().st_size for f in files)
        for path in files:  # the metadata last: a model is complete once it is there
            run.log_artifact(path, f"{name}/{path.name}", kind=MODEL_KIND)
    from dataclasses import replace

    return replace(info, size=size)
