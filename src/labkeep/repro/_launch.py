"""Start a child process as a tracked run: the run is created here, the child attaches to it
through ``LABKEEP_RUN_ID`` and its console output is shown and kept as the run's output."""

from __future__ import annotations

import codecs
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from labkeep import _journal as j

if TYPE_CHECKING:
    from labkeep._client import Client
    from labkeep._run import Run

RUN_ID_ENV = "LABKEEP_RUN_ID"
STORE_ENV = "LABKEEP_HOME"
#: Variables of the parent that must not leak into the child (they name another run or store).
RUN_SPECIFIC_ENV = (RUN_ID_ENV, "LABKEEP_SCRIPT", "LABKEEP_MODULE", "LABKEEP_SCRIPT_ARGS",
                    "LABKEEP_FLAGS_JSON")  # fmt: skip


@dataclass(frozen=True, slots=True)
class LaunchResult:
    number: int
    uuid: str
    exit_code: int
    status: str


def _pump(run: Run, stream: IO[bytes], name: str, echo: IO[bytes] | None) -> None:
    """Copy the child's ``stream`` to ``echo`` as it arrives and journal it as finished lines."""
    from labkeep.runner import ConsoleLog

    log = ConsoleLog()
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    while True:
        chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
        if not chunk:
            break
        if echo is not None:
            echo.write(chunk)
            echo.flush()
        lines = log.feed(decoder.decode(chunk))
        if lines:
            run._write_json(j.T_OUTPUT, [[name, line.time, line.text] for line in lines])
    lines = log.feed(decoder.decode(b"", final=True)) + log.close()
    if lines:
        run._write_json(j.T_OUTPUT, [[name, line.time, line.text] for line in lines])


def launch(
    client: Client,
    argv: Sequence[str],
    *,
    cwd: Path,
    experiment: str,
    script_argv: Sequence[str],
    entry_point: str,
    env: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    name: str = "",
    params: Mapping[str, Any] | None = None,
    reproduces_uuid: str | None = None,
    snapshot_extra: Mapping[str, Any] | None = None,
    inputs: Sequence[str] = (),
    echo: bool = True,
) -> LaunchResult:
    """Run ``argv`` in ``cwd`` as a new run (its snapshot captured from ``cwd``), wait for it,
    and finish the run with the child's exit status.

    ``env`` replaces the environment (the run and store variables are added to it), and
    ``extra_env`` (the bootstrap's variables from ``build_command``) goes on top;
    ``snapshot_extra`` adds top-level sections to the new run's snapshot (``command``, ...);
    ``inputs`` are fingerprinted into it at the start (a child attached to a run records no
    inputs of its own).
    """
    run = client.start_run(
        experiment=experiment,
        name=name,
        config=dict(params) if params else None,
        reproduces_uuid=reproduces_uuid,
        argv=list(script_argv),
        entry_point=entry_point,
        cwd=cwd,
        inputs=list(inputs) or None,
    )
    if run._snapshot is not None:
        for key, value in (snapshot_extra or {}).items():
            run._snapshot.set(key, value)
    child_env = {
        k: v for k, v in (os.environ if env is None else env).items() if k not in RUN_SPECIFIC_ENV
    }
    child_env.update(extra_env or {})
    child_env[RUN_ID_ENV] = run.uuid
    child_env[STORE_ENV] = client.location.uri
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError as exc:
        run.finish("failed", error=f"cannot start {argv[0]}: {exc}", exit_code=127)
        return LaunchResult(run.number, run.uuid, 127, "failed")
    assert proc.stdout is not None and proc.stderr is not None
    pumps = [
        threading.Thread(
            target=_pump,
            args=(run, pipe, label, target.buffer if echo else None),
            name=f"labkeep-{label}",
            daemon=True,
        )
        for pipe, label, target in (
            (proc.stdout, "stdout", sys.stdout),
            (proc.stderr, "stderr", sys.stderr),
        )
    ]
    for pump in pumps:
        pump.start()
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        code = proc.wait()
        for pump in pumps:
            pump.join()
        run.finish("interrupted", exit_code=code)
        raise
    for pump in pumps:
        pump.join()
    status = "completed" if code == 0 else "failed"
    run.finish(
        status, exit_code=code, error=None if code == 0 else f"the script exited with status {code}"
    )
    return LaunchResult(run.number, run.uuid, code, status)
