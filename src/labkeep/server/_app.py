"""The application factory: one app serves the REST API and the web UI."""

from __future__ import annotations

import os

from fastapi import FastAPI

from labkeep._client import Client
from labkeep._version import __version__
from labkeep.server._auth import TokenSet


def create_app(
    store: str | os.PathLike[str] | None = None,
    *,
    tokens: TokenSet | None = None,
    read_only: bool = False,
) -> FastAPI:
    """The labkeep app on ``store`` (the default store when None).

    >>> app = create_app("/tmp/store")  # doctest: +SKIP
    """
    app = FastAPI(
        title="labkeep",
        version=__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.state.client = Client(store)
    app.state.tokens = tokens
    app.state.read_only = read_only

    @app.get("/api/v1/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    from labkeep.server import _api_read, _api_store, _ui

    app.include_router(_api_store.router, prefix="/api/v1")
    app.include_router(_api_read.router, prefix="/api/v1")
    _ui.mount(app)
    return app
