"""The store protocol over HTTP: what the REST Store client calls (apply, blobs, positions)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
