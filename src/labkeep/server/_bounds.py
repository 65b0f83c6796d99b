"""Bounds on the integers the routes take: run numbers are 32-bit in PostgreSQL's schema,
output ids and steps 64-bit, and counts and offsets stay well inside, so an absurd number is
a 400 from validation rather than an overflow inside the database driver (a 500)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import Field

from labkeep._values import MAX_INT32, MIN_INT32

#: A run number in a request body.
RunNumberField = Annotated[int, Field(ge=MIN_INT32, le=MAX_INT32)]
#: A run number in a route's path.
RunNumber = Annotated[int, Path(ge=MIN_INT32, le=MAX_INT32)]
