"""``labkeep run``'s half of reading a parser during the run, for scripts whose parser could
not be read from the source (``FlagSet.deferred``).

The child's first parse writes the parser's flags and its arguments into a channel directory
and waits (``_intercept.report_live_parser``). :class:`LiveParser` watches for that file on a
thread while the script runs, then does what :func:`prepare_launch` does for other scripts:
checks the ``NAME=VALUE`` flags against the parser, reads the arguments given after ``--``,
refuses a flag given both ways, and answers with the arguments to parse, flags injected. It
records the values as params, the command in the snapshot, caches the flags for later runs, and
tells the scalar parser which keys are flag echoes. The script runs once; what ran before its
parse is its own top-level code, as without labkeep.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkeep.errors import InvalidInputError

if TYPE_CHECKING:
    from labkeep._run import Run
    from labkeep.runner._flag import FlagSet
    from labkeep.runner._launch import PreparedLaunch, ScriptCommand
    from labkeep.runner._scalars import OutputScalarParser

REPORT = "parser.json"
REPLY = "reply.json"
POLL_S = 0.01


class LiveParser:
    """Answer the child's first parse; :meth:`close` after the child ended."""

    def __init__(
        self,
        ready: PreparedLaunch,
        run: Run,
        channel: Path,
        *,
        cache_dir: Path | None,
        workdir: Path,
        scalars: OutputScalarParser | None,
        timeout: float,
        on_message: Callable[[str], None] | None,
    ) -> None:
        self._ready = ready
        self._run = run
        self._channel = channel
        self._cache_dir = cache_dir
        self._workdir = workdir
        self._scalars = scalars
        self._timeout = timeout
        self._on_message = on_message
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="labkeep-parser", daemon=True)
        self.answered = False
        self.error: str | None = None

    def environment(self, modes: list[str]) -> str:
        """The value of the bootstrap's ``ENV_LIVE_PARSER``."""
        return json.dumps({"channel": str(self._channel), "modes": modes})

    def start(self) -> None:
        self._channel.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def close(self) -> None:
        """The child ended: stop watching, and say so when its flags were never read."""
        self._done.set()
        self._thread.join()
        if not self.answered and self._ready.spec.assignments:
            self._say(
                f"{self._ready.path.name} ended without parsing its arguments, so "
                f"{' '.join(self._ready.spec.assignments)} did not reach it"
            )

    def _say(self, text: str) -> None:
        if self._on_message is not None:
            self._on_message(text)

    def _watch(self) -> None:
        report = self._channel / REPORT
        deadline = time.monotonic() + self._timeout
        warned = False
        while not self._done.is_set():
            if report.exists():
                try:
                    found = json.loads(report.read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    found = {"unreadable": str(exc)}
                self._answer(found)
                return
            if not warned and time.monotonic() >= deadline:
                warned = True
                self._say(
                    f"{self._ready.path.name} has not reached its argument parser after "
                    f"{self._timeout:g} s; its flags are read when it does (--detect-timeout "
                    "sets how long to wait before this note)"
                )
            self._done.wait(POLL_S)

    def _answer(self, report: dict[str, Any]) -> None:
        # The script waits for this reply: whatever goes wrong, it gets one.
        try:
            reply: dict[str, Any] = {"args": self._resolve(report)}
        except InvalidInputError as exc:
            self.error = str(exc)
            reply = {"error": self.error}
        except Exception as exc:
            self.error = f"cannot read the parser of {self._ready.path.name}: {exc}"
            reply = {"error": self.error}
        tmp = self._channel / (REPLY + ".tmp")
        tmp.write_text(json.dumps(reply), encoding="utf-8")
        os.replace(tmp, self._channel / REPLY)
        self.answered = True

    def _resolve(self, report: dict[str, Any]) -> list[str]:
        """The arguments the script is to parse; records flags, values and the command."""
        from labkeep.runner._detect import store_run_flags
        from labkeep.runner._launch import (
            check_values,
            flag_echo_keys,
            record_command,
            script_command,
        )

        ready = self._ready
        spec = ready.spec
        config = spec.config
        if config is not None and not config.is_absolute():
            config = ready.cwd / config
        flags: FlagSet = store_run_flags(
            ready.path,
            self._cache_dir,
            report["interface"],
            report["flags"],
            config=config,
            python=spec.python,
        )
        given = [str(a) for a in report["args"]]
        overrides, rest = check_values(flags, replace(spec, extra_args=tuple(given)), ready.path)
        values = {**flags.defaults(), **overrides}
        resolved = replace(ready, flags=flags, overrides=overrides, values=values, args=tuple(rest))
        command: ScriptCommand = script_command(resolved, self._workdir)
        if values:
            self._run.config.update(values)
        record_command(self._run, resolved, command)
        self._run.set_snapshot_argv([ready.shown, *command.script_args])
        if self._scalars is not None:
            self._scalars.ignore(flag_echo_keys(flags, spec))
        return command.script_args
