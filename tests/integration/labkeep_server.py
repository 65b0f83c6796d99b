"""Real labkeep servers for tests: ``labkeep server`` in a subprocess on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
LABKEEP_ENV = (
    "LABKEEP_HOME",
    "LABKEEP_TRACKING_URI",
    "LABKEEP_TOKEN",
    "LABKEEP_RUN_ID",
    "LABKEEP_MODE",
    "LABKEEP_EXPERIMENT",
    "LABKEEP_ARTIFACTS",
)
CLI = [sys.executable, "-c", "from labkeep.cli import main; main()"]


def child_env(**extra: str) -> dict[str, str]:
    """A child's environment: this checkout's labkeep, no labkeep variables, quick runs."""
    env = {k: v for k, v in os.environ.items() if k not in LABKEEP_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env["LABKEEP_CAPTURE"] = "0"
    env["LABKEEP_SYSTEM_METRICS"] = "0"
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``labkeep server`` on 127.0.0.1:port, in its own process group."""

    def __init__(self, store: str, port: int | None = None, args: tuple[str, ...] = ()) -> None:
        self.store = store
        self.port = port or free_port()
        self.args = args
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 30.0) -> ServerProcess:
        command = [*CLI, "server", "--store", self.store, "--port", str(self.port), *self.args]
        self.proc = subprocess.Popen(
            command,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                output = self.proc.stdout.read() if self.proc.stdout else ""
                raise RuntimeError(f"labkeep server exited {self.proc.returncode}: {output}")
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError("labkeep server did not answer in time")

    def output(self) -> str:
        """What the server printed so far, once it has exited (empty while it runs)."""
        if self.proc is None or self.proc.poll() is None or self.proc.stdout is None:
            return ""
        return self.proc.stdout.read()

    def kill(self) -> None:
        """SIGKILL the server and its workers (its process group), as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def stop(self) -> int:
        """SIGTERM, as an operator stops it; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.proc.returncode)


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No labkeep variables, a cache of this test's own (journals and blobs of remote stores
    live there), and the test's directory as the working directory."""
    for name in LABKEEP_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    yield
    import labkeep

    run = labkeep.active_run()
    if run is not None:
        run.finish()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server on a fresh SQLite store of this test."""
    proc = ServerProcess(str(tmp_path / "server-store")).start()
    yield proc
    proc.kill()


def cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the labkeep command line in a child process."""
    return subprocess.run(
        [*CLI, *args],
        env=env or child_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
