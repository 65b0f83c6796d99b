"""The application factory: one app serves the REST API and the web UI.

Errors leave as one-line JSON, ``{"error": message, "type": error class}``, with the status
``_errors.error_status`` gives every route.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from labkeep._client import Client
from labkeep._version import __version__
from labkeep.errors import LabkeepError
from labkeep.server._auth import RequestGuard, TokenSet
from labkeep.server._errors import error_status


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


def create_app(
    store: str | os.PathLike[str] | None = None,
    *,
    tokens: TokenSet | None = None,
    read_only: bool = False,
    allowed_hosts: Iterable[str] | None = None,
    artifacts: str | None = None,
    artifacts_proxy: bool = False,
) -> FastAPI:
    """The labkeep app on ``store`` (the default store when None).

    ``tokens`` turns on bearer-token checks, ``read_only`` refuses every write, and
    ``allowed_hosts`` limits the ``Host`` header (for servers bound to 127.0.0.1).
    ``artifacts`` is the artifact store (a directory or ``s3://bucket/prefix``);
    ``artifacts_proxy`` has clients send blobs through this server rather than straight to
    the object store.

    >>> app = create_app("/tmp/store")  # doctest: +SKIP
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _ui.warm_up(app)
        yield
        app.state.client.close()

    app = FastAPI(
        lifespan=lifespan,
        title="labkeep",
        version=__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    client = Client(store, artifacts=artifacts)
    if client.location.kind == "http":
        from labkeep.errors import InvalidInputError

        raise InvalidInputError(
            f"a labkeep server cannot serve another server's store ({client.location.uri}): "
            "give it a directory, sqlite:///FILE or postgresql://…"
        )
    app.state.client = client
    app.state.tokens = tokens
    app.state.read_only = read_only
    app.state.artifacts_proxy = artifacts_proxy
    app.add_middleware(
        RequestGuard,
        allowed_hosts=None
        if allowed_hosts is None
        else frozenset(h.lower() for h in allowed_hosts),
    )

    @app.exception_handler(LabkeepError)
    async def labkeep_error(request: Request, exc: LabkeepError) -> JSONResponse:
        message = _one_line(str(exc)) or type(exc).__name__
        return JSONResponse(
            {"error": message, "type": type(exc).__name__}, status_code=error_status(exc)
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": _one_line(str(exc.detail))}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid request"
        return JSONResponse({"error": message, "type": "InvalidInputError"}, status_code=400)

    @app.get("/api/v1/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    from labkeep.server import (
        _api_lineage,
        _api_media,
        _api_read,
        _api_registry,
        _api_store,
        _sweeps,
        _ui,
    )

    app.include_router(_api_store.router, prefix="/api/v1")
    app.include_router(_api_registry.router, prefix="/api/v1")
    app.include_router(_api_read.router, prefix="/api/v1")
    app.include_router(_api_media.router, prefix="/api/v1")
    app.include_router(_api_lineage.router, prefix="/api/v1")
    app.include_router(_sweeps.router, prefix="/api/v1")
    _ui.mount(app)
    return app
