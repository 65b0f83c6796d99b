"""The web UI: static pages served by the same app, working offline.

Plain HTML, ES modules and CSS from ``server/static`` (no build step, no CDN); plotly.js comes
from the installed ``plotly`` package. Pages: the runs table (``/``), a run (``/runs/{ref}``)
and the compare page (``/compare?runs=3,4``).
"""

from __future__ import annotations

import gzip
import threading
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from labkeep.errors import NotFoundError
from labkeep.server._auth import require_read

STATIC = Path(__file__).with_name("static")

#: Pages load only our own scripts; plotly needs inline styles; artifacts and notebooks show
#: in sandboxed frames of the same server.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; frame-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class _Plotly:
    """plotly.min.js from the installed plotly package, gzipped once in memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gzipped: bytes | None = None

    @staticmethod
    def path() -> Path:
        try:
            import plotly
        except ImportError:
            raise NotFoundError(
                "charts need plotly: pip install 'labkeep[server]' (it ships plotly.js)"
            ) from None
        return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"

    def response(self, request: Request) -> Response:
        path = self.path()
        headers = {
            "Cache-Control": "public, max-age=604800, immutable",
            "X-Content-Type-Options": "nosniff",
            "Vary": "Accept-Encoding",
        }
        if "gzip" not in request.headers.get("accept-encoding", ""):
            return FileResponse(path, media_type="text/javascript", headers=headers)
        with self._lock:
            if self._gzipped is None:
                self._gzipped = gzip.compress(path.read_bytes(), compresslevel=6)
        return Response(
            self._gzipped,
            media_type="text/javascript",
            headers={**headers, "Content-Encoding": "gzip"},
        )


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


def mount(app: FastAPI) -> None:
    """Add the UI's routes to ``app``."""
    plotly = _Plotly()
    read = [Depends(require_read)]

    @app.get("/", include_in_schema=False)
    def runs_page() -> FileResponse:
        return _page("index.html")

    @app.get("/runs/{ref}", include_in_schema=False)
    def run_page(ref: str) -> FileResponse:
        return _page("run.html")

    @app.get("/compare", include_in_schema=False)
    def compare_page() -> FileResponse:
        return _page("compare.html")

    @app.get("/vendor/plotly.min.js", include_in_schema=False, dependencies=read)
    def plotly_js(request: Request) -> Response:
        try:
            return plotly.response(request)
        except NotFoundError as exc:
            return Response(f"console.error({str(exc)!r});", 404, media_type="text/javascript")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
