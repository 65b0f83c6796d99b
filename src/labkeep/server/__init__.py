"""The labkeep server: REST API (``/api/v1``) and the web UI, one FastAPI app."""

from labkeep.server._app import create_app
from labkeep.server._auth import TokenSet
from labkeep.server._serve import ServeSettings, is_loopback, serve

__all__ = ["ServeSettings", "TokenSet", "create_app", "is_loopback", "serve"]
