"""Bounds on the integers the routes take. Run numbers, output ids and steps are 64-bit SQL
integers, and counts and offsets stay well inside them, so an absurd number is a 400 from
validation rather than an overflow inside the database driver (a 500)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import Field

from labkeep._values import MAX_INT64, MIN_INT64

#: A run number, output line id or step in a request body.
Int64 = Annotated[int, Field(ge=MIN_INT64, le=MAX_INT64)]
#: A run number in a route's path.
RunNumber = Annotated[int, Path(ge=MIN_INT64, le=MAX_INT64)]
