"""Shared fixtures: isolated environments, SQLite and PostgreSQL stores, child processes.

PostgreSQL tests run against the server on 127.0.0.1:5432 (database ``test``, user
``postgres``) in a schema of their own, made per test session and dropped at its end. When
the server cannot be reached they are skipped locally, with the reason in the summary, and
fail when ``CI`` is set: CI must not pass by skipping.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"

PG_SERVER = os.environ.get("LABKEEP_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

# Environment variables that change where and how labkeep logs; tests start without them.
LABKEEP_ENV = (
    "LABKEEP_HOME",
    "LABKEEP_RUN_ID",
    "LABKEEP_MODE",
    "LABKEEP_EXPERIMENT",
    "LABKEEP_ARTIFACTS",
)

_pg_state: dict[str, Any] = {}
_pg_skipped: list[str] = []


def _postgres_unreachable_reason() -> str | None:
    """None when the PostgreSQL server answers, else why not (checked once per session)."""
    if "reason" not in _pg_state:
        try:
            import psycopg

            with psycopg.connect(PG_SERVER, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _pg_state["reason"] = None
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            _pg_state["reason"] = f"PostgreSQL is not reachable at {PG_SERVER} ({first})"
    reason: str | None = _pg_state["reason"]
    return reason


def require_postgres(nodeid: str) -> None:
    """Skip (locally) or fail (under CI) the calling test when PostgreSQL is unreachable."""
    reason = _postgres_unreachable_reason()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the PostgreSQL tests, not skip them", pytrace=False)
    _pg_skipped.append(nodeid)
    pytest.skip(reason)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Every test marked ``postgres`` needs the server: skipped locally, failed under CI."""
    if item.get_closest_marker("postgres") is not None:
        require_postgres(item.nodeid)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _pg_skipped:
        terminalreporter.write_line(
            f"labkeep: {len(_pg_skipped)} PostgreSQL test(s) SKIPPED: "
            f"{_pg_state.get('reason')}. Start PostgreSQL to run them (CI=1 makes this fail).",
            yellow=True,
            bold=True,
        )


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts in its own directory, with no labkeep variables and its own cache
    (journals and blobs of remote stores live there); an active run is finished at the end."""
    for name in LABKEEP_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    yield
    import labkeep

    run = labkeep.active_run()
    if run is not None:
        run.finish()


@pytest.fixture(scope="session")
def pg_schema_uri(request: pytest.FixtureRequest) -> Iterator[str]:
    """A ``postgresql://`` store URI whose connections use a fresh schema of this session."""
    require_postgres(request.node.nodeid)
    import psycopg

    schema = f"lk_test_{secrets.token_hex(6)}"
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_SERVER}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_SERVER, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '20s'")
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def new_pg_schema() -> tuple[str, str]:
    """(schema name, URI) of a fresh, empty schema; the caller drops it with ``drop_pg_schema``."""
    import psycopg

    schema = f"lk_test_{secrets.token_hex(6)}"
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return schema, f"{PG_SERVER}?options=-csearch_path%3D{schema}"


def drop_pg_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '20s'")
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URI for each backend: a fresh SQLite directory, or this session's PG schema."""
    if request.param == "sqlite":
        return str(tmp_path / "store")
    require_postgres(request.node.nodeid)
    uri: str = request.getfixturevalue("pg_schema_uri")
    return uri


@pytest.fixture
def store(store_uri: str) -> Iterator[Any]:
    """An opened SqlStore (SQLite or PostgreSQL), closed afterwards."""
    from labkeep.store import locate_store, open_store

    opened = open_store(locate_store(store_uri))
    yield opened
    opened.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """The labkeep app (``create_app(store, **options)``) under uvicorn on 127.0.0.1, in a
    thread of this process: ``with LiveServer(store) as server`` or ``start()``/``stop()``."""

    def __init__(self, store: Path, **options: Any) -> None:
        import threading

        import uvicorn

        from labkeep.server import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(store, **options)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> LiveServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child Python that imports labkeep from this checkout."""
    env = {k: v for k, v in os.environ.items() if k not in LABKEEP_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def write_script(directory: Path, code: str, name: str = "script.py") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(code))
    return path


def run_python(
    code: str,
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a child Python and wait for it."""
    script = write_script(cwd, code, f"script_{secrets.token_hex(4)}.py")
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=cwd,
        env=env or child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_python(
    code: str, *, cwd: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> subprocess.Popen[str]:
    """Start ``code`` in a child Python with piped stdout/stderr (the caller waits).

    The child gets SIGINT's default action back, as a script started from a terminal has:
    a suite started in the background by a non-interactive shell (``cmd &``) ignores SIGINT,
    children inherit that, and Python then never turns Ctrl-C into KeyboardInterrupt."""
    script = write_script(cwd, code, f"script_{secrets.token_hex(4)}.py")
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        cwd=cwd,
        env=env or child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_line(proc: subprocess.Popen[str], expected: str) -> None:
    """Read the child's stdout until a line equals ``expected`` (fails if it exits first)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == expected:
            return
    proc.wait()
    stderr = proc.stderr.read() if proc.stderr else ""
    pytest.fail(f"child exited ({proc.returncode}) before printing {expected!r}:\n{stderr}")
