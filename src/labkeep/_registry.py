"""The model registry from Python: named models with numbered versions, each a run's model,
and aliases (``production``). Thin functions over the store's registry methods
(:meth:`Store.create_model_version`…), so a SQLite store, PostgreSQL and a labkeep server
hold it alike; ``labkeep.load_model("models:/NAME@ALIAS")`` reads it.

>>> labkeep.register_model("runs:/7/model", "iris-clf")                 # doctest: +SKIP
>>> labkeep.set_alias("iris-clf", "production", version=1)              # doctest: +SKIP
>>> clf = labkeep.load_model("models:/iris-clf@production")             # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from labkeep._values import check_registry_name
from labkeep.entities import ModelVersion
from labkeep.errors import InvalidInputError

if TYPE_CHECKING:
    from labkeep._client import Client
    from labkeep.store._base import Store

MODELS_SCHEME = "models:/"


def is_registry_uri(uri: object) -> bool:
    return isinstance(uri, str) and uri.startswith(MODELS_SCHEME)


def parse_registry_uri(uri: str) -> tuple[str, str]:
    """``models:/NAME/VERSION``, ``models:/NAME/latest`` or ``models:/NAME@ALIAS`` as
    (name, version reference)."""
    rest = uri[len(MODELS_SCHEME) :].strip("/")
    if "@" in rest:
        name, _, ref = rest.partition("@")
    else:
        name, _, ref = rest.partition("/")
    if not name or not ref or "/" in ref:
        raise InvalidInputError(
            f"{uri!r} is not a model URI: use models:/NAME/VERSION, models:/NAME/latest, "
            "models:/NAME@ALIAS (e.g. models:/iris-clf@production) or runs:/RUN/NAME"
        )
    return check_registry_name(name, "model name"), ref


def resolve_registry_uri(store: Store, uri: str) -> ModelVersion:
    """The model version a ``models:/`` URI names."""
    name, ref = parse_registry_uri(uri)
    return store.get_model_version(name, ref)


def register_model(
    client: Client,
    model_uri: str,
    name: str,
    *,
    description: str = "",
    tags: Mapping[str, str] | None = None,
) -> ModelVersion:
    """Register the run's model ``model_uri`` (``runs:/RUN/PATH``) as the next version of
    ``name``; NotFoundError when the run has no such model."""
    from labkeep.models._load import model_info, parse_model_uri

    name = check_registry_name(name, "model name")
    if is_registry_uri(model_uri):
        version = resolve_registry_uri(client.store, model_uri)
        run_ref, path = version.run_uuid, version.model_path
    else:
        run_ref, path = parse_model_uri(model_uri)
    view = client.get_run(run_ref)
    info = model_info(view, path)  # the model must be there, complete
    return client.store.create_model_version(
        name, view.uuid, info.name, description=description, tags=tags
    )
