"""The ``labkeep`` command line. Only this layer prints to the terminal."""

from labkeep.cli._main import main

__all__ = ["main"]
