"""The user-facing REST API: runs, queries, histories, output, snapshots, artifacts."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
