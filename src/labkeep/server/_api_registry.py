"""The store protocol's registry and versioned-artifact routes (under ``/api/v1/store``):
what :class:`labkeep.store.rest.RestStore`'s registry methods call. Each route is one Store
call on the server's own store, which does it in one transaction; errors travel by type as
for every store route (a missing model is a 404 that the client raises as NotFoundError).
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from labkeep.entities import ArtifactFile
from labkeep.server._api_store import READ, WRITE, _json, _store
from labkeep.store.rest import codec

router = APIRouter(prefix="/store", tags=["store protocol"])


def _answer(value: object) -> Response:
    return _json(codec.registry_to_json(value))


# -- model registry -------------------------------------------------------------------


class NewVersion(BaseModel):
    name: str
    run_uuid: str
    model_path: str
    description: str = ""
    tags: dict[str, str] = {}


@router.post("/registry/versions", dependencies=WRITE)
def create_model_version(body: NewVersion, request: Request) -> Response:
    """Register a run's model as the next version of a name; the new version."""
    version = _store(request).create_model_version(
        body.name, body.run_uuid, body.model_path, description=body.description, tags=body.tags
    )
    return _answer(version)


@router.get("/registry/models", dependencies=READ)
def list_registered_models(request: Request) -> Response:
    store = _store(request)
    return _answer(store.list_registered_models() if store.exists() else [])


@router.get("/registry/model", dependencies=READ)
def get_registered_model(request: Request, name: str = Query(...)) -> Response:
    return _answer(_store(request).get_registered_model(name))


@router.get("/registry/versions", dependencies=READ)
def list_model_versions(request: Request, name: str = Query(...)) -> Response:
    return _answer(_store(request).list_model_versions(name))


@router.get("/registry/versions-of-run", dependencies=READ)
def find_model_versions(request: Request, run_uuid: str = Query(...)) -> Response:
    """The registered versions whose model is one of this run's."""
    store = _store(request)
    return _answer(store.find_model_versions(run_uuid) if store.exists() else [])


@router.get("/registry/version", dependencies=READ)
def get_model_version(request: Request, name: str = Query(...), ref: str = Query(...)) -> Response:
    """A version by number, ``latest`` or alias."""
    return _answer(_store(request).get_model_version(name, ref))


class Alias(BaseModel):
    name: str
    alias: str
    version: int = 0


@router.post("/registry/alias", dependencies=WRITE)
def set_model_alias(body: Alias, request: Request) -> Response:
    _store(request).set_model_alias(body.name, body.alias, body.version)
    return _json({})


@router.post("/registry/alias/delete", dependencies=WRITE)
def delete_model_alias(body: Alias, request: Request) -> Response:
    _store(request).delete_model_alias(body.name, body.alias)
    return _json({})


class Update(BaseModel):
    name: str
    version: int = 0
    description: str | None = None
    set_tags: dict[str, str] = {}
    delete_tags: list[str] = []


@router.post("/registry/model/update", dependencies=WRITE)
def update_registered_model(body: Update, request: Request) -> Response:
    model = _store(request).update_registered_model(
        body.name,
        description=body.description,
        set_tags=body.set_tags,
        delete_tags=body.delete_tags,
    )
    return _answer(model)


@router.post("/registry/version/update", dependencies=WRITE)
def update_model_version(body: Update, request: Request) -> Response:
    version = _store(request).update_model_version(
        body.name,
        body.version,
        description=body.description,
        set_tags=body.set_tags,
        delete_tags=body.delete_tags,
    )
    return _answer(version)


class Named(BaseModel):
    name: str
    version: int = 0


@router.post("/registry/version/delete", dependencies=WRITE)
def delete_model_version(body: Named, request: Request) -> Response:
    _store(request).delete_model_version(body.name, body.version)
    return _json({})


@router.post("/registry/model/delete", dependencies=WRITE)
def delete_registered_model(body: Named, request: Request) -> Response:
    _store(request).delete_registered_model(body.name)
    return _json({})


# -- versioned artifacts --------------------------------------------------------------


class File(BaseModel):
    path: str
    sha256: str
    size: int


class NewArtifactVersion(BaseModel):
    name: str
    type: str
    run_uuid: str
    files: list[File]


@router.post("/artifacts/versions", dependencies=WRITE)
def log_artifact_version(body: NewArtifactVersion, request: Request) -> Response:
    """Files already uploaded as blobs, as a version of a named artifact (the existing
    version when the content is the same)."""
    files = [ArtifactFile(f.path, f.sha256, f.size) for f in body.files]
    return _answer(_store(request).log_artifact_version(body.name, body.type, files, body.run_uuid))


@router.get("/artifacts", dependencies=READ)
def list_named_artifacts(request: Request) -> Response:
    store = _store(request)
    return _answer(store.list_named_artifacts() if store.exists() else [])


@router.get("/artifacts/versions", dependencies=READ)
def list_artifact_versions(request: Request, name: str = Query(...)) -> Response:
    return _answer(_store(request).list_artifact_versions(name))


@router.get("/artifacts/version", dependencies=READ)
def get_artifact_version(
    request: Request, name: str = Query(...), ref: str = Query(...)
) -> Response:
    return _answer(_store(request).get_artifact_version(name, ref))


@router.post("/artifacts/alias", dependencies=WRITE)
def set_artifact_alias(body: Alias, request: Request) -> Response:
    _store(request).set_artifact_alias(body.name, body.alias, body.version)
    return _json({})


@router.post("/artifacts/alias/delete", dependencies=WRITE)
def delete_artifact_alias(body: Alias, request: Request) -> Response:
    _store(request).delete_artifact_alias(body.name, body.alias)
    return _json({})


class Use(BaseModel):
    name: str
    version: int
    run_uuid: str


@router.post("/artifacts/use", dependencies=WRITE)
def use_artifact_version(body: Use, request: Request) -> Response:
    _store(request).use_artifact_version(body.name, body.version, body.run_uuid)
    return _json({})


@router.get("/artifacts/links", dependencies=READ)
def list_artifact_links(
    request: Request, run_uuid: str | None = None, name: str | None = None
) -> Response:
    store = _store(request)
    links = store.list_artifact_links(run_uuid=run_uuid, name=name) if store.exists() else []
    return _answer(links)
