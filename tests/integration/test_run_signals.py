"""Stopping a ``labkeep run``: Ctrl-C, ``labkeep stop`` from elsewhere, and a killed runner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import labkeep
from labkeep._client import Client
from labkeep.entities import RunStatus

SRC = str(Path(labkeep.__file__).resolve().parents[1])

SLEEPER = """\
import os, time
open("pid.tmp", "w").write(str(os.getpid()))
os.rename("pid.tmp", "pid.txt")
print("started", flush=True)
while True:
    time.sleep(0.05)
"""


def cli_env(store: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKEEP_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, env.get("PYTHONPATH")) if p)
    env["LABKEEP_HOME"] = str(store)
    return env


def start_run(work: Path, store: Path) -> tuple[subprocess.Popen[bytes], int]:
    (work / "sleeper.py").write_text(textwrap.dedent(SLEEPER))
    proc = subprocess.Popen(
        [sys.executable, "-m", "labkeep.cli", "run", "--no-capture", "sleeper.py"],
        cwd=work,
        env=cli_env(store),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not (work / "pid.txt").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the script never started"
        time.sleep(0.05)
    return proc, int((work / "pid.txt").read_text())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_gone(pid: int, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def status_of(store: Path, number: int = 1) -> RunStatus:
    client = Client(store)
    try:
        return client.get_run(number).status
    finally:
        client.close()


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def test_sigint_interrupts_the_run_and_stops_the_child(work: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    proc, child = start_run(work, store)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"run 1 interrupted in" in err
    assert wait_gone(child)
    assert status_of(store) is RunStatus.INTERRUPTED


def test_labkeep_stop_interrupts_a_running_run(work: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    proc, child = start_run(work, store)
    stop = subprocess.run(
        [sys.executable, "-m", "labkeep.cli", "stop", "1", "--grace", "30"],
        cwd=work,
        env=cli_env(store),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert stop.returncode == 0, stop.stderr
    assert stop.stdout.strip() == "run 1 interrupted"
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert wait_gone(child)
    assert status_of(store) is RunStatus.INTERRUPTED


def test_killed_runner_takes_its_child_along_and_the_run_reads_killed(
    work: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    proc, child = start_run(work, store)
    proc.kill()
    proc.wait(timeout=30)
    assert wait_gone(child), "the script outlived its killed runner"
    assert status_of(store) is RunStatus.KILLED


def test_the_api_stops_a_running_run_with_write_access_only(work: Path, tmp_path: Path) -> None:
    """POST /api/v1/runs/N/stop does what ``labkeep stop`` does; a read-only server refuses."""
    import httpx

    from conftest import LiveServer

    store = tmp_path / "store"
    proc, child = start_run(work, store)
    try:
        with LiveServer(store, read_only=True) as server:
            refused = httpx.post(f"{server.url}/api/v1/runs/1/stop", timeout=60)
        assert refused.status_code == 403
        assert alive(child) and status_of(store) is RunStatus.RUNNING
        with LiveServer(store) as server:
            stopped = httpx.post(f"{server.url}/api/v1/runs/1/stop", timeout=60)
            assert stopped.status_code == 200, stopped.text
            assert stopped.json() == {"number": 1, "status": "interrupted", "killed": False}
            again = httpx.post(f"{server.url}/api/v1/runs/1/stop", timeout=60)
            assert again.status_code == 409
            assert again.json()["error"] == "run 1 is interrupted, not running; nothing to stop"
        proc.communicate(timeout=60)
        assert wait_gone(child)
    finally:
        if proc.poll() is None:
            proc.kill()
