"""labkeep's library code logs; people still see its warnings as ``labkeep: …`` lines on
stderr, unless they configured logging themselves (then their configuration shows them once)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_python

_WARN = """
import logging
{before}
import labkeep
from labkeep._client import Client

client = Client({store!r})
logging.getLogger("labkeep._run").warning("run %s is kept", "abc")
logging.getLogger("labkeep._run").info("not shown")
"""


def _stderr(tmp_path: Path, before: str = "") -> str:
    proc = run_python(_WARN.format(before=before, store=str(tmp_path / "store")), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def test_a_warning_is_one_labkeep_line_on_stderr(tmp_path: Path) -> None:
    assert _stderr(tmp_path) == "labkeep: run abc is kept\n"


def test_logging_configured_by_the_user_shows_it_once_their_way(tmp_path: Path) -> None:
    err = _stderr(tmp_path, "logging.basicConfig(format='%(levelname)s %(name)s %(message)s')")
    assert err == "WARNING labkeep._run run abc is kept\n"


def test_a_handler_on_the_labkeep_logger_takes_the_messages_over(tmp_path: Path) -> None:
    err = _stderr(tmp_path, "logging.getLogger('labkeep').addHandler(logging.NullHandler())")
    assert err == ""
