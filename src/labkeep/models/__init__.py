"""Models stored with runs: ``run.log_model`` saves one in its framework's safe format (or
cloudpickle, marked unsafe), ``labkeep.load_model`` loads it back from any store.

>>> run.log_model(clf, "model", input_example=X[:5])   # doctest: +SKIP
>>> clf = labkeep.load_model("runs:/7/model")         # doctest: +SKIP

Frameworks are imported only when a model of theirs is saved or loaded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from labkeep.models._info import ModelInfo
from labkeep.models._load import list_models, load_input_example, parse_model_uri
from labkeep.models._save import log_model

if TYPE_CHECKING:
    from labkeep._views import RunView


def load_model(
    model: str | RunView,
    name: str | None = None,
    *,
    trusted: bool | Sequence[str] = False,
    store: str | os.PathLike[str] | None = None,
) -> Any:
    """A stored model, loaded: from a URI ``runs:/RUN/NAME`` (RUN a number, uuid, name or
    ``last``), from the registry (``models:/NAME/VERSION``, ``models:/NAME/latest``,
    ``models:/NAME@ALIAS``), or from a run view and a name. Loading a pickle runs code from the store: a
    model stored with cloudpickle loads only with ``trusted=True``. A scikit-learn model that
    holds types skops does not trust by default (a tree ensemble's ``Tree``) loads with those
    types listed, ``trusted=["sklearn.tree._tree.Tree"]``, or ``trusted=True``.

    >>> clf = labkeep.load_model("runs:/7/model")                  # doctest: +SKIP
    >>> clf = labkeep.load_model("models:/iris-clf@production")    # doctest: +SKIP
    >>> clf = labkeep.load_model(labkeep.get_run(7), "model")      # doctest: +SKIP
    >>> clf.predict(X)                                             # doctest: +SKIP
    """
    from labkeep.models._load import load_from_view

    view, path = resolve(model, name, store)
    return load_from_view(view, path, trusted=trusted)


def get_model_info(
    model: str | RunView, name: str | None = None, *, store: str | os.PathLike[str] | None = None
) -> ModelInfo:
    """What is known of a stored model without loading it: flavour, versions, signature.

    >>> labkeep.get_model_info("runs:/7/model").signature  # doctest: +SKIP
    """
    from labkeep.models._load import model_info

    view, path = resolve(model, name, store)
    return model_info(view, path)


def resolve(
    model: str | RunView, name: str | None, store: str | os.PathLike[str] | None
) -> tuple[RunView, str]:
    """The run view and model name that ``model`` (a URI or a view) and ``name`` point at."""
    from labkeep._views import RunView
    from labkeep.errors import InvalidInputError

    if isinstance(model, RunView):
        return model, name or "model"
    from labkeep._registry import is_registry_uri, resolve_registry_uri

    if name is not None:
        raise InvalidInputError(
            f"load_model({model!r}, {name!r}): the URI names the model already; drop {name!r}"
        )
    from labkeep._client import Client

    client = Client(store)
    if is_registry_uri(model):
        version = resolve_registry_uri(client.store, model)
        return client.get_run(version.run_uuid), version.model_path
    ref, path = parse_model_uri(model)
    return client.get_run(ref), path


__all__ = [
    "ModelInfo",
    "get_model_info",
    "list_models",
    "load_input_example",
    "load_model",
    "log_model",
    "parse_model_uri",
]
