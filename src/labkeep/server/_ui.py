"""The web UI: static pages served by the same app."""

from __future__ import annotations

from fastapi import FastAPI


def mount(app: FastAPI) -> None:
    """Add the UI's routes to ``app``."""
