"""The web UI: static pages served by the same app, working offline.

Plain HTML, ES modules and CSS from ``server/static`` (no build step, no CDN); plotly.js comes
from the installed ``plotly`` package. Pages: the runs table (``/``), a run (``/runs/{ref}``),
a sweep (``/sweeps/{ref}``) and the compare page (``/compare?runs=3,4``).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import threading
from pathlib import Path
from typing import NamedTuple

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


class _Asset(NamedTuple):
    raw: bytes
    gzipped: bytes
    etag: str


class _Plotly:
    """plotly.min.js from the installed plotly package, read, hashed and gzipped once (see
    :func:`warm_up`), then served with a strong ETag: browsers keep it a week, then
    revalidate it with a 304."""

    #: Not ``immutable``: the URL stays the same when plotly is upgraded.
    CACHE_CONTROL = "public, max-age=604800"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._asset: _Asset | None = None

    @staticmethod
    def path() -> Path:
        try:
            import plotly
        except ImportError:
            raise NotFoundError(
                "charts need plotly: pip install 'labkeep[server]' (it ships plotly.js)"
            ) from None
        return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"

    def asset(self) -> _Asset:
        with self._lock:
            if self._asset is None:
                raw = self.path().read_bytes()
                self._asset = _Asset(
                    raw,
                    gzip.compress(raw, compresslevel=6, mtime=0),
                    f'"{hashlib.sha256(raw).hexdigest()[:32]}"',
                )
            return self._asset

    def response(self, request: Request) -> Response:
        asset = self.asset()
        headers = {
            "Cache-Control": self.CACHE_CONTROL,
            "ETag": asset.etag,
            "X-Content-Type-Options": "nosniff",
            "Vary": "Accept-Encoding",
        }
        if _etag_matches(request.headers.get("if-none-match", ""), asset.etag):
            return Response(status_code=304, headers=headers)
        if not _accepts_gzip(request.headers.get("accept-encoding", "")):
            return Response(asset.raw, media_type="text/javascript", headers=headers)
        return Response(
            asset.gzipped,
            media_type="text/javascript",
            headers={**headers, "Content-Encoding": "gzip"},
        )


def _etag_matches(if_none_match: str, etag: str) -> bool:
    """Whether an If-None-Match header names ``etag`` (weak comparison, as RFC 9110 asks)."""
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


def _accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header allows gzip (``gzip;q=0`` refuses it)."""
    for part in accept_encoding.lower().split(","):
        coding, _, weight = part.partition(";")
        if coding.strip() == "gzip":
            name, _, value = weight.partition("=")
            try:
                return name.strip() != "q" or float(value) > 0
            except ValueError:
                return True
    return False


def warm_up(app: FastAPI) -> None:
    """Do the work a first visitor would otherwise wait for: import numpy (histories) and
    read and gzip plotly.js. Runs on a daemon thread as the server starts."""

    def work() -> None:
        with contextlib.suppress(ImportError):
            import numpy  # noqa: F401
        with contextlib.suppress(NotFoundError, OSError):
            app.state.plotly.asset()

    threading.Thread(target=work, name="labkeep-warm-up", daemon=True).start()


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


def mount(app: FastAPI) -> None:
    """Add the UI's routes to ``app``."""
    plotly = _Plotly()
    app.state.plotly = plotly
    read = [Depends(require_read)]

    @app.get("/", include_in_schema=False)
    def runs_page() -> FileResponse:
        return _page("index.html")

    @app.get("/runs/{ref}", include_in_schema=False)
    def run_page(ref: str) -> FileResponse:
        return _page("run.html")

    @app.get("/sweeps/{ref}", include_in_schema=False)
    def sweep_page(ref: str) -> FileResponse:
        return _page("sweep.html")

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
