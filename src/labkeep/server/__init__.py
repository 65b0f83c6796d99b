"""The labkeep server: REST API (``/api/v1``) and the web UI, one FastAPI app."""

from labkeep.server._app import create_app

__all__ = ["create_app"]
