"""Checks of what a command is given before it starts work: counts that no database integer
can hold, and paths where nothing can be created (below a file, in ``/proc``, on a read-only
mount). Each ends as one line from the CLI instead of a driver's or the OS's traceback."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import click

from labkeep._values import MAX_COUNT
from labkeep.errors import InvalidInputError


class Limit(click.IntRange):
    """A count of at least 1 where a number past any store's size means "every run", so
    ``--limit 99999999999999999999999`` lists them all instead of overflowing SQL."""

    def __init__(self) -> None:
        super().__init__(min=1)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        return min(number, MAX_COUNT)


def creation_problem(path: Path) -> str | None:
    """Why ``path`` (a file or directory to be made, with its parents) cannot be created, or
    None when it exists or can be. Tries the nearest existing directory with a nameless
    temporary file: permission bits say nothing of ``/proc`` or a read-only mount to root.

    >>> creation_problem(Path("/proc/nope/x"))  # doctest: +SKIP
    '/proc does not take new files (No such file or directory)'
    """
    path = path.absolute()
    ancestor = path
    while not os.path.lexists(ancestor):
        if ancestor.parent == ancestor:
            return f"{ancestor} does not exist"
        ancestor = ancestor.parent
    if ancestor == path:
        return None
    if not ancestor.is_dir():
        return f"{ancestor} is not a directory"
    try:
        with tempfile.TemporaryFile(dir=ancestor):
            pass
    except OSError as exc:
        return f"{ancestor} does not take new files ({exc.strerror or type(exc).__name__})"
    return None


def check_creatable(path: Path, what: str) -> None:
    """Raise a one-line InvalidInputError when ``path`` cannot be created."""
    problem = creation_problem(path)
    if problem is not None:
        raise InvalidInputError(f"cannot create {what} {path}: {problem}; pick another path")


class DefaultListGroup(click.Group):
    """A group whose first word, when it is not one of its commands, is the ``list``
    command's: ``labkeep models 7`` lists run 7's models, ``labkeep models show NAME``
    shows a registered model."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["list", *args]
        return super().parse_args(ctx, args)
